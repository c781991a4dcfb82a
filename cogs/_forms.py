"""Forms (modals) answered from their record, whenever they are sent (generation/forms.py).

A form is shown once with a custom id `imagine:form:<kind>:<id>` and then let go of at once: discord.py never
answers it itself, so every submit, before or after a restart, takes the same path, through a listener that
reads the form's record. The values a member typed or picked come in the submit's components.
"""

from __future__ import annotations

import re
from typing import Any, Final

import discord

PREFIX: Final = "imagine:form:"
_CUSTOM_ID: Final = re.compile(rf"^{re.escape(PREFIX)}(?P<kind>[a-z-]+):(?P<id>[0-9a-f]{{32}})$")


def custom_id(kind: str, form_id: str) -> str:
    """The custom id a form of this kind and id is shown with."""
    return f"{PREFIX}{kind}:{form_id}"


def parse(value: str) -> tuple[str, str] | None:
    """The kind and id of one of Imagine's forms, or None for any other custom id."""
    match = _CUSTOM_ID.match(value)
    return (match["kind"], match["id"]) if match else None


async def show(interaction: discord.Interaction, modal: discord.ui.Modal) -> None:
    """Show `modal` as the interaction's first response, then let discord.py forget it: its submit is answered
    from the form's record, like one sent after a restart."""
    await interaction.response.send_modal(modal)
    modal.stop()


def submitted(interaction: discord.Interaction) -> tuple[str, str] | None:
    """The kind and id of the form an interaction submits, or None if it submits none of Imagine's."""
    if interaction.type is not discord.InteractionType.modal_submit:
        return None
    data: dict[str, Any] = dict(interaction.data or {})
    return parse(str(data.get("custom_id", "")))


def values(interaction: discord.Interaction) -> dict[str, str | list[str]]:
    """What the member typed (text inputs) and picked (selects), by component custom id, at any depth (action
    rows or labels)."""
    found: dict[str, str | list[str]] = {}
    stack: list[Any] = [dict(interaction.data or {}).get("components", [])]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            component_id = item.get("custom_id")
            if isinstance(component_id, str) and isinstance(item.get("value"), str):
                found[component_id] = item["value"]
            elif isinstance(component_id, str) and isinstance(item.get("values"), list):
                found[component_id] = [str(value) for value in item["values"]]
            stack.extend(item[key] for key in ("components", "component") if key in item)
    return found
