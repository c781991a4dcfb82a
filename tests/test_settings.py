"""settings.py: every variable read, validated, and every problem named in one message."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import pytest

import settings
from settings import ConfigError, Secret, Settings, load_settings

VALID = {"DISCORD_TOKEN": "discord-token-value", "TOAPIS_API_KEY": "sk-toapis-value"}


def test_defaults_match_the_product_specification() -> None:
    settings = load_settings(VALID)
    assert settings == Settings(discord_token=Secret("discord-token-value"), toapis_api_key=Secret("sk-toapis-value"))
    assert settings.toapis_base_url == "https://toapis.com/v1"
    assert settings.toapis_model == "gpt-image-2"
    assert settings.database_url == "sqlite:///data/imagine.db"
    assert (settings.toapis_poll_interval, settings.generation_timeout, settings.progress_edit_interval) == (5, 600, 2)
    assert settings.max_concurrent_jobs == 8
    assert (settings.default_member_daily_limit, settings.default_server_daily_limit) == (25, 250)
    assert settings.global_daily_limit == 1000  # the operator's bill is bounded unless they say otherwise
    assert settings.allowed_guild_ids == frozenset()
    assert settings.retention_days == 30
    assert (settings.shard_count, settings.shard_ids) == (None, None)
    assert settings.log_level == "INFO"


def test_every_variable_is_read() -> None:
    settings = load_settings(
        VALID
        | {
            "TOAPIS_BASE_URL": "https://api.toapis.cn/v1/",
            "TOAPIS_MODEL": "doubao-seedream-4-5",
            "TOAPIS_MODELS": "gpt-image-2, nano-banana-pro ,doubao-seedream-4-5",
            "MODEL_WEIGHTS": "gpt-image-2@4K=6,gemini-3-pro-image-preview=3",
            "DATABASE_URL": "postgresql://imagine@db/imagine",
            "DISCORD_API_BASE_URL": "http://127.0.0.1:9000/api/v10",
            "DISCORD_GATEWAY_URL": "ws://127.0.0.1:9000/gateway",
            "TOAPIS_POLL_INTERVAL": "0.05",
            "TOAPIS_LOOKUPS_PER_MINUTE": "1200",
            "TOAPIS_SUBMITS_PER_MINUTE": "120",
            "GENERATION_TIMEOUT": "1.5",
            "PROGRESS_EDIT_INTERVAL": "0",
            "MAX_CONCURRENT_JOBS": "200",
            "DEFAULT_MEMBER_DAILY_LIMIT": "none",
            "DEFAULT_SERVER_DAILY_LIMIT": "0",
            "GLOBAL_DAILY_LIMIT": "1000",
            "ALLOWED_GUILD_IDS": "111, 222,",
            "RETENTION_DAYS": "7",
            "SHARD_COUNT": "4",
            "SHARD_IDS": "0,1",
            "LOG_LEVEL": "debug",
        }
    )
    assert settings.toapis_base_url == "https://api.toapis.cn/v1"
    assert settings.toapis_model == "doubao-seedream-4-5"
    # Aliases become the catalogue's ids; weights name a model, optionally a resolution.
    assert settings.toapis_models == ("gpt-image-2", "gemini-3-pro-image-preview", "doubao-seedream-4-5")
    assert settings.model_weights == (("gpt-image-2", "4k", 6), ("gemini-3-pro-image-preview", None, 3))
    assert settings.database_url == "postgresql://imagine@db/imagine"
    assert settings.discord_api_base_url == "http://127.0.0.1:9000/api/v10"
    assert settings.discord_gateway_url == "ws://127.0.0.1:9000/gateway"
    assert (settings.toapis_poll_interval, settings.generation_timeout) == (0.05, 1.5)
    assert (settings.toapis_lookups_per_minute, settings.toapis_submits_per_minute) == (1200, 120)
    assert settings.progress_edit_interval == 0
    assert settings.max_concurrent_jobs == 200
    assert settings.default_member_daily_limit is None
    assert settings.default_server_daily_limit == 0
    assert settings.global_daily_limit == 1000
    assert settings.allowed_guild_ids == frozenset({111, 222})
    assert settings.guild_allowed(111)
    assert not settings.guild_allowed(333)
    assert settings.retention_days == 7
    assert (settings.shard_count, settings.shard_ids) == (4, (0, 1))
    assert settings.log_level == "DEBUG"


def test_all_problems_are_reported_together_each_naming_its_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(
            {
                "TOAPIS_API_KEY": "your-toapis-api-key",
                "TOAPIS_BASE_URL": "toapis.com/v1",
                "DATABASE_URL": "mysql://x",
                "DISCORD_GATEWAY_URL": "http://gateway",
                "TOAPIS_POLL_INTERVAL": "fast",
                "TOAPIS_LOOKUPS_PER_MINUTE": "0",
                "TOAPIS_SUBMITS_PER_MINUTE": "0",
                "GENERATION_TIMEOUT": "0",
                "PROGRESS_EDIT_INTERVAL": "-1",
                "MAX_CONCURRENT_JOBS": "0",
                "DEFAULT_MEMBER_DAILY_LIMIT": "-5",
                "GLOBAL_DAILY_LIMIT": "lots",
                "ALLOWED_GUILD_IDS": "123,abc",
                "RETENTION_DAYS": "0",
                "SHARD_IDS": "0",
                "LOG_LEVEL": "LOUD",
            }
        )
    message = str(caught.value)
    named = [
        "DISCORD_TOKEN is required",
        "TOAPIS_API_KEY is still the placeholder",
        "TOAPIS_BASE_URL",
        "DATABASE_URL",
        "DISCORD_GATEWAY_URL",
        "TOAPIS_POLL_INTERVAL",
        "TOAPIS_LOOKUPS_PER_MINUTE",
        "TOAPIS_SUBMITS_PER_MINUTE",
        "GENERATION_TIMEOUT",
        "PROGRESS_EDIT_INTERVAL",
        "MAX_CONCURRENT_JOBS",
        "DEFAULT_MEMBER_DAILY_LIMIT",
        "GLOBAL_DAILY_LIMIT",
        "ALLOWED_GUILD_IDS must be comma-separated numeric ids; these are not: abc",
        "RETENTION_DAYS",
        "SHARD_IDS needs SHARD_COUNT",
        "LOG_LEVEL",
    ]
    for fragment in named:
        assert fragment in message
    assert len(caught.value.problems) == len(named)
    assert message.startswith(f"Imagine cannot start: the configuration has {len(named)} problem(s):")


def test_the_pseudo_locale_is_off_unless_tests_bind_it_to_a_locale_the_bot_does_not_speak() -> None:
    assert load_settings(VALID).pseudo_locale is None
    assert load_settings(VALID | {"IMAGINE_PSEUDO_LOCALE": "fi"}).pseudo_locale == "fi"
    for wrong in ("en-US", "pseudo", "fr-FR"):
        with pytest.raises(ConfigError, match=r"IMAGINE_PSEUDO_LOCALE \(for tests only\)"):
            load_settings(VALID | {"IMAGINE_PSEUDO_LOCALE": wrong})


def test_shard_ids_must_fit_the_shard_count() -> None:
    with pytest.raises(ConfigError, match=r"SHARD_IDS must each be below SHARD_COUNT \(2\)"):
        load_settings(VALID | {"SHARD_COUNT": "2", "SHARD_IDS": "1,2"})


def test_secrets_never_show_in_a_repr_or_an_error() -> None:
    settings = load_settings(VALID)
    assert "discord-token-value" not in repr(settings)
    assert "sk-toapis-value" not in repr(settings)
    assert settings.discord_token.reveal() == "discord-token-value"
    with pytest.raises(ConfigError) as caught:
        load_settings(VALID | {"MAX_CONCURRENT_JOBS": "many"})
    assert "discord-token-value" not in str(caught.value)
    assert "sk-toapis-value" not in str(caught.value)


def test_blank_values_fall_back_to_defaults() -> None:
    settings = load_settings(VALID | {"TOAPIS_POLL_INTERVAL": "  ", "ALLOWED_GUILD_IDS": ""})
    assert settings.toapis_poll_interval == 5
    assert settings.allowed_guild_ids == frozenset()


def test_dotenv_file_is_read_and_the_environment_wins(tmp_path, monkeypatch) -> None:
    (tmp_path / ".env").write_text("DISCORD_TOKEN=from-file\nTOAPIS_API_KEY=key-from-file\nLOG_LEVEL=WARNING\n")
    monkeypatch.chdir(tmp_path)
    for name in ("DISCORD_TOKEN", "TOAPIS_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOG_LEVEL", "ERROR")
    settings = load_settings()
    assert settings.discord_token.reveal() == "from-file"
    assert settings.log_level == "ERROR"


def test_a_bad_url_is_named_without_its_password() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(
            VALID
            | {
                "DATABASE_URL": "postgresql+asyncpg://imagine:S3cretPw@db/imagine",
                "DISCORD_API_BASE_URL": "ftp://user:Pr0xyPw@proxy/api",
            }
        )
    message = str(caught.value)
    assert "S3cretPw" not in message
    assert "Pr0xyPw" not in message
    assert "postgresql+asyncpg://***@db/imagine" in message
    assert "ftp://***@proxy/api" in message


def test_the_operations_variables_are_read() -> None:
    settings = load_settings(
        VALID
        | {
            "LOW_BALANCE_ALERT": "250.5",
            "OPERATOR_GUILD_ID": "123456789012345678",
            "METRICS_PORT": "9464",
            "METRICS_HOST": "0.0.0.0",
            "LOG_FORMAT": "JSON",
        }
    )
    assert settings.low_balance_alert == 250.5
    assert settings.operator_guild_id == 123456789012345678
    assert (settings.metrics_host, settings.metrics_port) == ("0.0.0.0", 9464)
    assert settings.log_format == "json"
    defaults = load_settings(VALID)
    assert (defaults.low_balance_alert, defaults.operator_guild_id, defaults.metrics_port) == (None, None, None)
    assert (defaults.metrics_host, defaults.log_format) == ("127.0.0.1", "text")


def test_bad_operations_variables_are_each_named() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(
            VALID
            | {
                "LOW_BALANCE_ALERT": "-5",
                "OPERATOR_GUILD_ID": "my-server",
                "METRICS_PORT": "70000",
                "METRICS_HOST": "user@host",
                "LOG_FORMAT": "xml",
            }
        )
    problems = caught.value.problems
    assert len(problems) == 5, problems
    for name in ("LOW_BALANCE_ALERT", "OPERATOR_GUILD_ID", "METRICS_PORT", "METRICS_HOST", "LOG_FORMAT"):
        assert any(problem.startswith(name) for problem in problems), name


def test_the_operators_server_is_always_allowed() -> None:
    settings = load_settings(VALID | {"ALLOWED_GUILD_IDS": "111", "OPERATOR_GUILD_ID": "999"})
    assert settings.guild_allowed(111)
    assert settings.guild_allowed(999)
    assert not settings.guild_allowed(222)


SECRETS = {
    "DISCORD_TOKEN": "MTA-discord-T0ken-value",
    "TOAPIS_API_KEY": "sk-toapis-K3y-value",
    "DATABASE_URL": "postgresql://imagine:Pg-Passw0rd-value@db.internal:5432/imagine_prod",
}
SECRET_STRINGS = ("MTA-discord-T0ken-value", "sk-toapis-K3y-value", "Pg-Passw0rd-value")


def test_repr_and_str_show_no_token_key_or_database_password_but_say_which_database() -> None:
    settings = load_settings(SECRETS)
    assert settings.database_url == SECRETS["DATABASE_URL"]  # the code still gets the real URL
    for shown in (repr(settings), str(settings), repr([settings]), f"{settings}"):
        for secret in SECRET_STRINGS:
            assert secret not in shown
        assert "db.internal:5432/imagine_prod" in shown
        assert "postgresql://***@db.internal:5432/imagine_prod" in shown
    assert repr(settings).startswith("Settings(discord_token=Secret('**********'), toapis_api_key=Secret(")
    assert "max_concurrent_jobs=8" in repr(settings)  # the rest still shows


@pytest.mark.parametrize(
    ("database_url", "password", "shown"),
    [
        # libpq and asyncpg take the password as a query parameter too.
        ("postgresql://imagine@db/imagine?sslmode=require&password=Qu3ryPw", "Qu3ryPw", "db/imagine?sslmode=require"),
        # An unescaped `/`, `?` or `#` in a password ends the host for urlsplit: the password would sit in the path.
        ("postgresql://imagine:Sl/ashPw@db/imagine", "Sl/ashPw", "***@db/imagine"),
        ("postgresql://imagine:Qu?estionPw@db/imagine", "Qu?estionPw", "***@db/imagine"),
        # An unmatched `[` makes urlsplit raise: the repr raised with it, instead of showing the URL redacted.
        ("postgresql://imagine:Br[acketPw@db/imagine", "Br[acketPw", "postgresql://***"),
    ],
)
def test_a_database_password_anywhere_in_the_url_stays_out_of_the_repr(
    database_url: str, password: str, shown: str
) -> None:
    settings = load_settings(VALID | {"DATABASE_URL": database_url})
    assert password not in repr(settings)
    assert shown in repr(settings)


def test_a_config_error_next_to_secrets_shows_none_of_them() -> None:
    bad = SECRETS | {"LOG_LEVEL": "LOUD", "TOAPIS_BASE_URL": "ftp://user:Pr0xy-Pw@proxy/v1", "RETENTION_DAYS": "x"}
    with pytest.raises(ConfigError) as caught:
        load_settings(bad)
    for text in (str(caught.value), repr(caught.value), "\n".join(caught.value.problems)):
        for secret in (*SECRET_STRINGS, "Pr0xy-Pw"):
            assert secret not in text
    assert "LOG_LEVEL" in str(caught.value)
    assert "ftp://***@proxy/v1" in str(caught.value)
    # A bad database URL itself is named without its password.
    with pytest.raises(ConfigError) as caught:
        load_settings(
            SECRETS | {"DATABASE_URL": "mysql://imagine:Pg-Passw0rd-value@db/imagine?password=Pg-Passw0rd-value"}
        )
    assert "Pg-Passw0rd-value" not in str(caught.value)
    assert "mysql://***@db/imagine?password=***" in str(caught.value)
    # One urlsplit cannot read (an unmatched `[`) is a problem named like any other, not a ValueError.
    with pytest.raises(ConfigError) as caught:
        load_settings(SECRETS | {"DATABASE_URL": "mysql://imagine:Br[acket-Pw@db/imagine"})
    assert "Br[acket-Pw" not in str(caught.value)
    assert "DATABASE_URL must start with sqlite:///" in str(caught.value)


def test_every_field_named_like_a_secret_is_typed_secret() -> None:
    # How a new secret is declared once: its field is typed `Secret` (a webhook URL holds its token in the path,
    # so redacting URLs' passwords would not hide it). A plain `str` here would show in every repr.
    secret_like = re.compile(r"token|key|password|secret|webhook")
    # Where ToAPIs's webhooks arrive is public by design (the signature, a Secret, is what proves a delivery).
    addresses = {"webhook_public_url", "webhook_host", "webhook_port"}
    for field in dataclasses.fields(Settings):
        if secret_like.search(field.name) and field.name not in addresses:
            assert "Secret" in str(field.type), f"Settings.{field.name} holds a secret: type it Secret"


def test_the_models_and_weights_are_checked_against_the_catalog() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(
            VALID
            | {
                "TOAPIS_MODEL": "flux-2-pro",
                "TOAPIS_MODELS": "gpt-image-2,gpt-image-9",
                "MODEL_WEIGHTS": "gpt-image-2@8k=2,gpt-image-2@2k=zero,vidu-image=2,gpt-image-3=1",
                "SERVER_DAILY_CAP": "many",
                "OPERATOR_ALERT_WEBHOOK_URL": "http://example.com/hook",
            }
        )
    problems = caught.value.problems
    assert any(
        p.startswith("TOAPIS_MODELS names an unknown image model 'gpt-image-9'; known: gpt-image-2,") for p in problems
    )
    assert "TOAPIS_MODEL (flux-2-pro) must be one of TOAPIS_MODELS (gpt-image-2)" in problems
    assert "MODEL_WEIGHTS: gpt-image-2 has no resolution '8k' (it has 1k, 2k, 4k)" in problems
    assert "MODEL_WEIGHTS: the weight of 'gpt-image-2@2k=zero' must be a whole number of images, 1 or more" in problems
    assert "MODEL_WEIGHTS weighs vidu-image, which is not in TOAPIS_MODELS" in problems
    assert any(p.startswith("MODEL_WEIGHTS names an unknown image model 'gpt-image-3'") for p in problems)
    assert any(p.startswith("SERVER_DAILY_CAP must be a whole number") for p in problems)
    assert (
        "OPERATOR_ALERT_WEBHOOK_URL must be a Discord webhook URL (https://discord.com/api/webhooks/ID/TOKEN)"
        in problems
    )
    assert len(problems) == 8


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        # The same model and tier twice, however spelt (an alias, the tier's case): which one counts is a guess.
        ("gpt-image-2@4k=6,gpt-image-2@4K=8", "MODEL_WEIGHTS weighs gpt-image-2@4k more than once"),
        (
            "nano-banana-pro=3,gemini-3-pro-image-preview=4",
            "MODEL_WEIGHTS weighs gemini-3-pro-image-preview more than once",
        ),
        # More than any limit can be: no request could ever fit, and the database's whole numbers overflow.
        (
            "gpt-image-2@4k=99999999999",
            "MODEL_WEIGHTS: the weight of 'gpt-image-2@4k=99999999999' must be at most 1,000,000",
        ),
        ("gpt-image-2@=3", "MODEL_WEIGHTS: 'gpt-image-2@=3' names no resolution after '@'"),
    ],
)
def test_model_weights_that_say_nothing_sure_are_named_problems(value: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(
            {**VALID, "TOAPIS_MODELS": "gpt-image-2,gemini-3-pro-image-preview", "MODEL_WEIGHTS": value}, dotenv=False
        )
    assert caught.value.problems == [problem]


def test_a_model_and_one_of_its_tiers_may_both_be_weighed() -> None:
    settings = load_settings({**VALID, "MODEL_WEIGHTS": "gpt-image-2=3, gpt-image-2 @ 4k = 6"}, dotenv=False)
    assert settings.model_weights == (("gpt-image-2", None, 3), ("gpt-image-2", "4k", 6))


def test_the_default_model_alone_is_the_operators_offer() -> None:
    settings = load_settings(VALID | {"TOAPIS_MODEL": "nano-banana-pro"})
    assert (settings.toapis_model, settings.toapis_models) == (
        "gemini-3-pro-image-preview",
        ("gemini-3-pro-image-preview",),
    )


WEBHOOKS = {
    "TOAPIS_WEBHOOK_SECRET": "whsec_3f9a1c0e7d2b4a6f8e1d3c5b7a9f0e2d",
    "WEBHOOK_PUBLIC_URL": "https://imagine.example.com/toapis/webhook?from=toapis",
    "WEBHOOK_PORT": "8081",
}


def test_webhooks_are_off_by_default_and_on_with_the_secret_the_url_and_the_port() -> None:
    off = load_settings(VALID)
    assert not off.webhooks_on
    assert (off.toapis_webhook_secret, off.webhook_public_url, off.webhook_port) == (None, None, None)
    assert off.webhook_host == "127.0.0.1"
    on = load_settings(VALID | WEBHOOKS | {"WEBHOOK_HOST": "0.0.0.0"})
    assert on.webhooks_on
    assert on.toapis_webhook_secret == Secret(WEBHOOKS["TOAPIS_WEBHOOK_SECRET"])
    assert on.webhook_public_url == WEBHOOKS["WEBHOOK_PUBLIC_URL"]
    assert (on.webhook_host, on.webhook_port) == ("0.0.0.0", 8081)
    assert WEBHOOKS["TOAPIS_WEBHOOK_SECRET"] not in repr(on)


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"TOAPIS_WEBHOOK_SECRET": ""}, "TOAPIS_WEBHOOK_SECRET is required with WEBHOOK_PUBLIC_URL"),
        ({"WEBHOOK_PUBLIC_URL": ""}, "WEBHOOK_PUBLIC_URL is required with TOAPIS_WEBHOOK_SECRET"),
        ({"WEBHOOK_PUBLIC_URL": "http://imagine.example.com/hook"}, "WEBHOOK_PUBLIC_URL must be an https URL"),
        ({"WEBHOOK_PUBLIC_URL": "imagine.example.com/hook"}, "WEBHOOK_PUBLIC_URL must be an https URL"),
        ({"WEBHOOK_PUBLIC_URL": "https://imagine.example.com:99999/"}, "WEBHOOK_PUBLIC_URL has an invalid port"),
        ({"WEBHOOK_PUBLIC_URL": "https://me:pw@imagine.example.com/"}, "no user, password or #fragment"),
        ({"WEBHOOK_PUBLIC_URL": "https://imagine.example.com/hook#x"}, "no user, password or #fragment"),
        ({"TOAPIS_WEBHOOK_SECRET": "short"}, "TOAPIS_WEBHOOK_SECRET must be the signing secret"),
        ({"TOAPIS_WEBHOOK_SECRET": "changeme"}, "TOAPIS_WEBHOOK_SECRET must be the signing secret"),
        ({"TOAPIS_WEBHOOK_SECRET": "whsec_with a space_0123456789"}, "TOAPIS_WEBHOOK_SECRET must not contain spaces"),
        ({"WEBHOOK_PORT": ""}, "WEBHOOK_PORT is required with webhooks"),
        ({"WEBHOOK_PORT": "0"}, "WEBHOOK_PORT must be a port number from 1 to 65535"),
        ({"WEBHOOK_PORT": "65536"}, "WEBHOOK_PORT must be a port number from 1 to 65535"),
        ({"WEBHOOK_PORT": "http"}, "WEBHOOK_PORT must be a port number from 1 to 65535"),
        ({"WEBHOOK_PORT": "808²"}, "WEBHOOK_PORT must be a port number from 1 to 65535"),
        ({"METRICS_PORT": "8081"}, "WEBHOOK_PORT and METRICS_PORT are both 8081"),
        ({"WEBHOOK_HOST": "user@host"}, "WEBHOOK_HOST must be an address or host name"),
    ],
)
def test_each_webhook_problem_is_named(changes: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(VALID | WEBHOOKS | changes)
    assert named in str(caught.value)
    assert "3f9a1c0e7d2b" not in str(caught.value)  # the secret is never shown


def test_a_webhook_port_without_webhooks_is_a_problem() -> None:
    with pytest.raises(ConfigError, match="WEBHOOK_PORT is set but webhooks are off"):
        load_settings(VALID | {"WEBHOOK_PORT": "8081"})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ALLOWED_GUILD_IDS", "12345²"),
        ("OPERATOR_GUILD_ID", "١٢٣٤٥"),  # Arabic-Indic digits: int() reads them, Discord ids are ASCII
        ("GLOBAL_DAILY_LIMIT", "1⁰"),
        ("MODEL_WEIGHTS", "gpt-image-2@4k=²"),
    ],
)
def test_numbers_must_be_ascii_digits_and_others_are_a_named_problem(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings({**VALID, name: value}, dotenv=False)
    assert name in str(error.value)


ENV_EXAMPLE = Path(__file__).resolve().parent.parent / ".env.example"
# Not for operators (docs/i18n.md): left out of .env.example.
TESTS_ONLY = frozenset({"IMAGINE_PSEUDO_LOCALE"})
# Shown with an example of a value: unset (their default), webhooks are off.
EXAMPLE_VALUES = frozenset({"WEBHOOK_PUBLIC_URL", "WEBHOOK_PORT"})


def variables_read() -> set[str]:
    """The environment variables settings.py reads: every call whose first argument is a name like `LOG_LEVEL`."""
    tree = ast.parse(Path(settings.__file__).read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            value = node.args[0].value
            if isinstance(value, str) and re.fullmatch(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+", value):
                names.add(value)
    return names


def env_example() -> dict[str, str]:
    """The variables of .env.example, set or commented out, with the value it shows."""
    shown: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        found = re.fullmatch(r"#?([A-Z][A-Z0-9_]*)=(.*)", line.strip())
        if found:
            shown[found[1]] = found[2]
    return shown


def test_env_example_lists_every_variable_settings_reads_and_no_other() -> None:
    read = variables_read()
    assert {"DISCORD_TOKEN", "SERVER_DAILY_CAP", "MODEL_WEIGHTS", "WEBHOOK_HOST"} <= read  # the scan works
    assert set(env_example()) == read - TESTS_ONLY


def test_env_example_shows_each_variables_default() -> None:
    shown = env_example()
    commented = {
        name: value for name, value in shown.items() if name not in {"DISCORD_TOKEN", "TOAPIS_API_KEY", *EXAMPLE_VALUES}
    }
    assert load_settings(VALID | commented) == load_settings(VALID)
    defaults = load_settings(VALID)
    assert (defaults.webhook_public_url, defaults.webhook_port) == (None, None)


@pytest.mark.parametrize("name", ["TOAPIS_BASE_URL", "DISCORD_API_BASE_URL"])
@pytest.mark.parametrize(
    ("value", "named"),
    [
        # aiohttp refuses credentials in a URL next to an Authorization header (the key's, the token's): every
        # request raised ValueError, and --check printed a traceback.
        ("https://proxy-user:Pr0xy-Pw-value@proxy.example.com/v1", "must have no user or password"),
        # Unreadable ones raised out of load_settings, or out of the client at start-up.
        ("https://[proxy.example.com/v1", "must be a http or https URL"),
        ("https://toapis.com:99999/v1", "must be a http or https URL"),
    ],
)
def test_an_api_base_url_the_http_client_cannot_use_is_a_configuration_problem(
    name: str, value: str, named: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(VALID | {name: value})
    assert f"{name} {named}" in str(caught.value)
    assert "Pr0xy-Pw-value" not in str(caught.value)
