"""The container files and the lock the image installs: no Docker engine runs here, so they are read as text."""

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
REQUIREMENTS = ROOT / "requirements.txt"
LOCK = ROOT / "requirements.lock"


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
    for needed in ("requirements.lock", "bot.py", "settings.py", "cogs", "generation", "storage", "toapis"):
        assert needed in copied, needed


def test_the_image_installs_the_lock_and_only_the_lock_with_hashes_required(dockerfile: list[Instruction]) -> None:
    installs = [
        shlex.split(i.arguments)
        for i in dockerfile
        if i.keyword == "RUN" and re.search(r"\bpip3?\s+install\b", i.arguments)
    ]
    assert len(installs) == 1, installs
    (words,) = installs
    assert "--require-hashes" in words, words
    assert "--no-deps" in words, words
    requirement_files = [words[i + 1] for i, word in enumerate(words[:-1]) if word in ("-r", "--requirement")]
    assert requirement_files == ["requirements.lock"], words
    # Nothing installed by name beside the lock: every package comes from it, hashed.
    after_install = words[words.index("install") + 1 :]
    loose = [w for w in after_install if not w.startswith("-") and w not in requirement_files]
    assert loose == [], loose
    copied = " ".join(i.arguments for i in dockerfile if i.keyword in ("COPY", "ADD"))
    assert "requirements.txt" not in copied, copied
    assert "requirements-dev" not in copied, copied


def normalized(name: str) -> str:
    """A package name as PyPI compares them (PEP 503): `discord.py` and `discord-py` are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class LockEntry:
    version: str
    hashes: tuple[str, ...]
    via: tuple[str, ...]


def lock_entries(text: str) -> dict[str, LockEntry]:
    """requirements.lock as pip-compile writes it: `name==version \\`, its `--hash` lines, then `# via` lines."""
    entries: dict[str, LockEntry] = {}
    name = ""
    for line in text.splitlines():
        if line and not line[0].isspace() and not line.startswith(("#", "-")):
            match = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)", line)
            assert match, f"not pinned with ==: {line!r}"
            name = normalized(match.group(1))
            assert name not in entries, f"{name} is locked twice"
            entries[name] = LockEntry(match.group(3), (), ())
            continue
        stripped = line.strip()
        if not name or not stripped:
            continue
        entry = entries[name]
        if stripped.startswith("--hash="):
            entries[name] = LockEntry(entry.version, (*entry.hashes, stripped.rstrip(" \\")), entry.via)
        elif stripped.startswith("#"):
            source = stripped.lstrip("#").strip().removeprefix("via").strip()
            if source:
                entries[name] = LockEntry(entry.version, entry.hashes, (*entry.via, source))
    return entries


def direct_requirements(text: str) -> dict[str, str | None]:
    """requirements.txt: each package with its `==` version (None if it is not pinned)."""
    found: dict[str, str | None] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        match = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*(?:==\s*([^\s;,]+))?", line)
        assert match, f"cannot read {line!r}"
        found[normalized(match.group(1))] = match.group(3)
    return found


@pytest.fixture(scope="module")
def lock_text() -> str:
    if not LOCK.exists():
        pytest.fail("there is no requirements.lock: generate it with pip-compile (README, Install)")
    return LOCK.read_text(encoding="utf-8")


def test_every_direct_dependency_is_locked_at_its_version_with_hashes(lock_text: str) -> None:
    direct = direct_requirements(REQUIREMENTS.read_text(encoding="utf-8"))
    locked = lock_entries(lock_text)
    assert direct, "requirements.txt lists nothing"
    for name, version in direct.items():
        assert name in locked, f"{name} is in requirements.txt but not in requirements.lock: regenerate the lock"
        if version is not None:
            assert locked[name].version == version, f"{name}: requirements.txt {version}, lock {locked[name].version}"
        assert locked[name].hashes, f"{name} has no hash in requirements.lock"


def test_every_locked_package_has_sha256_hashes(lock_text: str) -> None:
    locked = lock_entries(lock_text)
    assert len(locked) > len(direct_requirements(REQUIREMENTS.read_text(encoding="utf-8"))), "no indirect dependency"
    for name, entry in locked.items():
        assert entry.hashes, f"{name}=={entry.version} has no hash"
        for line in entry.hashes:
            assert re.fullmatch(r"--hash=sha256:[0-9a-f]{64}", line), (name, line)


def test_the_lock_is_compiled_from_requirements_txt_and_not_stale(lock_text: str) -> None:
    header = [line for line in lock_text.splitlines() if line.startswith("#")][:8]
    commands = [line.lstrip("#").split() for line in header]
    command = next((words for words in commands if words[:1] == ["pip-compile"]), None)
    assert command is not None, f"requirements.lock was not written by pip-compile: {header}"
    assert command[-1] == "requirements.txt", command
    assert "--generate-hashes" in command, command
    assert any("Python 3.11" in line for line in header), "the lock must be resolved with the image's Python (3.11)"
    # What the lock says came from requirements.txt is exactly what requirements.txt lists now: a package added
    # or removed there without regenerating the lock fails here.
    from_requirements = {name for name, entry in lock_entries(lock_text).items() if "-r requirements.txt" in entry.via}
    assert from_requirements == set(direct_requirements(REQUIREMENTS.read_text(encoding="utf-8")))


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
    # Pinned to a patch release of the major version the tests run against, like the image's Python.
    assert re.fullmatch(r"postgres:15\.\d+(-[a-z]+)?(@sha256:[0-9a-f]{64})?", services["postgres"]["image"])
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
    # ToAPIs counts look-ups per account (3,000 a minute for the default group): the processes share it.
    default = 2_400  # the default of TOAPIS_LOOKUPS_PER_MINUTE, within ToAPIs's 3,000 with headroom
    assert sum(int(env.get("TOAPIS_LOOKUPS_PER_MINUTE", default)) for env in environments) <= default
    # And submits (300 a minute, 5 a second): 240 is the default of TOAPIS_SUBMITS_PER_MINUTE.
    assert sum(int(env.get("TOAPIS_SUBMITS_PER_MINUTE", 240)) for env in environments) <= 240


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
