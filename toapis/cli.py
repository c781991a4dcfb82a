"""`python -m toapis`: generate images, probe the API, read the balance or list the image models, from a shell.

Operators use it to check their key and the API. It reads TOAPIS_API_KEY and TOAPIS_BASE_URL itself (from the
environment, or a `.env` file in the current directory; the environment wins); `models` needs neither. Progress
goes to stderr, the paths of saved images to stdout. Exit status: 0 success, 1 the API or the task failed, 2 bad
usage or setup.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final, TextIO

import aiohttp
from dotenv import dotenv_values

from toapis import catalog, contract
from toapis.client import DEFAULT_RETRY, DEFAULT_TIMEOUT, ToAPIsClient
from toapis.errors import ToAPIsError
from toapis.mime import extension_for, sniff_image_type
from toapis.models import AccountBalance, Task, TaskStatus
from toapis.redaction import redacted_url
from toapis.url_check import base_url_problem

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2

API_KEY_VARIABLE: Final = "TOAPIS_API_KEY"
BASE_URL_VARIABLE: Final = "TOAPIS_BASE_URL"
DEFAULT_MAX_BYTES: Final = 50_000_000
_UNSAFE_IN_NAMES: Final = re.compile(r"[^A-Za-z0-9._-]")


class UsageError(Exception):
    """A problem with the command line or the environment, reported as one line with exit status 2."""


@dataclass(frozen=True)
class Environment:
    """The two settings the tool reads."""

    api_key: str
    base_url: str

    def __repr__(self) -> str:
        # A repr reaches tracebacks and debug output: never the key, nor a password or key in the base URL.
        return f"Environment(api_key='***', base_url={redacted_url(self.base_url)!r})"


def read_environment(environ: Mapping[str, str], env_file: Path | None) -> Environment:
    """Read TOAPIS_API_KEY (required) and TOAPIS_BASE_URL from `environ`, falling back to `env_file`."""
    values: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        values.update({key: value for key, value in dotenv_values(env_file).items() if value is not None})
    values.update(environ)
    api_key = values.get(API_KEY_VARIABLE, "").strip()
    if not api_key:
        raise UsageError(f"{API_KEY_VARIABLE} is not set (in the environment or in .env)")
    base_url = values.get(BASE_URL_VARIABLE, "").strip() or contract.DEFAULT_BASE_URL
    # Checked here rather than left to the client, whose message would echo a password in the URL.
    if base_url_problem(base_url, ("http", "https")) is not None:
        raise UsageError(
            f"the ToAPIs base URL must be an http(s) URL, not {redacted_url(base_url)!r} ({BASE_URL_VARIABLE})"
        )
    return Environment(api_key=api_key, base_url=base_url)


def build_parser() -> argparse.ArgumentParser:
    """The command line: `generate`, `health`, `balance` and `models`."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", help="log requests and retries to stderr")
    common.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per request (default 30)")
    common.add_argument(
        "--retries", type=int, default=DEFAULT_RETRY.max_retries, help="retries of transient failures (default 2)"
    )
    parser = argparse.ArgumentParser(prog="python -m toapis", description="Talk to the ToAPIs image API.")
    commands = parser.add_subparsers(dest="command", required=True)

    generate = commands.add_parser(
        "generate",
        parents=[common],
        help="generate images and save them",
        epilog="`python -m toapis models` lists each model's aspect ratios, resolutions, n and reference images.",
    )
    generate.add_argument("prompt", help="what to draw")
    generate.add_argument(
        "--model", default=catalog.DEFAULT_MODEL_ID, help=f"image model (default {catalog.DEFAULT_MODEL_ID})"
    )
    generate.add_argument(
        "--aspect",
        default=catalog.DEFAULT_ASPECT,
        help=f"aspect ratio, one the model offers among {' '.join(catalog.ASPECTS)} (default {catalog.DEFAULT_ASPECT})",
    )
    generate.add_argument(
        "--resolution",
        help=f"resolution tier the model offers: {', '.join(catalog.RESOLUTIONS)} (default: the model's)",
    )
    generate.add_argument("--n", type=int, default=1, help="number of images (default 1)")
    generate.add_argument(
        "--image", action="append", default=[], type=Path, help="a reference image (repeat for several)"
    )
    generate.add_argument("--out", type=Path, default=Path("out"), help="directory for the images (default out/)")
    generate.add_argument(
        "--poll-interval",
        type=float,
        default=contract.RECOMMENDED_POLL_INTERVAL,
        help="seconds between task lookups (default 5)",
    )
    generate.add_argument("--deadline", type=float, default=600.0, help="give up waiting after this many seconds")
    generate.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES, help="largest image to download")

    commands.add_parser("health", parents=[common], help="check that the API answers and accepts the key (not billed)")
    commands.add_parser(
        "balance", parents=[common], help="the key's account balance: credits and dollars, used and left"
    )
    commands.add_parser("models", help="list the image models Imagine can offer, with their options (no request)")
    return parser


def main(argv: Sequence[str] | None = None, *, environ: Mapping[str, str] | None = None) -> int:
    """Run the tool; return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "models":
        print_models(sys.stdout)
        return EXIT_OK
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "generate":
            check_generate_options(args)
        env = read_environment(os.environ if environ is None else environ, Path.cwd() / ".env")
        return asyncio.run(_run(args, env, out=sys.stdout, err=sys.stderr))
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ToAPIsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:  # e.g. the output directory cannot be written
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted (a submitted task keeps running upstream)", file=sys.stderr)
        return 130


_OPTION_FLAGS: Final = {
    catalog.RequestOption.MODEL: "--model",
    catalog.RequestOption.PROMPT: "the prompt",
    catalog.RequestOption.ASPECT: "--aspect",
    catalog.RequestOption.RESOLUTION: "--resolution",
    catalog.RequestOption.N: "--n",
    catalog.RequestOption.REFERENCES: "--image",
}


def check_generate_options(args: argparse.Namespace) -> None:
    """Refuse, before anything is read or sent, a model or option the catalog says the model does not take."""
    try:
        spec = catalog.get_model(args.model)
    except catalog.UnknownModelError as exc:
        raise UsageError(f"--model: {exc.message}") from None
    args.model = spec.id
    if args.resolution is not None:
        args.resolution = catalog.normalise_resolution(args.resolution)
    problem = catalog.check_request(
        spec,
        args.aspect,
        args.resolution,
        args.n,
        len(args.image),
        len(args.prompt) if args.prompt.strip() else 0,
    )
    if problem is not None:
        raise UsageError(f"{_OPTION_FLAGS[problem.option]}: {problem.message}")


def print_models(out: TextIO) -> None:
    """List every catalogued model with the options Imagine can ask of it."""
    for spec in catalog.MODELS.values():
        aliases = f" (also {', '.join(spec.aliases)})" if spec.aliases else ""
        resolutions = ", ".join(
            f"{tier} (default)" if tier == spec.default_resolution else tier for tier in spec.resolutions
        )
        if spec.placement is catalog.ResolutionPlacement.NONE:
            resolutions += " (the model takes no resolution)"
        shape = catalog.describe_reference_shape(spec)
        about = ", ".join(part for part in (spec.references.field, shape) if part)
        references = f"up to {spec.reference_limit} ({about})" if spec.takes_references else "none"
        print(f"{spec.id}  {spec.name}{aliases}", file=out)
        print(f"    aspects      {' '.join(spec.aspects)}", file=out)
        print(f"    resolutions  {resolutions}", file=out)
        print(f"    n            {catalog.describe_n(spec)}", file=out)
        print(f"    references   {references}", file=out)
        print(f"    prompt       up to {spec.prompt_max:,} characters", file=out)


async def _run(args: argparse.Namespace, env: Environment, *, out: TextIO, err: TextIO) -> int:
    async with aiohttp.ClientSession() as session:
        try:
            client = ToAPIsClient(
                session,
                api_key=env.api_key,
                base_url=env.base_url,
                model=getattr(args, "model", catalog.DEFAULT_MODEL_ID),
                timeout=args.timeout,
                retry=replace(DEFAULT_RETRY, max_retries=args.retries),
            )
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        if args.command == "health":
            return await _health(client, out=out)
        if args.command == "balance":
            return await _balance(client, out=out)
        return await _generate(client, args, out=out, err=err)


async def _health(client: ToAPIsClient, *, out: TextIO) -> int:
    status = await client.check_health()
    if status.ok:
        print(f"ok: {status.reason} ({status.latency:.2f} s, {client.base_url})", file=out)
        return EXIT_OK
    print(f"unhealthy: {status.reason}", file=out)
    return EXIT_FAILED


async def _balance(client: ToAPIsClient, *, out: TextIO) -> int:
    balance = await client.get_balance()
    if not balance.found:
        print("error: the API found no account for this key", file=out)
        return EXIT_FAILED
    for line in describe_balance(balance):
        print(line, file=out)
    return EXIT_OK


def describe_balance(balance: AccountBalance) -> list[str]:
    """The balance as GET /balance gives it, one line per unit: credits, then US dollars (from the credits: the
    account's own unit may be another)."""
    if balance.unlimited:
        return [
            f"unlimited (used: {_amount(balance.used_credits)} credits, {_dollars(balance.used_dollars)})",
        ]
    return [
        f"credits: {_amount(balance.remain_credits)} left, {_amount(balance.used_credits)} used",
        f"dollars: {_dollars(balance.remain_dollars)} left, {_dollars(balance.used_dollars)} used",
    ]


def _amount(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"


def _dollars(value: float | None) -> str:
    return "$?" if value is None else f"${value:,.2f}"


async def _generate(client: ToAPIsClient, args: argparse.Namespace, *, out: TextIO, err: TextIO) -> int:
    references = [_read_reference(path) for path in args.image]

    urls = []
    for path, data, mime_type in references:
        print(f"uploading {path} ({len(data):,} bytes)", file=err)
        uploaded = await client.upload_image(data, filename=path.name, content_type=mime_type)
        urls.append(uploaded.url)

    business_id = f"cli-{uuid.uuid4().hex}"
    task = await client.submit_generation(
        prompt=args.prompt,
        model=args.model,
        aspect=args.aspect,
        resolution=args.resolution,
        n=args.n,
        reference_urls=urls,
        client_business_id=business_id,
    )
    print(f"submitted task {task.id}", file=err)

    def report(update: Task) -> None:
        print(f"task {update.id}: {update.status.value} {update.progress}%", file=err)

    task = await client.wait_for_task(task.id, interval=args.poll_interval, deadline=args.deadline, on_update=report)
    if task.status is TaskStatus.FAILED:
        error = task.error
        reason = f"{error.code}: {error.message}" if error else "no reason given"
        policy = " (content policy)" if task.is_content_policy_failure else ""
        print(f"error: task {task.id} failed{policy}: {reason}", file=err)
        return EXIT_FAILED

    args.out.mkdir(parents=True, exist_ok=True)
    for index, image in enumerate(task.images, start=1):
        path = await _save(client, task, index, image.url, image.data, args.out, max_bytes=args.max_bytes)
        print(path, file=out)
    if len(task.images) < args.n:
        print(f"warning: asked for {args.n} images, the API returned {len(task.images)}", file=err)
    if not task.images:
        print(f"error: task {task.id} completed without any image", file=err)
        return EXIT_FAILED
    return EXIT_OK


def _read_reference(path: Path) -> tuple[Path, bytes, str]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    mime_type = sniff_image_type(data)
    if mime_type is None:
        raise UsageError(f"{path} is not a JPEG, PNG, WebP or GIF image")
    if len(data) > contract.UPLOAD_MAX_BYTES:
        raise UsageError(f"{path} is {len(data):,} bytes; the API takes at most {contract.UPLOAD_MAX_BYTES:,}")
    return path, data, mime_type


async def _save(
    client: ToAPIsClient, task: Task, index: int, url: str | None, data: bytes | None, out_dir: Path, *, max_bytes: int
) -> Path:
    # Task ids are opaque upstream strings: keep only what is safe in a file name.
    stem = _UNSAFE_IN_NAMES.sub("_", f"{task.id}-{index}")
    if data is not None:
        path = out_dir / f"{stem}.{extension_for(sniff_image_type(data) or '')}"
        await asyncio.to_thread(path.write_bytes, data)
        return path
    assert url is not None  # a ResultImage has a URL or data
    downloaded = await client.download_image(url, max_bytes=max_bytes, dest=out_dir / f"{stem}.download")
    assert downloaded.path is not None
    path = out_dir / f"{stem}.{extension_for(downloaded.content_type)}"
    await asyncio.to_thread(downloaded.path.replace, path)
    return path
