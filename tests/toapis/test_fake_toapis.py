"""The fake follows the contract: raw HTTP against it, without the client's help."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from PIL import Image

from tests.fakes import toapis as fake_toapis
from tests.fakes.toapis import (
    Endpoint,
    FakeToAPIs,
    Fault,
    Outcome,
    ResultFormat,
    Step,
    Timeline,
)
from toapis import catalog

ROOT = Path(__file__).resolve().parents[2]
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


class Raw:
    """Plain HTTP calls to the fake."""

    def __init__(self, fake: FakeToAPIs, session: aiohttp.ClientSession) -> None:
        self.fake = fake
        self.session = session
        self.auth = {"Authorization": f"Bearer {fake.api_key}"}

    async def submit(self, body: Any, *, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        async with self.session.post(
            self.fake.base_url + "/images/generations", json=body, headers=self.auth if headers is None else headers
        ) as response:
            return response.status, await response.json(content_type=None)

    async def lookup(self, task_id: str) -> tuple[int, Any]:
        async with self.session.get(
            f"{self.fake.base_url}/images/generations/{task_id}", headers=self.auth
        ) as response:
            return response.status, await response.json(content_type=None)

    async def upload(self, data: bytes | None, *, filename: str = "x.png") -> tuple[int, Any]:
        form = aiohttp.FormData()
        if data is not None:
            form.add_field("file", data, filename=filename, content_type="image/png")
        form.add_field("purpose", "generation")
        async with self.session.post(self.fake.base_url + "/uploads/images", data=form, headers=self.auth) as response:
            return response.status, await response.json(content_type=None)

    async def get(self, url: str) -> tuple[int, str, bytes]:
        async with self.session.get(url) as response:
            return response.status, response.content_type, await response.read()


@pytest.fixture
def raw(toapis_fake: FakeToAPIs, toapis_session: aiohttp.ClientSession) -> Raw:
    return Raw(toapis_fake, toapis_session)


def body(**overrides: Any) -> dict[str, Any]:
    return {"model": "gpt-image-2", "prompt": "a fox", "size": "1:1", "n": 1, **overrides}


# --- keys ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{"Authorization": "Bearer sk-wrong"}, {}], ids=["wrong", "missing"])
async def test_a_wrong_or_missing_key_gets_the_documented_401(
    raw: Raw, toapis_fake: FakeToAPIs, headers: dict[str, str]
) -> None:
    status, payload = await raw.submit(body(), headers=headers)
    assert status == 401
    assert payload["error"]["code"] == "authentication_error"
    assert payload["error"]["type"] == "authentication_error"
    assert toapis_fake.tasks == {}
    (request,) = toapis_fake.requests
    assert request.key_ok is (False if headers else None)
    assert request.headers.get("Authorization") == ("[redacted]" if headers else None)


async def test_the_log_never_holds_the_key(raw: Raw, toapis_fake: FakeToAPIs) -> None:
    await raw.submit(body())
    assert toapis_fake.requests[0].key_ok is True
    assert toapis_fake.api_key not in repr(toapis_fake.requests)


# --- submit -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "param"),
    [
        ({"model": None}, "model"),
        ({"model": "nope"}, "model"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "x" * 32_001}, "prompt"),  # the page's limit, not Imagine's
        ({"size": "1024x1024"}, "size"),  # the pixel form, while the fake takes the ratio form
        ({"size": "1:4"}, "size"),
        ({"n": 0}, "n"),
        ({"n": 11}, "n"),
        ({"n": "2"}, "n"),
        ({"response_format": "png"}, "response_format"),
        ({"client_business_id": ""}, "client_business_id"),
        ({"reference_images": "https://example.com/a.png"}, "reference_images"),
        ({"reference_images": ["data:image/png;base64,AAAA"]}, "reference_images"),
        ({"reference_images": ["http://localhost/a.png"]}, "reference_images"),
        ({"reference_images": ["http://192.168.1.5/a.png"]}, "reference_images"),
        ({"image_urls": ["ftp://example.com/a.png"]}, "reference_images"),
    ],
)
async def test_invalid_submits_get_400_invalid_request(
    raw: Raw, toapis_fake: FakeToAPIs, overrides: dict[str, Any], param: str
) -> None:
    status, payload = await raw.submit(body(**overrides))
    assert status == 400
    assert payload["error"]["code"] == "invalid_request"
    assert payload["error"]["param"] == param
    assert toapis_fake.tasks == {}


async def test_a_non_json_submit_is_refused(raw: Raw, toapis_session: aiohttp.ClientSession) -> None:
    async with toapis_session.post(
        raw.fake.base_url + "/images/generations", data=b"{not json", headers=raw.auth
    ) as response:
        assert response.status == 400


async def test_a_submit_answers_the_documented_task(raw: Raw, toapis_fake: FakeToAPIs) -> None:
    status, payload = await raw.submit(body(client_business_id="job-9", image_urls=["https://example.com/a.png"]))
    assert status == 200
    assert payload["id"].startswith("task_img_")
    assert payload["object"] == "generation.task"
    assert (payload["status"], payload["progress"], payload["client_business_id"]) == ("queued", 0, "job-9")
    assert isinstance(payload["created_at"], int)
    task = toapis_fake.tasks[payload["id"]]
    assert task.reference_images == ("https://example.com/a.png",)  # image_urls is normalised


async def test_an_own_upload_is_a_valid_reference_until_it_expires(raw: Raw, toapis_fake: FakeToAPIs) -> None:
    _, uploaded = await raw.upload(PNG)
    url = uploaded["data"]["url"]
    assert (await raw.submit(body(reference_images=[url])))[0] == 200
    toapis_fake.upload_ttl = 0.0
    status, payload = await raw.submit(body(reference_images=[url]))
    assert status == 400
    assert "could not be fetched" in payload["error"]["message"]
    assert (await raw.get(url))[0] == 404


async def test_a_finished_result_is_a_valid_reference(raw: Raw, toapis_fake: FakeToAPIs) -> None:
    toapis_fake.queue_timeline(Timeline.instant(), Timeline.never_ends())
    _, done = await raw.submit(body())
    _, running = await raw.submit(body())
    assert (await raw.submit(body(reference_images=[toapis_fake.result_url(done["id"], 1)])))[0] == 200
    for url in (toapis_fake.result_url(done["id"], 2), toapis_fake.result_url(running["id"], 1)):
        assert (await raw.submit(body(reference_images=[url])))[0] == 400


async def test_two_submits_with_one_business_id_make_two_tasks(raw: Raw, toapis_fake: FakeToAPIs) -> None:
    await raw.submit(body(client_business_id="job-1"))
    await raw.submit(body(client_business_id="job-1"))
    assert len(toapis_fake.tasks_for("job-1")) == 2  # the worst case, so that tests can count


# --- lookup -------------------------------------------------------------------------------------------------------


async def test_unknown_tasks_get_the_documented_404_or_the_variant(raw: Raw, toapis_fake: FakeToAPIs) -> None:
    assert await raw.lookup("task_img_nope") == (
        404,
        {"error": {"code": 404, "message": "Task not found", "type": "not_found_error"}},
    )
    toapis_fake.task_not_exist_variant = True
    assert await raw.lookup("task_img_nope") == (400, {"message": "task_not_exist"})


async def test_lookup_by_task_id_or_business_id(raw: Raw, toapis_fake: FakeToAPIs) -> None:
    toapis_fake.queue_timeline(Timeline.instant())
    _, created = await raw.submit(body(client_business_id="job-7", n=2))
    by_id = await raw.lookup(created["id"])
    by_business_id = await raw.lookup("job-7")
    assert by_id == by_business_id
    status, payload = by_id
    assert status == 200
    assert payload["status"] == "completed"
    assert payload["expires_at"] == payload["completed_at"] + 86_400
    assert [item["url"] for item in payload["result"]["data"]] == [
        toapis_fake.result_url(created["id"], 1),
        toapis_fake.result_url(created["id"], 2),
    ]
    assert payload["url"] == toapis_fake.result_url(created["id"], 1)


async def test_failed_tasks_answer_200_with_an_error(raw: Raw, toapis_fake: FakeToAPIs) -> None:
    toapis_fake.queue_timeline(Timeline.failing("kaput", after=0.0), Timeline.content_policy(after=0.0))
    _, failed = await raw.submit(body())
    _, refused = await raw.submit(body())
    assert (await raw.lookup(failed["id"]))[1]["error"] == {"code": "generation_failed", "message": "kaput"}
    status, payload = await raw.lookup(refused["id"])
    assert status == 200
    assert payload["status"] == "failed"
    assert "content policy" in payload["error"]["message"]


async def test_result_formats(raw: Raw, toapis_fake: FakeToAPIs) -> None:
    toapis_fake.queue_timeline(Timeline.instant(), Timeline.instant())
    _, first = await raw.submit(body())
    toapis_fake.result_format = ResultFormat.TOP_LEVEL_URL
    payload = (await raw.lookup(first["id"]))[1]
    assert "result" not in payload
    assert payload["url"] == toapis_fake.result_url(first["id"], 1)
    toapis_fake.result_format = ResultFormat.B64_JSON
    payload = (await raw.lookup(first["id"]))[1]
    assert payload["result"]["data"][0]["b64_json"]


# --- files --------------------------------------------------------------------------------------------------------


async def test_results_are_real_distinct_pngs_at_the_size_asked(raw: Raw, toapis_fake: FakeToAPIs) -> None:
    toapis_fake.queue_timeline(Timeline.instant(), Timeline.instant())
    _, wide = await raw.submit(body(size="3:2", n=2))
    _, tall = await raw.submit(body(size="2:3", n=1))
    images = []
    for task_id, index in [(wide["id"], 1), (wide["id"], 2), (tall["id"], 1)]:
        status, content_type, data = await raw.get(toapis_fake.result_url(task_id, index))
        assert (status, content_type) == (200, "image/png")
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            images.append((image.size, image.convert("RGB").getpixel((0, 0))))
    assert [size for size, _ in images] == [(1536, 1024), (1536, 1024), (1024, 1536)]
    assert len({colour for _, colour in images}) == 3


async def test_large_results_still_decode(raw: Raw, toapis_fake: FakeToAPIs) -> None:
    toapis_fake.queue_timeline(Timeline.instant())
    toapis_fake.result_min_bytes = 1_000_000
    _, created = await raw.submit(body())
    _, _, data = await raw.get(toapis_fake.result_url(created["id"], 1))
    assert len(data) >= 1_000_000
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        assert image.size == (1024, 1024)


async def test_no_file_before_completion_or_past_the_count(raw: Raw, toapis_fake: FakeToAPIs) -> None:
    toapis_fake.queue_timeline(Timeline.never_ends(), Timeline.fewer_images(1, after=0.0))
    _, running = await raw.submit(body())
    _, short = await raw.submit(body(n=3))
    assert (await raw.get(toapis_fake.result_url(running["id"], 1)))[0] == 404
    assert (await raw.get(toapis_fake.result_url(short["id"], 1)))[0] == 200
    assert (await raw.get(toapis_fake.result_url(short["id"], 2)))[0] == 404


# --- uploads ------------------------------------------------------------------------------------------------------


async def test_uploads_up_to_exactly_10_000_000_bytes(raw: Raw) -> None:
    status, payload = await raw.upload(PNG + bytes(10_000_000 - len(PNG)))
    assert status == 200
    assert payload["success"] is True
    assert payload["data"]["size"] == 10_000_000
    assert payload["data"]["mime_type"] == "image/png"
    assert await raw.upload(PNG + bytes(10_000_001 - len(PNG))) == (
        400,
        {"success": False, "message": "Image too large. Maximum size is 10MB"},
    )


async def test_uploads_are_typed_by_their_bytes(raw: Raw, toapis_fake: FakeToAPIs) -> None:
    assert await raw.upload(b"BM" + bytes(100), filename="x.png") == (
        400,
        {"success": False, "message": "Unsupported image type. Allowed: JPEG, PNG, WebP, GIF"},
    )
    status, payload = await raw.upload(None)
    assert (status, payload["success"]) == (400, False)
    assert toapis_fake.uploads == {}


# --- faults, rate limits, controls --------------------------------------------------------------------------------


async def test_faults_queue_in_order_and_forever_until_cleared(raw: Raw, toapis_fake: FakeToAPIs) -> None:
    toapis_fake.fail(Endpoint.SUBMIT, Fault.bad_gateway())
    toapis_fake.fail(Endpoint.SUBMIT, Fault.server_error(), times=None)
    async with raw.session.post(raw.fake.base_url + "/images/generations", json=body(), headers=raw.auth) as response:
        assert (response.status, response.content_type) == (502, "text/html")
        assert b"502 Bad Gateway" in await response.read()
    assert [(await raw.submit(body()))[0] for _ in range(3)] == [500, 500, 500]
    toapis_fake.clear_faults()
    assert (await raw.submit(body()))[0] == 200


async def test_a_fault_after_effect_still_creates_the_task(raw: Raw, toapis_fake: FakeToAPIs) -> None:
    toapis_fake.fail(Endpoint.SUBMIT, Fault.unavailable(), after_effect=True)
    status, payload = await raw.submit(body(client_business_id="job-1"))
    assert (status, payload["error"]["code"]) == (503, "rate_limit_unavailable")
    assert len(toapis_fake.tasks_for("job-1")) == 1


async def test_429_carries_the_documented_headers(raw: Raw, toapis_fake: FakeToAPIs) -> None:
    toapis_fake.fail(Endpoint.SUBMIT, Fault.rate_limited(retry_after=2.5))
    async with raw.session.post(raw.fake.base_url + "/images/generations", json=body(), headers=raw.auth) as response:
        assert response.status == 429
        assert response.headers["Retry-After"] == "2.5"
        assert response.headers["X-RateLimit-Category"] == "async_submit"
        assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} <= set(response.headers)
        assert (await response.json())["error"]["code"] == "rate_limit_exceeded"


async def test_rate_limits_count_per_bucket(raw: Raw, toapis_fake: FakeToAPIs) -> None:
    toapis_fake.set_rate_limit(Endpoint.SUBMIT, limit=2, window=600.0)
    statuses = [(await raw.submit(body()))[0] for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert (await raw.lookup("task_img_x"))[0] == 404  # lookups have their own bucket
    async with raw.session.post(raw.fake.base_url + "/images/generations", json=body(), headers=raw.auth) as response:
        assert response.headers["X-RateLimit-Category"] == "async_submit"
        assert 599.0 < float(response.headers["Retry-After"]) <= 600.0


async def test_rate_limits_forget_requests_older_than_the_window(raw: Raw, toapis_fake: FakeToAPIs) -> None:
    toapis_fake.set_rate_limit(Endpoint.LOOKUP, limit=1, window=0.05)
    assert (await raw.lookup("task_img_x"))[0] == 404
    await asyncio.sleep(0.06)  # time passing is the point here: the first lookup leaves the window
    assert (await raw.lookup("task_img_x"))[0] == 404


async def test_a_dropped_connection(raw: Raw, toapis_fake: FakeToAPIs) -> None:
    # aiohttp itself repeats an idempotent request once when the connection drops, so drop it twice.
    toapis_fake.fail(Endpoint.MODELS, Fault.disconnect(), times=2)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        async with raw.session.get(raw.fake.base_url + "/models", headers=raw.auth) as response:
            await response.read()
    assert [request.status for request in toapis_fake.requests_to(Endpoint.MODELS)] == [None, None]


async def test_models_and_balance(raw: Raw) -> None:
    async with raw.session.get(raw.fake.base_url + "/models?type=image", headers=raw.auth) as response:
        assert [model["id"] for model in (await response.json())["data"]] == list(catalog.MODELS)
    async with raw.session.get(raw.fake.base_url + "/balance", headers=raw.auth) as response:
        assert (await response.json())["success"] is True


async def test_timeline_choice_next_then_prompt_then_default(raw: Raw, toapis_fake: FakeToAPIs) -> None:
    queued, by_prompt = Timeline.never_ends(progress=1), Timeline.never_ends(progress=2)
    toapis_fake.on_prompt("special", by_prompt)
    toapis_fake.queue_timeline(queued)
    ids = [(await raw.submit(body(prompt=prompt)))[1]["id"] for prompt in ("special", "special", "plain")]
    assert [toapis_fake.tasks[task_id].timeline for task_id in ids] == [queued, by_prompt, toapis_fake.default_timeline]


def test_timelines_move_through_their_steps() -> None:
    timeline = Timeline(
        steps=(Step(0.0, "queued", 0), Step(1.0, "in_progress", 20), Step(2.0, "in_progress", 70)), ends_at=3.0
    )
    assert [timeline.state_at(t) for t in (0.0, 0.5, 1.0, 2.5, 3.0, 99.0)] == [
        ("queued", 0),
        ("queued", 0),
        ("in_progress", 20),
        ("in_progress", 70),
        ("completed", 100),
        ("completed", 100),
    ]
    failing = Timeline(steps=timeline.steps, ends_at=3.0, outcome=Outcome.FAILED)
    assert failing.state_at(3.0) == ("failed", 70)
    assert Timeline.never_ends(progress=5).state_at(10**6) == ("in_progress", 5)
    simple = Timeline.simple(queued=1.0, running=2.0, progress=(10, 60))
    assert [simple.state_at(t) for t in (0.5, 1.0, 2.0, 3.0)] == [
        ("queued", 0),
        ("in_progress", 10),
        ("in_progress", 60),
        ("completed", 100),
    ]


async def test_wait_for_gives_up_with_timeout_error(toapis_fake: FakeToAPIs) -> None:
    with pytest.raises(TimeoutError):
        await toapis_fake.wait_for(lambda: False, timeout=0.05)


async def test_slow_faults_do_not_hold_up_shutdown(toapis_session: aiohttp.ClientSession) -> None:
    fake = await FakeToAPIs().start()
    fake.fail(Endpoint.MODELS, Fault.slow(60))
    request = asyncio.create_task(
        toapis_session.get(fake.base_url + "/models", headers={"Authorization": f"Bearer {fake.api_key}"})
    )
    await fake.wait_for(lambda: len(fake.requests) == 1)
    started = time.monotonic()
    await fake.close()
    assert time.monotonic() - started < 5.0
    response = await request
    response.release()


async def test_runs_standalone() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.toapis",
        "--port",
        "0",
        "--api-key",
        "sk-standalone",
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(30):
            first = (await process.stdout.readline()).decode()
        base_url = first.split()[3]
        assert base_url.startswith("http://127.0.0.1:")
        assert base_url.endswith("/v1")
        async with (
            aiohttp.ClientSession() as session,
            session.get(base_url + "/models", headers={"Authorization": "Bearer sk-standalone"}) as response,
        ):
            assert response.status == 200
            assert json.loads(await response.read())["object"] == "list"
    finally:
        process.terminate()
        await process.wait()


async def test_rate_limit_windows_hold_together(
    raw: Raw, toapis_fake: FakeToAPIs, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fake's clock stands still unless moved: three submits fall within the short window however slow the
    # machine, and the window is then left by moving the clock, not by sleeping.
    now = [time.monotonic()]
    monkeypatch.setattr(
        fake_toapis, "time", SimpleNamespace(monotonic=lambda: now[0], time=time.time, time_ns=time.time_ns)
    )
    # As ToAPIs's a second and in ten seconds do: 2 in the short window, 3 in the long one.
    toapis_fake.set_rate_limit(Endpoint.SUBMIT, limit=2, window=1.0)
    toapis_fake.set_rate_limit(Endpoint.SUBMIT, limit=3, window=600.0)
    assert [(await raw.submit(body()))[0] for _ in range(3)] == [200, 200, 429]
    now[0] += 1.5  # the short window empties, the long one does not
    assert [(await raw.submit(body()))[0] for _ in range(2)] == [200, 429]
