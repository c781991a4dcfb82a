"""The parts of `python bot.py --check` that need no Discord: the database and ToAPIs.

Each finding is one `CheckLine`: ✓ fine, ✗ a problem that keeps Imagine from running (the check exits 1), or
⚠ worth knowing but not in the way. A line says what to do when something needs doing. Expected failures (no
network, a refused key, an unreachable database) are lines, never exceptions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from storage.errors import StorageError
from storage.schema_status import SchemaStatus, schema_status
from storage.webhook_events import WebhookProblem
from toapis import ToAPIsClient, ToAPIsError, catalog
from toapis.redaction import redacted_url


class Mark(StrEnum):
    OK = "✓"
    FAIL = "✗"
    NOTE = "⚠"


@dataclass(frozen=True)
class CheckLine:
    mark: Mark
    subject: str
    text: str

    def render(self) -> str:
        return f"{self.mark.value} {self.subject}: {self.text}"


def ok(subject: str, text: str) -> CheckLine:
    return CheckLine(Mark.OK, subject, text)


def fail(subject: str, text: str) -> CheckLine:
    return CheckLine(Mark.FAIL, subject, text)


def note(subject: str, text: str) -> CheckLine:
    return CheckLine(Mark.NOTE, subject, text)


def describe_database(url: str) -> str:
    """The database as a line may show it: an SQLite path, or a PostgreSQL server without its password."""
    if url.startswith("sqlite:"):
        return url.removeprefix("sqlite:///") or url
    # Read from the redacted URL: a password holding an unescaped `/`, `#` or `?` ends urlsplit's host early, and
    # the rest of the URL (the password's tail with the host) would be read as the path.
    try:
        parts = urlsplit(redacted_url(url))
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # no host and port can be told apart: the engine's own error says what is wrong
        return "PostgreSQL"
    return f"PostgreSQL at {parts.hostname}{port}{parts.path}"


async def check_database(url: str, *, timeout: float = 10.0) -> tuple[CheckLine, SchemaStatus | None]:
    """Reachable, and which migrations the next start applies; nothing is changed."""
    where = describe_database(url)
    try:
        status = await schema_status(url, timeout=timeout)
    except StorageError as exc:
        return fail("database", f"{exc}. Check DATABASE_URL and that the database is up."), None
    if status.too_new:
        known = len(status.migrations)
        return (
            fail(
                "database",
                f"{where} was written by a newer Imagine (schema version {status.version}; this one knows up to "
                f"{known}). Run that version, or point DATABASE_URL at another database.",
            ),
            status,
        )
    if not status.exists:
        return ok("database", f"{where} does not exist yet: the first start creates it"), status
    if status.pending:
        names = ", ".join(migration.filename for migration in status.pending)
        return ok("database", f"{where} answers; the next start applies {len(status.pending)} migration(s): {names}"), (
            status
        )
    return ok("database", f"{where} answers, schema version {status.version} (current)"), status


async def check_toapis(
    client: ToAPIsClient, *, models: Sequence[str], low_balance: float | None = None
) -> list[CheckLine]:
    """The key, the models Imagine sends (offered to this key?), and the balance."""
    health = await client.check_health()
    if not health.reachable:
        return [
            fail("ToAPIs", f"cannot reach {client.base_url}: {health.reason}. Check the network and TOAPIS_BASE_URL.")
        ]
    if health.key_accepted is False:
        return [fail("ToAPIs", f"the key was refused ({health.reason}). Check TOAPIS_API_KEY.")]
    if health.ok:
        lines = [ok("ToAPIs", f"{client.base_url} answers and accepts the key")]
    else:
        lines = [note("ToAPIs", f"{client.base_url} answers, but: {health.reason}")]
    lines.append(await _check_models(client, models))
    lines.append(await _check_balance(client, low_balance))
    return lines


async def _check_models(client: ToAPIsClient, models: Sequence[str]) -> CheckLine:
    try:
        offered = set(await client.list_image_models())
    except ToAPIsError as exc:
        return note("models", f"could not list the image models ({exc})")
    missing = [model for model in models if not _offered(model, offered)]
    if missing:
        shown = ", ".join(sorted(offered)) or "none"
        return fail(
            "models",
            f"not offered to this key: {', '.join(missing)} (it offers: {shown}). "
            "List in TOAPIS_MODELS (and TOAPIS_MODEL) only models it offers.",
        )
    return ok("models", f"{', '.join(models)} offered to this key")


def _offered(model: str, offered: set[str]) -> bool:
    if model in offered:
        return True
    try:
        spec = catalog.get_model(model)
    except catalog.UnknownModelError:
        return False
    return spec.id in offered or any(alias in offered for alias in spec.aliases)


async def _check_balance(client: ToAPIsClient, low_balance: float | None) -> CheckLine:
    try:
        balance = await client.get_balance()
    except ToAPIsError as exc:
        return note("balance", f"could not read it ({exc})")
    if not balance.found:
        return note("balance", "ToAPIs found no account for this key")
    if balance.unlimited:
        return ok("balance", "unlimited")
    credits = balance.remain_credits
    dollars = f" (${balance.remain_dollars:,.2f})" if balance.remain_dollars is not None else ""
    if credits is not None:
        left = f"{credits:,.0f} credits{dollars} left"
    else:  # no credits to count in: the balance in the account's own unit, which the answer does not name
        left = f"{balance.remain_balance:,.2f} left" if balance.remain_balance is not None else "an unknown amount left"
    if balance.exhausted:
        return fail("balance", f"{left}: the account is empty. Top it up before starting.")
    if low_balance is not None and credits is not None and credits < low_balance:
        return note("balance", f"{left}, below LOW_BALANCE_ALERT ({low_balance:,g}). Top it up soon.")
    return ok("balance", left)


def check_webhooks(
    *, public_url: str | None, listen: tuple[str, int] | None, refused: WebhookProblem | None, known: bool = True
) -> CheckLine:
    """Webhooks on or off and, when on, whether ToAPIs has refused `callback_url` (`webhook_not_configured`,
    recorded by the last submits; `known` False when the database could not say)."""
    if public_url is None or listen is None:
        return ok("webhooks", "off: tasks are followed by polling")
    host, port = listen
    if refused is not None:
        when = refused.noted_at.strftime("%Y-%m-%d %H:%M UTC")
        return note(
            "webhooks",
            f"ToAPIs refused callback_url ({refused.detail}), last on {when}: jobs are followed by polling. In the "
            f"ToAPIs console, turn Task Webhooks on for this key's Token with the URL {public_url} (or one differing "
            "only in path and query) and put its signing secret in TOAPIS_WEBHOOK_SECRET; then restart.",
        )
    later = "" if known else " (whether ToAPIs accepts callback_url shows at the first job)"
    return ok("webhooks", f"on: ToAPIs calls {public_url}, your HTTPS proxy forwards it to {host}:{port}{later}")
