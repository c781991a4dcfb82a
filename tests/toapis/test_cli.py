"""`python -m toapis`: generating against the fake from a real subprocess, and the tool's error paths."""

from __future__ import annotations

import asyncio
import io
import os
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.fakes._png import png_for
from tests.fakes.toapis import Endpoint, FakeToAPIs, Fault, ResultFormat, Timeline
from toapis import catalog
from toapis.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Environment, UsageError, main, read_environment

ROOT = Path(__file__).resolve().parents[2]


async def run_tool(*args: str, fake: FakeToAPIs, cwd: Path, api_key: str | None = None) -> tuple[int, str, str]:
    """Run `python -m toapis ...` as a subprocess (without blocking the loop the fake serves on)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TOAPIS_")}
    env |= {
        "PYTHONPATH": str(ROOT),
        "TOAPIS_API_KEY": fake.api_key if api_key is None else api_key,
        "TOAPIS_BASE_URL": fake.base_url,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "toapis",
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        stdout, stderr = await process.communicate()
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_generate_saves_the_images_in_a_subprocess(toapis_fake: FakeToAPIs, tmp_path: Path) -> None:
    reference = tmp_path / "ref.png"
    reference.write_bytes(png_for("reference", 64, 48))
    status, stdout, stderr = await run_tool(
        "generate",
        "a lighthouse at dusk",
        "--aspect",
        "2:3",
        "--resolution",
        "2K",
        "--n",
        "2",
        "--image",
        "ref.png",
        "--out",
        "out",
        "--poll-interval",
        "0.005",
        fake=toapis_fake,
        cwd=tmp_path,
    )
    assert status == EXIT_OK, stderr
    (task,) = toapis_fake.tasks.values()
    assert (task.prompt, task.aspect, task.resolution, task.n) == ("a lighthouse at dusk", "2:3", "2k", 2)
    assert task.size == "1360x2048"  # the documented pixels of 2:3 at 2k
    (upload,) = toapis_fake.uploads.values()
    assert upload.data == reference.read_bytes()
    assert task.reference_images[0].endswith(f"/uploads/{upload.id}.png")
    saved = [Path(line) for line in stdout.splitlines()]
    assert saved == [Path("out") / f"{task.id}-1.png", Path("out") / f"{task.id}-2.png"]
    for index, path in enumerate(saved, start=1):
        data = (tmp_path / path).read_bytes()
        assert data == toapis_fake.result_png(task.id, index)
        with Image.open(io.BytesIO(data)) as image:
            assert image.size == (1360, 2048)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in saved)  # no leftovers
    assert "uploading ref.png" in stderr
    assert f"submitted task {task.id}" in stderr
    assert f"task {task.id}: completed 100%" in stderr


async def test_health_in_a_subprocess(toapis_fake: FakeToAPIs, tmp_path: Path) -> None:
    status, stdout, _ = await run_tool("health", fake=toapis_fake, cwd=tmp_path)
    assert status == EXIT_OK
    assert stdout.startswith("ok: the API answered and accepted the key")
    assert toapis_fake.requests_to(Endpoint.MODELS)[0].key_ok is True


async def test_health_with_a_refused_key(toapis_fake: FakeToAPIs, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = await run_main(["health"], toapis_fake, capsys, TOAPIS_API_KEY="sk-wrong")
    assert status == EXIT_FAILED
    assert out == "unhealthy: ToAPIs health probe: Invalid API key provided (HTTP 401, code authentication_error)\n"


# In-process runs: main() runs its own event loop, so it runs in a thread while the fake serves on this one.


async def run_main(
    argv: list[str], fake: FakeToAPIs, capsys: pytest.CaptureFixture[str], **environ: str
) -> tuple[int, str, str]:
    env = {"TOAPIS_API_KEY": fake.api_key, "TOAPIS_BASE_URL": fake.base_url} | environ
    status = await asyncio.to_thread(main, argv, environ={k: v for k, v in env.items() if v})
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the tool reads ./.env and writes ./out


async def test_a_missing_key_is_a_usage_error(toapis_fake: FakeToAPIs, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = await run_main(["health"], toapis_fake, capsys, TOAPIS_API_KEY="")
    assert status == EXIT_USAGE
    assert err == "error: TOAPIS_API_KEY is not set (in the environment or in .env)\n"


async def test_settings_come_from_dotenv_unless_the_environment_has_them(
    toapis_fake: FakeToAPIs, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text(f"TOAPIS_API_KEY={toapis_fake.api_key}\nTOAPIS_BASE_URL={toapis_fake.base_url}\n")
    status = await asyncio.to_thread(main, ["health"], environ={})
    assert status == EXIT_OK
    assert capsys.readouterr().out.startswith("ok:")
    status = await asyncio.to_thread(main, ["health"], environ={"TOAPIS_API_KEY": "sk-from-env"})
    assert status == EXIT_FAILED  # the environment wins over .env
    assert capsys.readouterr().out.startswith("unhealthy: ToAPIs health probe: Invalid API key provided")


async def test_a_refused_key_is_one_line(toapis_fake: FakeToAPIs, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = await run_main(["generate", "a fox"], toapis_fake, capsys, TOAPIS_API_KEY="sk-wrong")
    assert status == EXIT_FAILED
    assert out == ""
    assert (
        err.splitlines()[-1] == "error: ToAPIs submit: Invalid API key provided (HTTP 401, code authentication_error)"
    )


async def test_a_failed_task(toapis_fake: FakeToAPIs, capsys: pytest.CaptureFixture[str]) -> None:
    toapis_fake.queue_timeline(Timeline.content_policy(after=0.0))
    status, out, err = await run_main(["generate", "a fox", "--poll-interval", "0.001"], toapis_fake, capsys)
    assert status == EXIT_FAILED
    assert out == ""
    (task_id,) = toapis_fake.tasks
    assert err.splitlines()[-1] == (
        f"error: task {task_id} failed (content policy): generation_failed: Your request was rejected by the "
        "safety system: the prompt violates the content policy."
    )


async def test_a_deadline(toapis_fake: FakeToAPIs, capsys: pytest.CaptureFixture[str]) -> None:
    toapis_fake.queue_timeline(Timeline.never_ends())
    argv = ["generate", "a fox", "--poll-interval", "0.005", "--deadline", "0.05"]
    status, _, err = await run_main(argv, toapis_fake, capsys)
    assert status == EXIT_FAILED
    assert "did not end within 0.05 s (last seen in_progress at 10%)" in err.splitlines()[-1]


async def test_fewer_images_than_asked_is_a_warning(
    toapis_fake: FakeToAPIs, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    toapis_fake.queue_timeline(Timeline.fewer_images(1, after=0.0))
    status, out, err = await run_main(
        ["generate", "a fox", "--n", "3", "--poll-interval", "0.001"], toapis_fake, capsys
    )
    assert status == EXIT_OK
    assert len(out.splitlines()) == 1
    assert "warning: asked for 3 images, the API returned 1" in err


async def test_b64_results_are_saved_too(
    toapis_fake: FakeToAPIs, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    toapis_fake.result_format = ResultFormat.B64_JSON
    status, out, _ = await run_main(["generate", "a fox", "--poll-interval", "0.001"], toapis_fake, capsys)
    assert status == EXIT_OK
    (task_id,) = toapis_fake.tasks
    assert (tmp_path / out.strip()).read_bytes() == toapis_fake.result_png(task_id, 1)
    assert toapis_fake.requests_to(Endpoint.DOWNLOAD) == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["generate", "x", "--image", "missing.png"], "error: cannot read missing.png: No such file or directory"),
        (["generate", "x", "--image", "notes.txt"], "error: notes.txt is not a JPEG, PNG, WebP or GIF image"),
        (["generate", "x", "--n", "0"], "error: --n: GPT Image 2 makes 1 to 4 images per request, not 0"),
        (
            ["generate", "x", "--model", "dall-e-9"],
            f"error: --model: unknown image model 'dall-e-9'; Imagine knows: {', '.join(catalog.MODELS)}",
        ),
        (
            ["generate", "x", "--aspect", "1:4"],
            "error: --aspect: GPT Image 2 offers the aspect ratios 1:1, 3:2, 2:3, 4:3, 3:4, 5:4, 4:5, 16:9, 9:16, "
            "2:1, 1:2, 21:9, 9:21, not '1:4'",
        ),
        (
            ["generate", "x", "--model", "flux-2-pro", "--resolution", "4K"],
            "error: --resolution: FLUX.2 Pro offers the resolutions 1K, 2K, not '4k'",
        ),
        (
            ["generate", "x", "--model", "doubao-seedream-4-5", "--resolution", "1k"],
            "error: --resolution: Seedream 4.5 offers the resolutions 2K, 4K, not '1k'",
        ),
        (
            ["generate", "x", "--model", "grok-imagine-1.0", "--image", "ref.png"],
            "error: --image: Grok Imagine 1.0 takes no reference images",
        ),
        (
            ["generate", "x" * 1001, "--model", "gpt-4o-image"],
            "error: the prompt: the prompt is 1,001 characters long; GPT-4o Image takes at most 1,000",
        ),
    ],
)
async def test_bad_arguments_are_usage_errors(
    toapis_fake: FakeToAPIs, capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], message: str
) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "ref.png").write_bytes(png_for("r", 4, 4))
    status, _, err = await run_main(argv, toapis_fake, capsys)
    assert status == EXIT_USAGE
    assert err.strip() == message
    assert toapis_fake.requests == []


async def test_a_bad_base_url_is_a_usage_error(toapis_fake: FakeToAPIs, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = await run_main(["health"], toapis_fake, capsys, TOAPIS_BASE_URL="toapis.com")
    assert status == EXIT_USAGE
    assert err.startswith("error: the ToAPIs base URL must be an http(s) URL")


async def test_a_server_error_after_the_retries(toapis_fake: FakeToAPIs, capsys: pytest.CaptureFixture[str]) -> None:
    toapis_fake.fail(Endpoint.UPLOAD, Fault.server_error(), times=None)
    (Path.cwd() / "ref.png").write_bytes(png_for("r", 4, 4))
    status, _, err = await run_main(["generate", "x", "--image", "ref.png", "--retries", "0"], toapis_fake, capsys)
    assert status == EXIT_FAILED
    assert err.splitlines()[-1] == "error: ToAPIs upload: Internal server error (HTTP 500, code internal_error)"
    assert len(toapis_fake.requests_to(Endpoint.UPLOAD)) == 1  # --retries 0


async def test_options_are_checked_before_the_environment(
    toapis_fake: FakeToAPIs, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = await run_main(["generate", "x", "--aspect", "7:5"], toapis_fake, capsys, TOAPIS_API_KEY="")
    assert status == EXIT_USAGE
    assert err.startswith("error: --aspect: GPT Image 2 offers the aspect ratios")


async def test_generate_with_another_model(
    toapis_fake: FakeToAPIs, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = ["generate", "a fox", "--model", "nano-banana-pro", "--aspect", "21:9", "--poll-interval", "0.001"]
    status, out, err = await run_main(argv, toapis_fake, capsys)
    assert status == EXIT_OK, err
    (request,) = toapis_fake.requests_to(Endpoint.SUBMIT)
    assert (request.json["model"], request.json["size"], request.json["metadata"]) == (
        "gemini-3-pro-image-preview",
        "21:9",
        {"resolution": "1K"},
    )
    with Image.open(tmp_path / out.strip()) as image:
        assert abs(image.width / image.height - 21 / 9) < 0.01


def test_models_lists_every_catalogued_model_without_a_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"], environ={}) == EXIT_OK
    out = capsys.readouterr().out
    headers = [line.split()[0] for line in out.splitlines() if not line.startswith(" ")]
    assert headers == list(catalog.MODELS)
    assert out.splitlines()[:6] == [
        "gpt-image-2  GPT Image 2",
        "    aspects      1:1 3:2 2:3 4:3 3:4 5:4 4:5 16:9 9:16 2:1 1:2 21:9 9:21",
        "    resolutions  1k (default), 2k, 4k",
        "    n            1 to 4",
        "    references   up to 4 (reference_images)",
        "    prompt       up to 4,000 characters",
    ]
    assert "doubao-seedream-4-5  Seedream 4.5\n    aspects      1:1 3:2 2:3 4:3 3:4 16:9 9:16 21:9 9:21\n" in out
    assert "    resolutions  2k (default), 4k\n" in out
    assert "    references   up to 4 (image_urls, 1:3 to 3:1, sides of at least 15 px)\n" in out
    assert "grok-imagine-1.0  Grok Imagine 1.0\n" in out
    assert "    references   none\n" in out
    assert "    resolutions  1k (default) (the model takes no resolution)\n" in out


async def test_balance_prints_credits_and_dollars_used_and_left(
    toapis_fake: FakeToAPIs, capsys: pytest.CaptureFixture[str]
) -> None:
    toapis_fake.remain_credits, toapis_fake.used_credits = 1234.5, 800
    toapis_fake.remain_balance, toapis_fake.used_balance = 6.17, 4
    status, out, _ = await run_main(["balance"], toapis_fake, capsys)
    assert status == EXIT_OK
    assert out == "credits: 1,234.50 left, 800 used\ndollars: $6.17 left, $4.00 used\n"
    (request,) = toapis_fake.requests_to(Endpoint.BALANCE)
    assert request.key_ok


async def test_balance_in_dollars_comes_from_the_credits_when_the_account_counts_in_another_unit(
    toapis_fake: FakeToAPIs, capsys: pytest.CaptureFixture[str]
) -> None:
    # An account set to CNY: its balance fields are yuan, which must not be shown as dollars.
    toapis_fake.remain_credits, toapis_fake.used_credits = 1000, 400
    toapis_fake.remain_balance, toapis_fake.used_balance = 36.0, 14.4
    status, out, _ = await run_main(["balance"], toapis_fake, capsys)
    assert status == EXIT_OK
    assert out == "credits: 1,000 left, 400 used\ndollars: $5.00 left, $2.00 used\n"


async def test_balance_of_an_unlimited_account(toapis_fake: FakeToAPIs, capsys: pytest.CaptureFixture[str]) -> None:
    toapis_fake.unlimited_quota = True
    toapis_fake.used_credits, toapis_fake.used_balance = 200, 1
    status, out, _ = await run_main(["balance"], toapis_fake, capsys)
    assert (status, out) == (EXIT_OK, "unlimited (used: 200 credits, $1.00)\n")


async def test_balance_with_a_refused_key_or_no_account(
    toapis_fake: FakeToAPIs, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = await run_main(["balance"], toapis_fake, capsys, TOAPIS_API_KEY="sk-wrong")
    assert status == EXIT_FAILED
    assert "Invalid API key" in err
    assert "Traceback" not in err
    toapis_fake.fail(Endpoint.BALANCE, Fault.answer(200, {"success": False, "message": "not found"}))
    status, out, _ = await run_main(["balance"], toapis_fake, capsys)
    assert (status, out) == (EXIT_FAILED, "error: the API found no account for this key\n")


def test_the_environment_repr_shows_neither_the_key_nor_a_password_in_the_base_url(tmp_path: Path) -> None:
    # read_environment refuses such a URL (below); the repr hides it whatever made the Environment.
    env = Environment(api_key="sk-cli-K3y-value", base_url="https://proxy-user:Pr0xy-Pw@proxy.example/v1")
    for shown in (repr(env), str(env), f"{env}", repr([env])):
        assert "sk-cli-K3y-value" not in shown
        assert "Pr0xy-Pw" not in shown
        assert "proxy-user" not in shown
        assert "https://***@proxy.example/v1" in shown  # which API it talks to still shows


@pytest.mark.parametrize("query", ["key=Qu3ry-S3cret", "token=Qu3ry-S3cret", "api_key=Qu3ry-S3cret&region=eu"])
def test_the_environment_repr_hides_a_secret_in_the_base_urls_query(tmp_path: Path, query: str) -> None:
    # A proxy that takes its own key in the query: the same redaction as the bot's settings.
    environ = {"TOAPIS_API_KEY": "sk-cli-K3y-value", "TOAPIS_BASE_URL": f"https://proxy.example/v1?{query}"}
    env = read_environment(environ, tmp_path / ".env")
    assert "Qu3ry-S3cret" not in repr(env)
    assert "https://proxy.example/v1?" in repr(env)
    with pytest.raises(UsageError) as caught:
        read_environment(environ | {"TOAPIS_BASE_URL": f"ftp://proxy.example/v1?{query}"}, tmp_path / ".env")
    assert "Qu3ry-S3cret" not in str(caught.value)


async def test_a_bad_base_url_next_to_the_key_shows_neither(
    toapis_fake: FakeToAPIs, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = {"TOAPIS_API_KEY": "sk-cli-K3y-value", "TOAPIS_BASE_URL": "ftp://proxy-user:Pr0xy-Pw@proxy.example/v1"}
    with pytest.raises(UsageError) as caught:
        read_environment(bad, tmp_path / ".env")
    for text in (str(caught.value), repr(caught.value)):
        assert "sk-cli-K3y-value" not in text
        assert "Pr0xy-Pw" not in text
    status, out, err = await run_main(["health"], toapis_fake, capsys, **bad)
    assert status == EXIT_USAGE
    assert err == (
        "error: the ToAPIs base URL must be an http(s) URL, not 'ftp://***@proxy.example/v1' (TOAPIS_BASE_URL)\n"
    )
    assert out == ""
    assert toapis_fake.requests == []


@pytest.mark.parametrize(
    "base_url",
    [
        # aiohttp refuses credentials in a URL next to the key's Authorization header: a traceback, exit 1.
        "https://proxy-user:Pr0xy-Pw@proxy.example/v1",
        # urlsplit raised out of read_environment: a traceback, exit 1.
        "https://[proxy.example/v1",
        "https://proxy.example:99999/v1",
    ],
)
async def test_a_base_url_no_request_could_use_is_a_usage_error(
    toapis_fake: FakeToAPIs, capsys: pytest.CaptureFixture[str], base_url: str
) -> None:
    status, out, err = await run_main(["health"], toapis_fake, capsys, TOAPIS_BASE_URL=base_url)
    assert status == EXIT_USAGE
    assert err.startswith("error: the ToAPIs base URL must be an http(s) URL")
    assert "Pr0xy-Pw" not in err
    assert out == ""
