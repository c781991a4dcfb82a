"""Discord's limits on what the bot posts (see docs/discord.md); user text is cut to fit its field."""

from __future__ import annotations

from typing import Final

TITLE_LIMIT: Final = 256
DESCRIPTION_LIMIT: Final = 4096
FIELD_VALUE_LIMIT: Final = 1024
FOOTER_LIMIT: Final = 2048
TOTAL_LIMIT: Final = 6000
# A list echoed in message content leaves room for the sentence around it within the 2,000 characters.
MESSAGE_LIST_LIMIT: Final = 1500
# A value a member typed (a model, an option, a day), repeated in a refusal: a string option takes 6,000 characters
# and a message 4,000, so it is cut to leave the sentence around it within the 2,000 of a message.
ECHO_LIMIT: Final = 100


def cut(text: str, limit: int) -> str:
    """`text`, cut to at most `limit` characters with an ellipsis when it was longer."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
