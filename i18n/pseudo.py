"""The pseudo-locale: English made visibly foreign, so a test can tell a text that went through the catalog.

"Your prompt is empty" becomes "⟦Ŷöûŕ ƥŕöɱƥţ îš éɱƥţý⟧": every letter accented, the whole bracketed. What a member
or Discord must still read as it is stays intact: placeholders (`{count}`), Discord's markup (`<t:…:R>`,
`<@…>`, `<#…>`, `<@&…>`, custom emoji), code spans (option names such as `clear`), slash commands (`/quota`)
and links.
"""

from __future__ import annotations

import re
from typing import Final

OPEN: Final = "⟦"
CLOSE: Final = "⟧"

_PLAIN: Final = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ACCENTED: Final = "àƀçđéƒĝĥîĵķĺɱñöƥʠŕšţûṽŵẋýžÀƁÇĐÉƑĜĤÎĴĶĹṀÑÖƤɊŔŠŢÛṼŴẊÝŽ"
_TABLE: Final = str.maketrans(_PLAIN, _ACCENTED)

# Left as they are: placeholders, Discord markup, code spans, links, slash commands.
_KEPT: Final = re.compile(r"\{[^{}]*\}|<[^<>\s]+>|`[^`]*`|https?://\S+|(?<![\w/])/[a-z][\w-]*")


def pseudo(text: str) -> str:
    """`text` (a template: placeholders are not filled in yet) in the pseudo-locale; its length grows by 2."""
    out: list[str] = []
    last = 0
    for kept in _KEPT.finditer(text):
        out.append(text[last : kept.start()].translate(_TABLE))
        out.append(kept.group())
        last = kept.end()
    out.append(text[last:].translate(_TABLE))
    return OPEN + "".join(out) + CLOSE


def is_pseudo(text: str) -> bool:
    """Whether `text` is a whole pseudo-localized text (possibly cut to a limit)."""
    return text.startswith(OPEN) and text.endswith(CLOSE)


def fit(text: str, limit: int) -> str:
    """`text` within `limit` characters: a pseudo text is cut inside its brackets, any other with an ellipsis."""
    if len(text) <= limit:
        return text
    if is_pseudo(text):
        return text[: limit - 2] + "…" + CLOSE
    return text[: limit - 1] + "…"
