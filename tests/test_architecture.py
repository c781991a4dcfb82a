"""The direction of dependencies: bot.py -> cogs/ -> generation/ -> toapis/, storage/.

Lower layers must run and be tested without Discord, so an import that points upwards (or into discord)
fails here rather than in review.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# package -> top-level modules it must never import
FORBIDDEN: dict[str, set[str]] = {
    "toapis": {"discord", "storage", "generation", "cogs", "bot", "settings"},
    "storage": {"discord", "toapis", "generation", "cogs", "bot", "settings"},
    "generation": {"discord", "cogs", "bot", "settings"},
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
