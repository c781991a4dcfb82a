"""Uploaded files: what Discord learns about them (content type, image size) and signed CDN URLs."""

from __future__ import annotations

import hashlib
import hmac
import io
import mimetypes
from dataclasses import dataclass
from urllib.parse import quote

from PIL import Image

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


@dataclass(frozen=True)
class Upload:
    """A file a member attaches (to a slash command option or a message they post)."""

    data: bytes
    filename: str
    content_type: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class UploadedFile:
    """A file part of a multipart request: ``files[n]`` and what the client declared."""

    field: str
    filename: str
    data: bytes
    declared_content_type: str | None

    @property
    def index(self) -> int | None:
        """``n`` of a ``files[n]`` field."""
        if self.field.startswith("files[") and self.field.endswith("]"):
            inner = self.field[6:-1]
            return int(inner) if inner.isdigit() else None
        return None


def detect_content_type(filename: str, data: bytes, declared: str | None) -> str | None:
    """The content type Discord reports: from the bytes if it knows them, else the name, else the client's.

    discord.py declares every file as ``application/octet-stream``; Discord still reports ``image/png``.
    """
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    guessed, _ = mimetypes.guess_type(filename)
    if guessed:
        return guessed if not guessed.startswith("text/") else f"{guessed}; charset=utf-8"
    if declared and declared != "application/octet-stream":
        return declared
    return None


def image_size(data: bytes, content_type: str | None) -> tuple[int, int] | None:
    """Width and height of an image Discord can read, else ``None``."""
    if not content_type or not content_type.startswith("image/"):
        return None
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception:
        return None


class UrlSigner:
    """Discord's signed attachment URLs: ``ex`` (expiry, hex seconds), ``is`` (issued), ``hm`` (signature)."""

    def __init__(self, secret: bytes, lifetime: float) -> None:
        self._secret = secret
        self.lifetime = lifetime

    def _signature(self, path: str, expires: int, issued: int) -> str:
        message = f"{path}|{expires:x}|{issued:x}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def sign(self, base: str, path: str, now: float) -> str:
        """The full URL of ``path`` on the CDN at ``base``, valid for the signer's lifetime."""
        issued = int(now)
        expires = int(now + self.lifetime)
        signature = self._signature(path, expires, issued)
        return f"{base}{quote(path)}?ex={expires:x}&is={issued:x}&hm={signature}&"

    def valid(self, path: str, ex: str | None, issued: str | None, hm: str | None, now: float) -> bool:
        """Whether a URL's signature matches and it has not expired."""
        if not (ex and issued and hm):
            return False
        try:
            expires, issued_at = int(ex, 16), int(issued, 16)
        except ValueError:
            return False
        expected = self._signature(path, expires, issued_at)
        return hmac.compare_digest(expected, hm) and now < expires
