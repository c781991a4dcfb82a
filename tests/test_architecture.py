"""The direction of dependencies: bot.py -> cogs/ -> generation/ -> toapis/, storage/.

Lower layers must run and be tested without Discord, so an import that points upwards (or into discord)
fails here rather than in review.
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# package -> top-level modules it must never import
FORBIDDEN: dict[str, set[str]] = {
    "toapis": {"discord", "storage", "generation", "cogs", "bot", "settings"},
    "storage": {"discord", "toapis", "generation", "cogs", "bot", "settings"},
    "generation": {"discord", "cogs", "bot", "settings"},
    # The catalog and locales: any layer may use it, so it uses none of them.
    "i18n": {"discord", "cogs", "bot", "settings", "generation", "storage", "toapis"},
}


def imported_top_levels(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_imported_top_levels_sees_every_form(tmp_path: Path) -> None:
    # Guards the guard: if the parser missed an import form, the real checks below could never fail.
    sample = tmp_path / "sample.py"
    sample.write_text("import discord.ui\nfrom discord import app_commands\nimport os, storage.jobs as j\n")
    assert imported_top_levels(sample) == {"discord", "os", "storage"}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_point_downwards(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"{package}/ has no modules"
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_top_levels(path) & FORBIDDEN[package])
        for path in files
        if imported_top_levels(path) & FORBIDDEN[package]
    }
    assert offenders == {}


# -- no import circles ---------------------------------------------------------------------------------------

PACKAGES = ("cogs", "generation", "i18n", "toapis", "storage")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules(root: Path) -> dict[str, Path]:
    files = [*root.glob("*.py"), *(path for package in PACKAGES for path in (root / package).rglob("*.py"))]
    return {module_name(path, root): path for path in files if path.exists()}


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The `known` modules a file imports, anywhere in it (inside functions and TYPE_CHECKING blocks too):
    `from package import module` counts as importing that module, not the package."""
    imported: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                imported.add(full if full in known else node.module)
    return imported & known


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Which project modules each one imports."""
    return {name: imports_of(path, set(modules)) - {name} for name, path in modules.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_circle_finder_sees_a_circle_through_a_lazy_import(tmp_path: Path) -> None:
    # Guards the guard: a circle hidden in a function body (as a backend factory's was) must be found.
    package = tmp_path / "storage"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "base.py").write_text("def open():\n    from storage.engine import Engine\n")
    (package / "engine.py").write_text("from storage import base\n")
    (package / "other.py").write_text("import storage.base\n")
    graph = import_graph(project_modules(tmp_path))
    assert graph["storage.other"] == {"storage.base"}
    assert circles(graph) == [["storage.base", "storage.engine"]]


def test_no_module_imports_itself_back() -> None:
    assert circles(import_graph(project_modules(ROOT))) == []


# -- cogs talk to the rest through what bot.py injects -------------------------------------------------------


def attribute_uses(path: Path, names: set[str]) -> list[str]:
    """`x.name` and `name(...)` uses of any of `names` in a module, as "line: name"."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Attribute) and node.attr in names:
            found.append(f"{node.lineno}: {node.attr}")
    return found


def discord_side() -> list[Path]:
    return [ROOT / "bot.py", *sorted((ROOT / "cogs").rglob("*.py"))]


def test_no_cog_finds_another_by_name() -> None:
    # What a cog, a view or a DynamicItem needs is injected at assembly or reached through the bot's services.
    offenders = {str(path.relative_to(ROOT)): attribute_uses(path, {"get_cog"}) for path in discord_side()}
    assert {path: uses for path, uses in offenders.items() if uses} == {}


# The rule the cogs keep for storage (docs/architecture.md): always through a service of generation/, never the
# store, a repository or the database itself. Storage's data types (a Job, a Period) may be read.
STORAGE_DOORS = {"storage.store", "storage.database", "storage.connect", "storage.sqlite", "storage.postgres"}


def storage_reached(path: Path) -> list[str]:
    """How a module reaches storage other than by its data types: imports of its doors, uses of `.store`/`.db`."""
    return sorted(imports_of(path, STORAGE_DOORS)) + attribute_uses(path, {"store", "db"})


def test_cogs_reach_storage_only_through_generation_services() -> None:
    offenders = {str(path.relative_to(ROOT)): storage_reached(path) for path in sorted((ROOT / "cogs").rglob("*.py"))}
    assert {path: ways for path, ways in offenders.items() if ways} == {}


def test_the_storage_rule_sees_a_cog_that_breaks_it(tmp_path: Path) -> None:
    cog = tmp_path / "sneaky.py"
    cog.write_text(
        "from storage.store import Storage\nasync def f(services):\n    await services.store.jobs.get('x')\n"
    )
    assert storage_reached(cog) == ["storage.store", "3: store"]


def test_generation_modules_stay_small() -> None:
    # The pipeline once grew to a thousand lines holding every step of a job; its seams are modules now.
    sizes = {
        path.name: len(path.read_text(encoding="utf-8").splitlines()) for path in (ROOT / "generation").glob("*.py")
    }
    assert {name: lines for name, lines in sizes.items() if lines > 400} == {}


# -- the repository cites only itself ------------------------------------------------------------------------------

# The specification's pages outside the repository, and the folder they live in: the code and docs cite docs/.
OUTSIDE_PAGES = re.compile(r"\.\./shared|(?<![\w-])(?:product|toapis-api|discord-notes|style)\.md\b")
SKIPPED_FOLDERS = {"__pycache__", "node_modules", "data"}


def repository_files(root: Path) -> list[Path]:
    """Every file of the repository's own: not hidden folders (.git, .venv, caches), caches or runtime data."""
    found: list[Path] = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [name for name in subfolders if not name.startswith(".") and name not in SKIPPED_FOLDERS]
        found += [Path(folder) / name for name in files]
    return found


def outside_citations(root: Path) -> dict[str, list[str]]:
    cited: dict[str, list[str]] = {}
    for path in repository_files(root):
        if path == Path(__file__).resolve():
            continue  # this rule names what it looks for
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # not text (an image)
        found = [match.group(0) for match in OUTSIDE_PAGES.finditer(text)]
        if found:
            cited[str(path.relative_to(root))] = found
    return cited


def test_no_file_cites_the_specification_outside_the_repository() -> None:
    assert outside_citations(ROOT) == {}


def test_the_citation_rule_sees_a_citation(tmp_path: Path) -> None:
    (tmp_path / "storage").mkdir()
    (tmp_path / "storage" / "0001.sql").write_text("-- as product.md says\n")
    (tmp_path / "notes.md").write_text("see ../shared/toapis-api.md; my-style.md is fine\n")
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "x.py").write_text("# product.md\n")
    assert outside_citations(tmp_path) == {
        "storage/0001.sql": ["product.md"],
        "notes.md": ["../shared", "toapis-api.md"],
    }
