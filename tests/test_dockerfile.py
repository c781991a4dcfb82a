"""The container files: no Docker engine runs here, so what matters in them is read and checked as text."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "docker-compose.yml"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def instructions(text: str) -> list[Instruction]:
    """The Dockerfile's instructions, with line continuations joined and comments dropped."""
    joined: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        joined.append(current + line)
        current = ""
    if current:
        joined.append(current)
    result = []
    for line in joined:
        keyword, _, arguments = line.partition(" ")
        result.append(Instruction(keyword.upper(), arguments.strip()))
    return result


def exec_form(arguments: str) -> list[str]:
    """CMD/ENTRYPOINT arguments as a list: JSON (exec) form, or the words of the shell form."""
    if arguments.startswith("["):
        parsed = json.loads(arguments)
        assert isinstance(parsed, list)
        return [str(item) for item in parsed]
    return shlex.split(arguments)


def env_values(found: list[Instruction]) -> dict[str, str]:
    """Every variable set by ENV (`ENV A=1 B=2` or the legacy `ENV A 1`)."""
    values: dict[str, str] = {}
    for instruction in found:
        if instruction.keyword != "ENV":
            continue
        words = shlex.split(instruction.arguments)
        if words and "=" not in words[0]:
            values[words[0]] = " ".join(words[1:])
            continue
        for word in words:
            name, _, value = word.partition("=")
            values[name] = value
    return values


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    if not DOCKERFILE.exists():
        pytest.fail("there is no Dockerfile at the repository root")
    return instructions(DOCKERFILE.read_text(encoding="utf-8"))


def test_the_image_is_python_3_11_slim(dockerfile: list[Instruction]) -> None:
    bases = [i.arguments.split()[0] for i in dockerfile if i.keyword == "FROM"]
    assert bases, "no FROM"
    # The last stage is what runs; it must be the CI's minor version, slim.
    # Pinned to a patch release, so that a rebuild gets the same Python.
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?", bases[-1]), bases[-1]


def test_it_runs_as_a_user_without_privileges(dockerfile: list[Instruction]) -> None:
    users = [i.arguments for i in dockerfile if i.keyword == "USER"]
    assert users, "no USER: the bot would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), user
    # The USER comes before the command that runs the bot.
    keywords = [i.keyword for i in dockerfile]
    last_user = len(keywords) - 1 - keywords[::-1].index("USER")
    assert last_user < keywords.index("CMD")


def test_the_data_lives_in_a_volume_the_database_url_points_at(dockerfile: list[Instruction]) -> None:
    volumes: list[str] = []
    for instruction in dockerfile:
        if instruction.keyword == "VOLUME":
            arguments = instruction.arguments
            volumes += json.loads(arguments) if arguments.startswith("[") else arguments.split()
    assert "/data" in volumes
    assert env_values(dockerfile).get("DATABASE_URL") == "sqlite:////data/imagine.db"


def test_the_command_is_python_bot_py(dockerfile: list[Instruction]) -> None:
    commands = [exec_form(i.arguments) for i in dockerfile if i.keyword == "CMD"]
    entrypoints = [exec_form(i.arguments) for i in dockerfile if i.keyword == "ENTRYPOINT"]
    assert commands, "no CMD"
    assert not entrypoints or entrypoints[-1] == [], entrypoints
    command = commands[-1]
    assert command[0] in ("python", "python3"), command
    assert command[1] in ("bot.py", "./bot.py", "/app/bot.py"), command
    # Exec form: the bot is PID 1 and receives SIGTERM from `docker stop` (a shell would swallow it).
    cmd_line = next(i.arguments for i in reversed(dockerfile) if i.keyword == "CMD")
    assert cmd_line.startswith("["), "CMD in shell form: SIGTERM would go to /bin/sh, not the bot"


def test_the_code_the_bot_imports_is_copied_in(dockerfile: list[Instruction]) -> None:
    copied = " ".join(i.arguments for i in dockerfile if i.keyword in ("COPY", "ADD"))
    if re.search(r"(^|\s)\.\s", copied):
        return  # the whole context is copied (what .dockerignore lets through)
    for needed in ("requirements.txt", "bot.py", "settings.py", "cogs", "generation", "storage", "toapis"):
        assert needed in copied, needed


def test_dockerignore_keeps_secrets_and_the_virtualenv_out() -> None:
    assert DOCKERIGNORE.exists(), "no .dockerignore: .env (the secrets) would be sent to the build"
    patterns = {
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert ".env" in patterns or "*.env" in patterns or "**/.env" in patterns, patterns
    assert ".venv" in patterns or "**/.venv" in patterns, patterns
    # Nothing re-includes them.
    assert not any(p.startswith("!") and (".env" in p or ".venv" in p) for p in patterns), patterns


def test_compose_keeps_the_data_in_a_volume_and_reads_env() -> None:
    assert COMPOSE.exists(), "no docker-compose.yml"
    text = COMPOSE.read_text(encoding="utf-8")
    assert re.search(r"^\s*env_file:\s*\.env\s*$", text, re.MULTILINE) or re.search(
        r"^\s*env_file:\s*\n\s*-\s*\.env\s*$", text, re.MULTILINE
    )
    assert re.search(r"^\s*-\s*[\w.-]+:/data\s*$", text, re.MULTILINE), "no volume mounted on /data"
    # Secrets are never written into the compose file itself.
    assert "DISCORD_TOKEN:" not in text
    assert "TOAPIS_API_KEY:" not in text


def test_the_sharded_compose_file_runs_postgres_and_two_processes_with_different_shards() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.sharded.yml").read_text())
    services = compose["services"]
    assert services["postgres"]["image"].startswith("postgres:")
    bots = {name: service for name, service in services.items() if name != "postgres"}
    assert len(bots) == 2
    environments = [service["environment"] for service in bots.values()]
    assert {env["SHARD_COUNT"] for env in environments} == {"2"}
    assert sorted(env["SHARD_IDS"] for env in environments) == ["0", "1"]
    for env in environments:
        assert env["DATABASE_URL"].startswith("postgresql://")
        assert "@postgres:5432/" in env["DATABASE_URL"]
    for service in bots.values():
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_the_image_checks_its_health_with_bot_py_health(dockerfile: list[Instruction]) -> None:
    (check,) = [i for i in dockerfile if i.keyword == "HEALTHCHECK"]
    options, _, command = check.arguments.partition("CMD ")
    assert exec_form(command.strip()) == ["python", "bot.py", "--health"]
    assert "--interval=" in options
    assert "--start-period=" in options


@pytest.mark.parametrize("name", ["docker-compose.yml", "docker-compose.sharded.yml"])
def test_compose_files_check_health_and_rotate_logs(name: str) -> None:
    services = yaml.safe_load((ROOT / name).read_text())["services"]
    bots = {key: service for key, service in services.items() if key != "postgres"}
    assert bots
    for service in bots.values():
        assert service["healthcheck"]["test"] == ["CMD", "python", "bot.py", "--health"]
    for service in services.values():
        logging = service["logging"]
        assert logging["driver"] == "json-file"
        assert logging["options"]["max-size"]
        assert logging["options"]["max-file"]
