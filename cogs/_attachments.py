"""Images a request uses, as Discord describes them: the attachments of a command, or of a message (its own, or
a forwarded message's), kept as plain data so a form can be answered from its record after a restart.

Discord's attachment URLs are signed and expire (the `ex` parameter, hex seconds; about a day): they are read
when the request runs, through discord.py's own session, and a record of them lives no longer than they do.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

import discord

from toapis.mime import EXTENSIONS

# When an attachment URL says nothing of its expiry: Discord's are signed for about a day.
DEFAULT_URL_LIFETIME: Final = timedelta(hours=23)
_IMAGE_SUFFIXES: Final = tuple(f".{extension}" for extension in {*EXTENSIONS.values(), "jpeg"})


@dataclass(frozen=True)
class ImageAttachment:
    """One attachment: where to read it, and what Discord says of it (its bytes are checked when read)."""

    id: int
    url: str
    filename: str
    size: int
    content_type: str | None = None
    width: int | None = None
    height: int | None = None

    @classmethod
    def of(cls, attachment: discord.Attachment) -> ImageAttachment:
        return cls(
            attachment.id,
            attachment.url,
            attachment.filename,
            attachment.size,
            attachment.content_type,
            attachment.width,
            attachment.height,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageAttachment:
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def is_image(self) -> bool:
        """Whether it looks like an image by what Discord says of it."""
        if self.content_type:
            return self.content_type.startswith("image/")
        return self.filename.lower().endswith(_IMAGE_SUFFIXES)

    def expires_at(self, now: datetime | None = None) -> datetime:
        """When its URL stops working (from the signature; a day from now when the URL does not say)."""
        values = parse_qs(urlsplit(self.url).query).get("ex")
        if values:
            try:
                return datetime.fromtimestamp(int(values[0], 16), UTC)
            except (ValueError, OverflowError):
                pass
        return (now or datetime.now(UTC)) + DEFAULT_URL_LIFETIME

    async def read(self, client: discord.Client) -> bytes:
        """Its bytes, through discord.py's session; `discord.HTTPException` when Discord will not give them."""
        return await client.http.get_from_cdn(self.url)


def message_images(message: discord.Message) -> tuple[list[ImageAttachment], bool]:
    """A message's images and whether they came from a forward: its own attachments, or, when it has none, those
    of the message it forwards (a forward carries its images in a snapshot)."""
    own = [ImageAttachment.of(a) for a in message.attachments]
    if own or not message.message_snapshots:
        return [a for a in own if a.is_image], False
    forwarded = [ImageAttachment.of(a) for a in message.message_snapshots[0].attachments]
    return [a for a in forwarded if a.is_image], True
