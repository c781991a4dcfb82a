"""Nothing a member or an admin reads is written outside the catalog, in the code already moved to it.

Two scans of the source (AST, no import):

- every command text in cogs/ (descriptions of commands, groups and options, choice names, context-menu names)
  is a `command_text(key)`: no literal, and no command left to take its description from its docstring;
- in `COVERED` (whole modules, or some of their functions while the rest waits to move), no string literal reads
  like words (a space, a capital letter), and no literal at all reaches what members see (`send_message`,
  `followup.send`, `answer`, an embed's title, fields and footer, a form's title and labels).

Not flagged: docstrings, log calls, exceptions raised for programmers (TypeError...), keys and identifiers
(`refusal.prompt_empty`, `en-US`, `image/`), and a line marked `# not member-facing`. To move a module, add it
(or its moved functions) to `COVERED`.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.e2e.harness import ROOT

COVERED: dict[str, frozenset[str] | None] = {
    "cogs/_channel_reply.py": None,
    "cogs/_chat_settings.py": None,
    "cogs/_errors.py": None,
    "cogs/_message_intake.py": None,
    "cogs/chat.py": None,
    "cogs/_gate.py": None,
    "cogs/_locale.py": None,
    "cogs/_translator.py": None,
    "cogs/actions.py": None,
    "cogs/_remix.py": None,
    "cogs/remix.py": None,
    "cogs/_embeds.py": frozenset({"prompt_embed", "echo_prompt", "shown_prompt"}),
    "cogs/imagine.py": None,
    "cogs/usage.py": None,
    "cogs/_texts.py": frozenset(
        {
            "_either",
            "channel_list",
            "generic_text",
            "refusal_text",
            "images",
            "current_period",
            "rule_name",
            "quota_refusal",
            "cap_note",
            "limit_text",
            "usage_line",
        }
    ),
    "cogs/imagine_settings.py": frozenset(
        {"_described", "_command", "language_text", "ImagineSettingsCog.language", "LANGUAGE_CHOICES"}
    ),
    "cogs/quota.py": frozenset({"_described", "_scope_choices", "PERIOD_CHOICES"}),
}
"""Module -> None (all of it) or the qualified names (functions, methods, module-level names) moved so far."""

MARKER = "# not member-facing"
_IDENTIFIER = re.compile(r"[a-z0-9_.:/\-{}<>#@&!*=, ]*|[a-z]{2,3}(-[A-Z0-9]{2,3})?")
_LOG_METHODS = frozenset({"debug", "info", "warning", "error", "exception", "critical", "log"})
_PROGRAMMER_ERRORS = frozenset({"TypeError", "ValueError", "RuntimeError", "KeyError", "AssertionError", "LookupError"})
# Calls whose arguments members read: name -> (positional indexes, keywords).
SINKS: dict[str, tuple[tuple[int, ...], frozenset[str]]] = {
    "send_message": ((0,), frozenset({"content"})),
    "send": ((0,), frozenset({"content"})),
    "edit_original_response": ((), frozenset({"content"})),
    "answer": ((1,), frozenset({"content"})),
    "_refuse_after_defer": ((1,), frozenset()),
    "Embed": ((), frozenset({"title", "description"})),
    "add_field": ((), frozenset({"name", "value"})),
    "set_footer": ((), frozenset({"text"})),
    "set_author": ((), frozenset({"name"})),
    "Modal": ((), frozenset({"title"})),
    "TextInput": ((), frozenset({"label", "placeholder"})),
    "Label": ((), frozenset({"text", "description"})),
    "SelectOption": ((), frozenset({"label", "description"})),
    "Select": ((), frozenset({"placeholder"})),
}
COMMAND_TEXTS: dict[str, frozenset[str]] = {
    "command": frozenset({"description"}),
    "Group": frozenset({"description"}),
    "Choice": frozenset({"name"}),
    "ContextMenu": frozenset({"name"}),
}


@dataclass(frozen=True)
class Finding:
    where: str
    text: str

    def __str__(self) -> str:
        return f"{self.where}: {self.text!r}"


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return ""


def _literal(node: ast.expr) -> str | None:
    """The text of a string literal or f-string (its literal parts), None for anything else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
    return None


def reads_like_words(text: str) -> bool:
    """Whether a literal is prose rather than a key or an identifier."""
    return bool(re.search(r"[A-Za-z]{2,}", text)) and (
        not _IDENTIFIER.fullmatch(text) or bool(re.search(r"[a-z]{2,} [a-z]{2,}", text))
    )


class Scanner(ast.NodeVisitor):
    """Collects the findings of one module; `scopes` None scans all of it, else only those qualified names."""

    def __init__(self, path: str, source: str, scopes: frozenset[str] | None) -> None:
        self.path = path
        self.lines = source.splitlines()
        self.scopes = scopes
        self.stack: list[str] = []
        self.findings: list[Finding] = []
        self.skipped: set[int] = set()

    def covered(self) -> bool:
        if self.scopes is None:
            return True
        return any(".".join(self.stack[: n + 1]) in self.scopes for n in range(len(self.stack)))

    def flag(self, node: ast.AST, text: str) -> None:
        line = getattr(node, "lineno", 0)
        if line and self.lines[line - 1].rstrip().endswith(MARKER):
            return
        self.findings.append(Finding(f"{self.path}:{line}", text))

    # -- scopes and what is never member-facing -------------------------------------------------------------

    def _body(self, node: ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for child in node.body:
            self.visit(child)

    def visit_Expr(self, node: ast.Expr) -> None:
        if _literal(node.value) is None:  # a string alone is a docstring (of a module, a class, a name)
            self.visit(node.value)

    def visit_Module(self, node: ast.Module) -> None:
        self._body(node)

    def _scoped(self, node: ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for decorator in node.decorator_list:
            self.visit(decorator)
        self.stack.append(node.name)
        self._body(node)
        self.stack.pop()

    visit_ClassDef = _scoped
    visit_FunctionDef = _scoped
    visit_AsyncFunctionDef = _scoped

    def visit_Assign(self, node: ast.Assign) -> None:
        names = [t.id for t in node.targets if isinstance(t, ast.Name)]
        self._named(names, node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._named([node.target.id] if isinstance(node.target, ast.Name) else [], node)

    def _named(self, names: list[str], node: ast.Assign | ast.AnnAssign) -> None:
        # A module-level name may be covered on its own (a table of choices).
        pushed = [name for name in names if not self.stack]
        self.stack.extend(pushed[:1])
        self.generic_visit(node)
        del self.stack[len(self.stack) - len(pushed[:1]) :]

    def visit_Raise(self, node: ast.Raise) -> None:
        if isinstance(node.exc, ast.Call) and _name(node.exc.func) in _PROGRAMMER_ERRORS:
            return
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        name = _name(node.func)
        if (
            name in _LOG_METHODS
            and isinstance(node.func, ast.Attribute)
            and _name(node.func.value) in ("log", "logger")
        ):
            return
        if self.covered() and name in SINKS:
            positions, keywords = SINKS[name]
            given = [node.args[i] for i in positions if i < len(node.args)]
            given += [k.value for k in node.keywords if k.arg in keywords]
            for argument in given:
                text = _literal(argument)
                if text is not None and re.search(r"[A-Za-z]", text):
                    self.flag(argument, text)
                    self.skipped.add(id(argument))
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        text = node.value
        if isinstance(text, str) and id(node) not in self.skipped and self.covered() and reads_like_words(text):
            self.flag(node, text)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        text = _literal(node)
        if text is not None and id(node) not in self.skipped and self.covered() and reads_like_words(text):
            self.flag(node, text)
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                self.visit(value)


def member_texts(path: str, source: str, scopes: frozenset[str] | None) -> list[Finding]:
    """The literals members would read in `source`, within `scopes`."""
    scanner = Scanner(path, source, scopes)
    scanner.visit(ast.parse(source))
    return scanner.findings


def command_texts(path: str, source: str) -> Iterator[Finding]:
    """Command texts that do not come from the catalog: literals, or a command without `description=`."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef):  # class QuotaCog(GroupCog, group_description=...)
            for keyword in node.keywords:
                text = _literal(keyword.value) if keyword.arg == "group_description" else None
                if text is not None:
                    yield Finding(f"{path}:{node.lineno}", text)
            continue
        if not isinstance(node, ast.Call):
            continue
        name = _name(node.func)
        if name == "describe":
            arguments = [k.value for k in node.keywords if k.arg is not None]
        elif name in COMMAND_TEXTS:
            arguments = [k.value for k in node.keywords if k.arg in COMMAND_TEXTS[name]]
            if name == "command" and not any(k.arg == "description" for k in node.keywords):
                yield Finding(f"{path}:{node.lineno}", "a command without description=command_text(...)")
        else:
            continue
        for argument in arguments:
            text = _literal(argument)
            if text is not None:
                yield Finding(f"{path}:{argument.lineno}", text)


def test_every_command_text_comes_from_the_catalog() -> None:
    found = []
    for path in sorted((ROOT / "cogs").glob("*.py")):
        found += [str(f) for f in command_texts(str(path.relative_to(ROOT)), path.read_text(encoding="utf-8"))]
    assert found == []


@pytest.mark.parametrize("module", sorted(COVERED))
def test_the_moved_code_writes_no_member_facing_text(module: str) -> None:
    path = ROOT / module
    scopes = COVERED[module]
    source = path.read_text(encoding="utf-8")
    if scopes is not None:
        defined = _qualified_names(ast.parse(source))
        assert scopes <= defined, f"not defined in {module}: {sorted(scopes - defined)}"
    assert [str(f) for f in member_texts(module, source, scopes)] == []


def _qualified_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()

    def walk(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(prefix + node.name)
                walk(node.body, f"{prefix}{node.name}.")
            elif isinstance(node, ast.Assign | ast.AnnAssign) and not prefix:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names.update(t.id for t in targets if isinstance(t, ast.Name))

    walk(tree.body, "")
    return names


# -- the scans themselves ------------------------------------------------------------------------------------

SAMPLE = '''
"""A module docstring is not a text."""
import logging
log = logging.getLogger(__name__)
KEY = "refusal.prompt_empty"
TITLE = "Your images"

async def moved(interaction, count):
    """A docstring is not a text."""
    log.info("Refused %s in this server", count)
    if count < 0:
        raise ValueError(f"count cannot be negative ({count})")
    await interaction.response.send_message(f"You have {count} left.", ephemeral=True)
    await interaction.followup.send("none")
    embed = discord.Embed(title=translate("usage.title", interaction.locale))
    embed.add_field(name="Prompt", value=prompt)
    kind = "en-US" if count else f"quota.limit.{count}"
    text = "Done." + " now"
    allowed = "Only for log lines"  # not member-facing
    return translate(KEY, interaction.locale)

def not_moved():
    return "Still in English"
'''


def test_the_scan_finds_what_members_read_and_nothing_else() -> None:
    found = [f.text for f in member_texts("sample.py", SAMPLE, frozenset({"moved", "TITLE"}))]
    assert found == ["Your images", "You have  left.", "none", "Prompt", "Done."]
    assert "Still in English" in [f.text for f in member_texts("sample.py", SAMPLE, None)]


def test_the_command_scan_finds_literals_and_docstring_descriptions() -> None:
    source = """
@app_commands.command(name="usage")
@app_commands.describe(days="How many days", member=command_text("option.x"))
@app_commands.choices(scope=[Choice(name="server", value="server"), Choice(name=command_text("c"), value="m")])
async def usage(interaction, days): ...
class Q(commands.GroupCog, group_name="quota", group_description="Limit images"): ...
menu = app_commands.ContextMenu(name="From images", callback=f)
ok = app_commands.Group(name="models", description=command_text("command.x"))
"""
    found = [f.text for f in command_texts("sample.py", source)]
    assert sorted(found) == sorted(
        ["a command without description=command_text(...)", "How many days", "server", "Limit images", "From images"]
    )
