"""Modals as Discord takes them and sends them back (docs: components/reference, "Label", "Text Input", "String
Select"; interactions/receiving-and-responding, the MODAL callback).

A modal holds 1 to 5 top-level components: Labels (type 18) wrapping one Text Input (4) or select (3, 5-8, or a
File Upload, 19), legacy Action Rows (1) holding one Text Input, and Text Displays (10). Its title and a Label's
text hold at most 45 characters, a Label's description 100, a select at most 25 options. Nothing in a modal may
be disabled. Discord refuses a modal breaking any of these with ``400 50035 Invalid Form Body``.

When the member submits it, each input comes back in the shape it was shown in (a Label with its one
``component``, an Action Row with its ``components``), reduced to ``type``, ``id``, ``custom_id`` and the
value(s): a Text Input's ``value`` (its pre-filled ``value`` unless the member changed it), a select's
``values`` (its ``default`` options unless the member picked others). Components shown without an ``id`` get
one numbered in order, as Discord generates them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from tests.fakes._discord_commands import InvocationRefused
from tests.fakes._discord_messages import MAX_CUSTOM_ID, FormErrors, Path
from tests.fakes._discord_records import iter_components

MAX_TITLE: Final = 45
MAX_COMPONENTS: Final = 5
MAX_LABEL: Final = 45
MAX_LABEL_DESCRIPTION: Final = 100
MAX_TEXT: Final = 4000
MAX_PLACEHOLDER: Final = 100
MAX_SELECT_PLACEHOLDER: Final = 150
MAX_OPTIONS: Final = 25
MAX_OPTION_TEXT: Final = 100
MAX_VALUES: Final = 25

ACTION_ROW: Final = 1
STRING_SELECT: Final = 3
TEXT_INPUT: Final = 4
TEXT_DISPLAY: Final = 10
LABEL: Final = 18
FILE_UPLOAD: Final = 19
AUTO_SELECTS: Final = frozenset({5, 6, 7, 8})
IN_LABEL: Final = frozenset({STRING_SELECT, TEXT_INPUT, FILE_UPLOAD, *AUTO_SELECTS})

Values = Mapping[str, str | Sequence[str]]


def check_modal(data: Mapping[str, Any]) -> None:
    """Discord's checks of a MODAL callback's ``data``; raises ``DiscordError`` 400 50035 naming each problem."""
    errors = FormErrors(("data",))
    custom_id = data.get("custom_id")
    if not isinstance(custom_id, str) or not 1 <= len(custom_id) <= MAX_CUSTOM_ID:
        errors.add(("custom_id",), "BASE_TYPE_BAD_LENGTH", f"Must be between 1 and {MAX_CUSTOM_ID} in length.")
    title = data.get("title")
    if not isinstance(title, str) or not 1 <= len(title) <= MAX_TITLE:
        errors.add(("title",), "BASE_TYPE_BAD_LENGTH", f"Must be between 1 and {MAX_TITLE} in length.")
    components = data.get("components")
    if not isinstance(components, list) or not 1 <= len(components) <= MAX_COMPONENTS:
        errors.add(("components",), "BASE_TYPE_BAD_LENGTH", f"Must be between 1 and {MAX_COMPONENTS} in length.")
        errors.raise_if_any()
        return
    for index, item in enumerate(components):
        _check_top_level(errors, ("components", index), item)
    seen: set[str] = set()
    for item in iter_components(components):
        custom = item.get("custom_id")
        if isinstance(custom, str) and custom in seen:
            errors.add(("components",), "COMPONENT_CUSTOM_ID_DUPLICATED", "Component custom id cannot be duplicated")
        if isinstance(custom, str):
            seen.add(custom)
    errors.raise_if_any()


def _check_top_level(errors: FormErrors, at: Path, item: Any) -> None:
    kind = item.get("type") if isinstance(item, dict) else None
    if kind == LABEL:
        _bounded(errors, (*at, "label"), item.get("label"), MAX_LABEL, required=True)
        _bounded(errors, (*at, "description"), item.get("description"), MAX_LABEL_DESCRIPTION)
        inner = item.get("component")
        inner_kind = inner.get("type") if isinstance(inner, dict) else None
        if inner_kind not in IN_LABEL:
            allowed = ", ".join(str(k) for k in sorted(IN_LABEL))
            errors.add((*at, "component", "type"), "BASE_TYPE_CHOICES", f"Value must be one of ({allowed}).")
        elif inner_kind == TEXT_INPUT:
            # In a Label, a Text Input's own label is deprecated: the Label's text is shown instead.
            _check_text_input(errors, (*at, "component"), inner, label_required=False)
        else:
            _check_select(errors, (*at, "component"), inner)
    elif kind == ACTION_ROW:
        inner_items = item.get("components")
        if not isinstance(inner_items, list) or len(inner_items) != 1:
            errors.add((*at, "components"), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 1 in length.")
            return
        (inner,) = inner_items
        if not isinstance(inner, dict) or inner.get("type") != TEXT_INPUT:
            errors.add((*at, "components", 0, "type"), "BASE_TYPE_CHOICES", "Value must be one of (4,).")
            return
        _check_text_input(errors, (*at, "components", 0), inner, label_required=True)
    elif kind == TEXT_DISPLAY:
        _bounded(errors, (*at, "content"), item.get("content"), MAX_TEXT, required=True)
    else:
        errors.add((*at, "type"), "UNION_TYPE_CHOICES", 'Value of field "type" must be one of (1, 10, 18).')


def _bounded(errors: FormErrors, path: Path, value: Any, limit: int, *, required: bool = False, low: int = 1) -> None:
    if value is None:
        if required:
            errors.required(path)
        return
    if not isinstance(value, str):
        errors.add(path, "BASE_TYPE_STRING", "Could not interpret value as string.")
    elif not low <= len(value) <= limit:
        errors.add(path, "BASE_TYPE_BAD_LENGTH", f"Must be between {low} and {limit} in length.")


def _number(errors: FormErrors, path: Path, value: Any, low: int, high: int) -> None:
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        code = "NUMBER_TYPE_MAX" if isinstance(value, int) else "NUMBER_TYPE_COERCE"
        errors.add(path, code, f"Must be between {low} and {high}.")


def _no_disabled(errors: FormErrors, at: Path, item: Mapping[str, Any]) -> None:
    if item.get("disabled"):
        errors.add((*at, "disabled"), "MODAL_COMPONENT_DISABLED", "Modals can not have disabled components.")


def _check_text_input(errors: FormErrors, at: Path, item: Mapping[str, Any], *, label_required: bool) -> None:
    _bounded(errors, (*at, "custom_id"), item.get("custom_id"), MAX_CUSTOM_ID, required=True)
    if item.get("style") not in (1, 2):
        errors.add((*at, "style"), "BASE_TYPE_CHOICES", "Value must be one of (1, 2).")
    _bounded(errors, (*at, "label"), item.get("label"), MAX_LABEL, required=label_required)
    _number(errors, (*at, "min_length"), item.get("min_length"), 0, MAX_TEXT)
    _number(errors, (*at, "max_length"), item.get("max_length"), 1, MAX_TEXT)
    _bounded(errors, (*at, "value"), item.get("value"), MAX_TEXT, low=0)
    _bounded(errors, (*at, "placeholder"), item.get("placeholder"), MAX_PLACEHOLDER, low=0)
    _no_disabled(errors, at, item)


def _check_select(errors: FormErrors, at: Path, item: Mapping[str, Any]) -> None:
    _bounded(errors, (*at, "custom_id"), item.get("custom_id"), MAX_CUSTOM_ID, required=True)
    _bounded(errors, (*at, "placeholder"), item.get("placeholder"), MAX_SELECT_PLACEHOLDER, low=0)
    _number(errors, (*at, "min_values"), item.get("min_values"), 0, MAX_VALUES)
    _number(errors, (*at, "max_values"), item.get("max_values"), 1, MAX_VALUES)
    _no_disabled(errors, at, item)
    if item.get("type") != STRING_SELECT:
        return
    options = item.get("options")
    if not isinstance(options, list) or not 1 <= len(options) <= MAX_OPTIONS:
        errors.add((*at, "options"), "BASE_TYPE_BAD_LENGTH", f"Must be between 1 and {MAX_OPTIONS} in length.")
        return
    values: set[str] = set()
    for number, option in enumerate(options):
        where: Path = (*at, "options", number)
        if not isinstance(option, dict):
            errors.add(where, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
            continue
        _bounded(errors, (*where, "label"), option.get("label"), MAX_OPTION_TEXT, required=True)
        _bounded(errors, (*where, "value"), option.get("value"), MAX_OPTION_TEXT, required=True)
        _bounded(errors, (*where, "description"), option.get("description"), MAX_OPTION_TEXT)
        if option.get("value") in values:
            errors.add((*where, "value"), "SELECT_COMPONENT_OPTION_VALUE_DUPLICATED", "Option values must be unique")
        values.add(str(option.get("value")))
    defaults = sum(1 for option in options if isinstance(option, dict) and option.get("default"))
    if defaults > int(item.get("max_values", 1)):
        errors.add((*at, "options"), "SELECT_COMPONENT_TOO_MANY_DEFAULT_VALUES", "Too many default values")
    if int(item.get("min_values", 1)) > int(item.get("max_values", 1)):
        errors.add((*at, "min_values"), "SELECT_COMPONENT_MIN_VALUES_TOO_LARGE", "min_values exceeds max_values")


# --- the submit -----------------------------------------------------------------------------------------------


def check_choice(component: Mapping[str, Any], values: Sequence[str] | None) -> list[str]:
    """The values a member picks in a string select: within its ``min_values``-``max_values``, among its options."""
    if values is None:
        raise InvocationRefused("a select needs values")
    chosen = list(values)
    offered = [o["value"] for o in component.get("options") or []]
    low, high = component.get("min_values", 1), component.get("max_values", 1)
    if not low <= len(chosen) <= high:
        raise InvocationRefused(f"choose {low}-{high} values, not {len(chosen)}")
    unknown = [v for v in chosen if v not in offered]
    if unknown:
        raise InvocationRefused(f"values {unknown} are not among the options {offered}")
    return chosen


def submitted_components(modal: Mapping[str, Any], values: Values) -> list[dict[str, Any]]:
    """The modal's components as Discord sends them back with the member's ``values`` (by custom id); inputs the
    test leaves out keep what the modal showed. Refuses what the client would not let the member send."""
    remaining = dict(values)
    numbering = _Numbering(modal.get("components") or [])
    found = [_submitted(item, remaining, numbering) for item in modal.get("components") or []]
    if remaining:
        raise InvocationRefused(f"the modal has no input(s) {sorted(remaining)}")
    return [item for item in found if item is not None]


class _Numbering:
    """Discord's component ids: the ones given, and the next free numbers, in order, for the others."""

    def __init__(self, components: list[Any]) -> None:
        self._taken = {item["id"] for item in iter_components(components) if isinstance(item.get("id"), int)}
        self._next = 0

    def of(self, item: Mapping[str, Any]) -> int:
        given = item.get("id")
        if isinstance(given, int):
            return given
        self._next += 1
        while self._next in self._taken:
            self._next += 1
        return self._next


def _input_value(item: Mapping[str, Any], remaining: dict[str, str | Sequence[str]], ids: _Numbering) -> dict[str, Any]:
    custom_id = item.get("custom_id")
    kind = item.get("type")
    given = remaining.pop(str(custom_id), None)
    if kind == TEXT_INPUT:
        text = str(item.get("value") or "") if given is None else given
        if not isinstance(text, str):
            raise InvocationRefused(f"text input {custom_id!r} takes a string")
        if item.get("required", True) and not text:
            raise InvocationRefused(f"text input {custom_id!r} is required")
        low, high = item.get("min_length") or 0, item.get("max_length") or MAX_TEXT
        if text and not low <= len(text) <= high:
            raise InvocationRefused(f"text input {custom_id!r} takes {low}-{high} characters, not {len(text)}")
        return {"type": TEXT_INPUT, "id": ids.of(item), "custom_id": custom_id, "value": text}
    if kind == STRING_SELECT:
        if given is None:
            chosen = [o["value"] for o in item.get("options") or [] if o.get("default")]
        else:
            chosen = [given] if isinstance(given, str) else list(given)
        if not chosen and not item.get("required", True):
            return {"type": STRING_SELECT, "id": ids.of(item), "custom_id": custom_id, "values": []}
        if not chosen:
            raise InvocationRefused(f"select {custom_id!r} is required")
        return {"type": STRING_SELECT, "id": ids.of(item), "custom_id": custom_id, "values": check_choice(item, chosen)}
    raise InvocationRefused(f"component {custom_id!r} (type {kind}) is not supported by the fake's modals")


def _submitted(
    item: Mapping[str, Any], remaining: dict[str, str | Sequence[str]], ids: _Numbering
) -> dict[str, Any] | None:
    kind = item.get("type")
    if kind == ACTION_ROW:
        own = ids.of(item)
        inner = [_input_value(c, remaining, ids) for c in item.get("components") or []]
        return {"type": ACTION_ROW, "id": own, "components": inner}
    if kind == LABEL:
        own = ids.of(item)
        return {"type": LABEL, "id": own, "component": _input_value(item["component"], remaining, ids)}
    ids.of(item)  # a Text Display is numbered too, and sent back as nothing
    return None
