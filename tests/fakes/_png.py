"""Real PNG images for the fakes, built with zlib alone: fast, deterministic, and distinct per seed."""

from __future__ import annotations

import functools
import hashlib
import random
import struct
import zlib

# A private, ancillary, safe-to-copy chunk type: decoders skip it, so padding keeps the image valid.
_PADDING_CHUNK = b"paDd"


def colour_for(seed: str) -> tuple[int, int, int]:
    """A colour derived from `seed`, so every (task, index) pair gets its own."""
    digest = hashlib.sha256(seed.encode()).digest()
    return digest[0], digest[1], digest[2]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


@functools.lru_cache(maxsize=128)
def solid_png(width: int, height: int, rgb: tuple[int, int, int], *, min_bytes: int = 0) -> bytes:
    """A `width` x `height` RGB PNG of one colour, padded with a skipped chunk to at least `min_bytes`."""
    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    image = _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(row * height, 1))
    png = b"\x89PNG\r\n\x1a\n" + image + _chunk(b"IEND", b"")
    shortfall = min_bytes - len(png)
    if shortfall > 0:
        # Random bytes, so that no transfer encoding could shrink a "large" image.
        padding = random.Random(min_bytes).randbytes(max(shortfall - 12, 0))
        png = b"\x89PNG\r\n\x1a\n" + image + _chunk(_PADDING_CHUNK, padding) + _chunk(b"IEND", b"")
    return png


def png_for(seed: str, width: int, height: int, *, min_bytes: int = 0) -> bytes:
    """The image the fake serves for `seed`: one colour from the seed, at the size asked."""
    return solid_png(width, height, colour_for(seed), min_bytes=min_bytes)
