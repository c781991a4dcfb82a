"""The Message Content rule: what a bot without the privileged Message Content intent reads of messages.

Discord gives such a bot empty ``content``, ``embeds``, ``attachments`` and ``components`` for other users'
messages, and the same fields of every ``message_snapshots[].message`` of a forward. It does so on the gateway
(MESSAGE_CREATE, MESSAGE_UPDATE, and the ``referenced_message`` inside them) and on REST reads (``GET
/channels/{id}/messages/{id}``, channel history) alike. Except:

- the bot's own messages;
- messages that mention the bot: its user id is in ``mentions`` (a reply with the ping on puts the replied-to
  author there); @everyone, @here and role mentions do not count, even the bot's managed role;
- messages in DMs;
- the message a message context menu command was run on: its full copy is in the interaction's
  ``data.resolved.messages`` (the fake never blanks interaction payloads).

A ``referenced_message`` is judged on its own (a reply that mentions the bot does not reveal the message it
answers); a forward's snapshots follow the forward (a forward carries no text that could mention anyone).

Who decides: on the gateway, the intents the session sent at IDENTIFY; on REST, the application's privileged
intents (``FakeDiscord(privileged_intents=...)``), whatever a session identified with. A bot that identifies
with Message Content while the application lacks it is refused at IDENTIFY (``4014``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

INTENT_MESSAGE_CONTENT = 1 << 15

BLANKED_FIELDS = ("content", "embeds", "attachments", "components")


def _blanked() -> dict[str, Any]:
    return {"content": "", "embeds": [], "attachments": [], "components": []}


def reads_content(message: Mapping[str, Any], *, bot_id: int, in_dm: bool) -> bool:
    """Whether a bot without the intent sees this message object in full."""
    if in_dm:
        return True
    me = str(bot_id)
    if str((message.get("author") or {}).get("id")) == me:
        return True
    return any(str(user.get("id")) == me for user in message.get("mentions") or [])


def as_read_without_intent(message: Mapping[str, Any], *, bot_id: int, in_dm: bool) -> dict[str, Any]:
    """A copy of a message object as a bot without the intent receives it (its ``referenced_message`` too)."""
    result = dict(message)
    if not reads_content(message, bot_id=bot_id, in_dm=in_dm):
        result.update(_blanked())
        if result.get("message_snapshots"):
            result["message_snapshots"] = [_blank_snapshot(s) for s in result["message_snapshots"]]
    referenced = message.get("referenced_message")
    if isinstance(referenced, Mapping):
        result["referenced_message"] = as_read_without_intent(referenced, bot_id=bot_id, in_dm=in_dm)
    return result


def _blank_snapshot(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    inner = dict(snapshot.get("message") or {})
    inner.update(_blanked())
    return {**snapshot, "message": inner}


def for_reader(message: dict[str, Any], *, bot_id: int, in_dm: bool, has_intent: bool) -> dict[str, Any]:
    """The message object as a reader with (or without) the intent receives it."""
    if has_intent:
        return message
    return as_read_without_intent(message, bot_id=bot_id, in_dm=in_dm)
