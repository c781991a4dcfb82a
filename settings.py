"""Imagine's configuration: the only reader of the environment.

Every variable of docs/operators.md (Configuration) is read and validated here, once, at start-up. All problems
are collected and reported together in one `ConfigError`, each naming its variable, so an operator fixes their
`.env` in one pass instead of one error per restart.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Final, TypeVar
from urllib.parse import urlsplit

from dotenv import find_dotenv, load_dotenv

from i18n.locales import DISCORD_LOCALES, SUPPORTED
from toapis import catalog
from toapis.redaction import redacted_url
from toapis.url_check import UrlProblem, base_url_problem

T = TypeVar("T")

DEFAULT_TOAPIS_BASE_URL: Final = "https://toapis.com/v1"
DEFAULT_MODEL: Final = "gpt-image-2"
# The most one image may count as (MODEL_WEIGHTS): the most a /quota limit can be (docs/admins.md), so that a
# heavier image could never be taken, and far within the database's whole numbers once multiplied by n.
MAX_WEIGHT: Final = 1_000_000
DEFAULT_DATABASE_URL: Final = "sqlite:///data/imagine.db"

# Values shipped in .env.example: an operator who copied the file but did not fill it in gets told so.
PLACEHOLDERS: Final = frozenset({"", "changeme", "your-discord-bot-token", "your-toapis-api-key"})

LOG_LEVELS: Final = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
LOG_FORMATS: Final = ("text", "json")
DEFAULT_METRICS_HOST: Final = "127.0.0.1"
DEFAULT_WEBHOOK_HOST: Final = "127.0.0.1"
# A signing secret shorter than this is not one the ToAPIs console made (it shows 32 random bytes).
WEBHOOK_SECRET_MIN_CHARS: Final = 16


def _shown(value: object) -> str:
    """A setting as a repr shows it: a `Secret` as stars, a URL through `redacted_url`."""
    if isinstance(value, str) and "://" in value:
        return repr(redacted_url(value))
    return repr(value)


class Secret:
    """A string that never shows itself in a repr, a log line or a traceback."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Settings:
    """The validated configuration. Field names follow the environment variables (docs/operators.md)."""

    discord_token: Secret
    toapis_api_key: Secret
    toapis_base_url: str = DEFAULT_TOAPIS_BASE_URL
    toapis_model: str = DEFAULT_MODEL
    toapis_models: tuple[str, ...] = (DEFAULT_MODEL,)
    """The catalogued models the operator pays for (their ids); `toapis_model` is among them."""
    model_weights: tuple[tuple[str, str | None, int], ...] = ()
    """MODEL_WEIGHTS: (model id, resolution tier or None for all of the model's, weight) overrides."""
    database_url: str = DEFAULT_DATABASE_URL
    discord_api_base_url: str | None = None
    discord_gateway_url: str | None = None
    toapis_poll_interval: float = 5.0
    toapis_lookups_per_minute: int = 2400
    """This process's share of the account's task look-ups a minute (ToAPIs allows 3,000 to the default group)."""
    toapis_submits_per_minute: int = 240
    """This process's share of the account's submits a minute (ToAPIs allows 300, 5 a second, to the default group)."""
    generation_timeout: float = 600.0
    progress_edit_interval: float = 2.0
    max_concurrent_jobs: int = 8
    default_member_daily_limit: int | None = 25
    default_server_daily_limit: int | None = 250
    global_daily_limit: int | None = 1000
    server_daily_cap: int | None = None
    member_daily_cap: int | None = None
    operator_alert_webhook_url: Secret | None = None
    allowed_guild_ids: frozenset[int] = frozenset()
    retention_days: int = 30
    shard_count: int | None = None
    shard_ids: tuple[int, ...] | None = None
    log_level: str = "INFO"
    log_format: str = "text"
    low_balance_alert: float | None = None
    operator_guild_id: int | None = None
    metrics_port: int | None = None
    metrics_host: str = DEFAULT_METRICS_HOST
    toapis_webhook_secret: Secret | None = None
    """The signing secret of the key's Token in the ToAPIs console; set with `webhook_public_url`, or neither."""
    webhook_public_url: str | None = None
    """The https URL ToAPIs calls (`callback_url`): the console's URL, or one differing only in path and query."""
    webhook_host: str = DEFAULT_WEBHOOK_HOST
    webhook_port: int | None = None
    """Where Imagine listens for webhooks, behind the operator's HTTPS proxy; set whenever webhooks are on."""
    # Not read from the environment: how often the ToAPIs balance is read for LOW_BALANCE_ALERT (tests shorten it).
    balance_check_interval: float = 600.0
    pseudo_locale: str | None = None
    """IMAGINE_PSEUDO_LOCALE, for tests only: the Discord locale that speaks the pseudo-locale (docs/i18n.md)."""

    def guild_allowed(self, guild_id: int) -> bool:
        """Whether the bot works in this server: the only test of ALLOWED_GUILD_IDS (the operator's own server,
        OPERATOR_GUILD_ID, always is)."""
        return not self.allowed_guild_ids or guild_id in self.allowed_guild_ids or guild_id == self.operator_guild_id

    @property
    def webhooks_on(self) -> bool:
        """Whether ToAPIs task webhooks are received (polling then goes on slowly, as a safety net): the one place
        that decides it. `load_settings` sets the secret, the public URL and the port together, or none."""
        return (
            self.toapis_webhook_secret is not None
            and self.webhook_public_url is not None
            and self.webhook_port is not None
        )

    @property
    def shared_database(self) -> bool:
        """Whether several processes may share the database (PostgreSQL); an SQLite file has one user."""
        return not self.database_url.startswith("sqlite:")

    def __repr__(self) -> str:
        # Settings reach logs and tracebacks. A value that must never show is typed `Secret` (declared once, in
        # its field); a URL (the database's may hold a password) shows without its user and password.
        shown = ", ".join(f"{field.name}={_shown(getattr(self, field.name))}" for field in fields(self))
        return f"Settings({shown})"


class ConfigError(Exception):
    """The configuration has problems; `problems` holds one line per problem, each naming its variable."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"Imagine cannot start: the configuration has {len(problems)} problem(s):\n{lines}")


def _digits(value: str) -> bool:
    """ASCII digits only: `str.isdigit` also accepts "²" and other scripts' digits, which `int` reads or refuses."""
    return value.isascii() and value.isdigit()


class _Reader:
    """Reads variables one by one and collects every problem instead of stopping at the first."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        self.problems: list[str] = []

    def raw(self, name: str) -> str | None:
        value = self._environ.get(name)
        if value is None or not value.strip():
            return None
        return value.strip()

    def parse(self, name: str, default: T, convert: Callable[[str], T], expected: str) -> T:
        value = self.raw(name)
        if value is None:
            return default
        try:
            return convert(value)
        except ValueError:
            self.problems.append(f"{name} must be {expected}, not {value!r}")
            return default

    def secret(self, name: str, where: str) -> Secret:
        value = self.raw(name)
        if value is None:
            self.problems.append(f"{name} is required: {where}")
        elif value.lower() in PLACEHOLDERS:
            self.problems.append(f"{name} is still the placeholder from .env.example: {where}")
        return Secret(value or "")

    def url(self, name: str, default: str | None, schemes: tuple[str, ...]) -> str | None:
        value = self.raw(name)
        if value is None:
            return default
        problem = base_url_problem(value, schemes)
        if problem is UrlProblem.NOT_A_URL:
            self.problems.append(f"{name} must be a {' or '.join(schemes)} URL, not {redacted_url(value)!r}")
            return default
        if problem is UrlProblem.CREDENTIALS:
            self.problems.append(f"{name} must have no user or password, not {redacted_url(value)!r}")
            return default
        return value.rstrip("/")

    def number(self, name: str, default: float, *, minimum: float, allow_minimum: bool = False) -> float:
        value = self.parse(name, default, float, "a number of seconds")
        if value < minimum or (value == minimum and not allow_minimum):
            relation = "at least" if allow_minimum else "more than"
            self.problems.append(f"{name} must be {relation} {minimum:g} seconds, not {value:g}")
            return default
        return value

    def integer(self, name: str, default: int, *, minimum: int) -> int:
        value = self.parse(name, default, int, "a whole number")
        if value < minimum:
            self.problems.append(f"{name} must be at least {minimum}, not {value}")
            return default
        return value

    def limit(self, name: str, default: int | None) -> int | None:
        """An image limit: a whole number >= 0, or `none` for no limit."""
        value = self.raw(name)
        if value is None:
            return default
        if value.lower() == "none":
            return None
        if not _digits(value):
            self.problems.append(f"{name} must be a whole number of images (0 or more) or 'none', not {value!r}")
            return default
        return int(value)

    def webhook_url(self, name: str) -> Secret | None:
        """A Discord webhook URL (https://discord.com/api/webhooks/ID/TOKEN); a secret: its token posts."""
        value = self.raw(name)
        if value is None:
            return None
        parts = urlsplit(value)
        path = parts.path.split("/")
        if parts.scheme != "https" or "webhooks" not in path or len(path) < path.index("webhooks") + 3:
            # The URL itself is the secret: only its shape is described.
            self.problems.append(f"{name} must be a Discord webhook URL (https://discord.com/api/webhooks/ID/TOKEN)")
            return None
        return Secret(value)

    def models(self) -> tuple[str, tuple[str, ...]]:
        """TOAPIS_MODEL and TOAPIS_MODELS: catalogued ids (aliases become ids), the default among them."""
        default = self._model_id("TOAPIS_MODEL", self.raw("TOAPIS_MODEL") or DEFAULT_MODEL) or DEFAULT_MODEL
        listed = self.raw("TOAPIS_MODELS")
        models: list[str] = []
        for item in listed.split(",") if listed else [default]:
            model = self._model_id("TOAPIS_MODELS", item.strip()) if item.strip() else None
            if model is not None and model not in models:
                models.append(model)
        if listed and default not in models:
            self.problems.append(f"TOAPIS_MODEL ({default}) must be one of TOAPIS_MODELS ({', '.join(models)})")
        return default, tuple(models or [default])

    def _model_id(self, name: str, value: str) -> str | None:
        try:
            return catalog.get_model(value).id
        except catalog.UnknownModelError:
            self.problems.append(f"{name} names an unknown image model {value!r}; known: {', '.join(catalog.MODELS)}")
            return None

    def weights(self, name: str, models: tuple[str, ...]) -> tuple[tuple[str, str | None, int], ...]:
        """`model[@resolution]=weight,...`: each a model of TOAPIS_MODELS, a tier it offers, a whole number >= 1."""
        value = self.raw(name)
        if value is None:
            return ()
        weights: list[tuple[str, str | None, int]] = []
        for item in (part.strip() for part in value.split(",") if part.strip()):
            target, _, number = item.partition("=")
            model_part, at, tier = target.strip().partition("@")
            model = self._model_id(name, model_part.strip())
            if model is None:
                continue
            if model not in models:
                self.problems.append(f"{name} weighs {model}, which is not in TOAPIS_MODELS")
                continue
            if at and not tier.strip():
                self.problems.append(f"{name}: {item!r} names no resolution after '@'")
                continue
            resolution = catalog.normalise_resolution(tier) if tier.strip() else None
            if resolution is not None and resolution not in catalog.get_model(model).resolutions:
                offered = ", ".join(catalog.get_model(model).resolutions)
                self.problems.append(f"{name}: {model} has no resolution {tier.strip()!r} (it has {offered})")
                continue
            if not _digits(number.strip()) or int(number) < 1:
                self.problems.append(f"{name}: the weight of {item!r} must be a whole number of images, 1 or more")
                continue
            if int(number) > MAX_WEIGHT:
                self.problems.append(f"{name}: the weight of {item!r} must be at most {MAX_WEIGHT:,}")
                continue
            if any((model, resolution) == (known, tier_known) for known, tier_known, _ in weights):
                target_name = model if resolution is None else f"{model}@{resolution}"
                self.problems.append(f"{name} weighs {target_name} more than once")
                continue
            weights.append((model, resolution, int(number)))
        return tuple(weights)

    def snowflake(self, name: str) -> int | None:
        """One Discord id (a server's, say), or None when unset."""
        value = self.raw(name)
        if value is None:
            return None
        if not _digits(value) or int(value) == 0:
            self.problems.append(f"{name} must be a numeric Discord id, not {value!r}")
            return None
        return int(value)

    def port(self, name: str, *, any_free: bool = True) -> int | None:
        """A TCP port, or None when unset; `any_free`: 0 is allowed, for any free port."""
        value = self.raw(name)
        if value is None:
            return None
        least = 0 if any_free else 1
        if not _digits(value) or not least <= int(value) <= 65535:
            expected = "(1 to 65535; 0 for any free port)" if any_free else "from 1 to 65535"
            self.problems.append(f"{name} must be a port number {expected}, not {value!r}")
            return None
        return int(value)

    def host(self, name: str, default: str) -> str:
        """An address or host name to listen on."""
        value = self.raw(name) or default
        if any(character.isspace() or character in "/@" for character in value):
            self.problems.append(f"{name} must be an address or host name such as 127.0.0.1, not {value!r}")
            return default
        return value

    def webhooks(self) -> tuple[Secret | None, str | None, int | None]:
        """TOAPIS_WEBHOOK_SECRET, WEBHOOK_PUBLIC_URL and WEBHOOK_PORT: all three, or none (webhooks off)."""
        secret_text = self.raw("TOAPIS_WEBHOOK_SECRET")
        url = self.raw("WEBHOOK_PUBLIC_URL")
        port_text = self.raw("WEBHOOK_PORT")
        if secret_text is None and url is None:
            if port_text is not None:
                self.problems.append(
                    "WEBHOOK_PORT is set but webhooks are off: set TOAPIS_WEBHOOK_SECRET and WEBHOOK_PUBLIC_URL too, "
                    "or unset it"
                )
            return None, None, None
        if secret_text is None or url is None:
            names = ("TOAPIS_WEBHOOK_SECRET", "WEBHOOK_PUBLIC_URL")
            missing, given = names if secret_text is None else names[::-1]
            self.problems.append(f"{missing} is required with {given}: webhooks need both (or neither, to poll only)")
        secret = None
        if secret_text is not None:
            if secret_text.lower() in PLACEHOLDERS or len(secret_text) < WEBHOOK_SECRET_MIN_CHARS:
                # Its value is a secret: only its shape is described.
                self.problems.append(
                    "TOAPIS_WEBHOOK_SECRET must be the signing secret the ToAPIs console showed for the key's Token "
                    f"(at least {WEBHOOK_SECRET_MIN_CHARS} characters)"
                )
            elif any(character.isspace() for character in secret_text):
                self.problems.append("TOAPIS_WEBHOOK_SECRET must not contain spaces")
            else:
                secret = Secret(secret_text)
        public_url = self._public_url(url) if url is not None else None
        if port_text is None:
            self.problems.append(
                "WEBHOOK_PORT is required with webhooks: the port Imagine listens on, behind your HTTPS proxy"
            )
        return secret, public_url, self.port("WEBHOOK_PORT", any_free=False)

    def _public_url(self, value: str) -> str | None:
        parts = urlsplit(value)
        try:
            parts.port  # noqa: B018 - read for its check of the port's range
        except ValueError:
            self.problems.append(f"WEBHOOK_PUBLIC_URL has an invalid port: {redacted_url(value)!r}")
            return None
        if parts.scheme != "https" or not parts.hostname:
            self.problems.append(
                "WEBHOOK_PUBLIC_URL must be an https URL (ToAPIs calls only https), such as "
                f"https://imagine.example.com/toapis, not {redacted_url(value)!r}"
            )
            return None
        if parts.username is not None or parts.password is not None or parts.fragment:
            self.problems.append("WEBHOOK_PUBLIC_URL must have no user, password or #fragment (ToAPIs refuses them)")
            return None
        return value

    def positive(self, name: str, unit: str) -> float | None:
        """A number above 0, or None when unset."""
        value = self.parse(name, None, float, f"a number of {unit}")
        if value is not None and not value > 0:
            self.problems.append(f"{name} must be more than 0 {unit}, not {value:g}")
            return None
        return value

    def id_list(self, name: str) -> tuple[int, ...]:
        value = self.raw(name)
        if value is None:
            return ()
        items = [item.strip() for item in value.split(",") if item.strip()]
        bad = [item for item in items if not _digits(item)]
        if bad:
            self.problems.append(f"{name} must be comma-separated numeric ids; these are not: {', '.join(bad)}")
            return ()
        return tuple(int(item) for item in items)


def load_settings(environ: Mapping[str, str] | None = None, *, dotenv: bool = True) -> Settings:
    """Read and validate the configuration; raise `ConfigError` naming every problem at once.

    With `environ` None, `.env` (if present, looked for from the working directory up) is loaded into the
    process environment first; variables already set in the environment win over the file, as usual.
    """
    if environ is None:
        if dotenv:
            load_dotenv(find_dotenv(usecwd=True), override=False)
        environ = os.environ
    read = _Reader(environ)

    discord_token = read.secret("DISCORD_TOKEN", "the bot token from the Discord Developer Portal (Bot tab)")
    toapis_api_key = read.secret("TOAPIS_API_KEY", "your ToAPIs API key")
    toapis_base_url = read.url("TOAPIS_BASE_URL", DEFAULT_TOAPIS_BASE_URL, ("http", "https"))
    model, models = read.models()
    weights = read.weights("MODEL_WEIGHTS", models)
    database_url = read.raw("DATABASE_URL") or DEFAULT_DATABASE_URL
    if not database_url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        read.problems.append(
            "DATABASE_URL must start with sqlite:/// (a file) or postgresql:// (a server), "
            f"not {redacted_url(database_url)!r}"
        )

    shard_count = read.parse("SHARD_COUNT", None, int, "a whole number")
    shard_ids = read.id_list("SHARD_IDS") or None
    if shard_count is not None and shard_count < 1:
        read.problems.append(f"SHARD_COUNT must be at least 1, not {shard_count}")
    if shard_ids is not None:
        if shard_count is None:
            read.problems.append("SHARD_IDS needs SHARD_COUNT: which shards out of how many")
        elif any(shard >= shard_count for shard in shard_ids):
            read.problems.append(f"SHARD_IDS must each be below SHARD_COUNT ({shard_count}): {shard_ids}")

    log_level = (read.raw("LOG_LEVEL") or "INFO").upper()
    if log_level not in LOG_LEVELS:
        read.problems.append(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, not {log_level!r}")
        log_level = "INFO"
    log_format = (read.raw("LOG_FORMAT") or "text").lower()
    if log_format not in LOG_FORMATS:
        read.problems.append(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
        log_format = "text"
    metrics_host = read.host("METRICS_HOST", DEFAULT_METRICS_HOST)
    metrics_port = read.port("METRICS_PORT")
    webhook_secret, webhook_public_url, webhook_port = read.webhooks()
    webhook_host = read.host("WEBHOOK_HOST", DEFAULT_WEBHOOK_HOST)
    if webhook_port is not None and webhook_port == metrics_port:
        read.problems.append(f"WEBHOOK_PORT and METRICS_PORT are both {webhook_port}: give each its own port")

    pseudo_locale = read.raw("IMAGINE_PSEUDO_LOCALE") or None
    if pseudo_locale is not None and (pseudo_locale not in DISCORD_LOCALES or pseudo_locale in SUPPORTED):
        read.problems.append(
            "IMAGINE_PSEUDO_LOCALE (for tests only) must be a Discord locale the bot does not speak, such as fi, "
            f"not {pseudo_locale!r}"
        )
        pseudo_locale = None

    settings = Settings(
        discord_token=discord_token,
        toapis_api_key=toapis_api_key,
        toapis_base_url=toapis_base_url or DEFAULT_TOAPIS_BASE_URL,
        toapis_model=model,
        toapis_models=models,
        model_weights=weights,
        database_url=database_url,
        discord_api_base_url=read.url("DISCORD_API_BASE_URL", None, ("http", "https")),
        discord_gateway_url=read.url("DISCORD_GATEWAY_URL", None, ("ws", "wss")),
        toapis_poll_interval=read.number("TOAPIS_POLL_INTERVAL", 5.0, minimum=0),
        toapis_lookups_per_minute=read.integer("TOAPIS_LOOKUPS_PER_MINUTE", 2400, minimum=1),
        toapis_submits_per_minute=read.integer("TOAPIS_SUBMITS_PER_MINUTE", 240, minimum=1),
        generation_timeout=read.number("GENERATION_TIMEOUT", 600.0, minimum=0),
        progress_edit_interval=read.number("PROGRESS_EDIT_INTERVAL", 2.0, minimum=0, allow_minimum=True),
        max_concurrent_jobs=read.integer("MAX_CONCURRENT_JOBS", 8, minimum=1),
        default_member_daily_limit=read.limit("DEFAULT_MEMBER_DAILY_LIMIT", 25),
        default_server_daily_limit=read.limit("DEFAULT_SERVER_DAILY_LIMIT", 250),
        global_daily_limit=read.limit("GLOBAL_DAILY_LIMIT", 1000),
        server_daily_cap=read.limit("SERVER_DAILY_CAP", None),
        member_daily_cap=read.limit("MEMBER_DAILY_CAP", None),
        operator_alert_webhook_url=read.webhook_url("OPERATOR_ALERT_WEBHOOK_URL"),
        allowed_guild_ids=frozenset(read.id_list("ALLOWED_GUILD_IDS")),
        retention_days=read.integer("RETENTION_DAYS", 30, minimum=1),
        shard_count=shard_count,
        shard_ids=shard_ids,
        log_level=log_level,
        log_format=log_format,
        low_balance_alert=read.positive("LOW_BALANCE_ALERT", "credits"),
        operator_guild_id=read.snowflake("OPERATOR_GUILD_ID"),
        metrics_port=metrics_port,
        metrics_host=metrics_host,
        toapis_webhook_secret=webhook_secret,
        webhook_public_url=webhook_public_url,
        webhook_host=webhook_host,
        webhook_port=webhook_port,
        pseudo_locale=pseudo_locale,
    )
    if read.problems:
        raise ConfigError(read.problems)
    return settings
