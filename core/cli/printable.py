"""The one way the command line shows a user's file name (or a message naming one) on a terminal.

A file may be named "\\x1b[31mred.png" or "a\\nb.png": printed raw, its escape sequence
recolours or rewrites the user's terminal and its newline splits a one-line message. Every
plain-text line the CLI prints passes its names through `printable`; JSON output needs nothing
(json.dumps escapes control characters itself).
"""

from __future__ import annotations

import unicodedata
from os import PathLike

# Control characters (C0, DEL, C1), format characters such as the bidi overrides U+202E that
# reorder what is shown, line and paragraph separators, and lone surrogates (undecodable bytes).
_HIDDEN = {"Cc", "Cf", "Zl", "Zp", "Cs"}
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(value: str | PathLike | object) -> str:
    """`value` as text safe to print: every character that would not show as itself is escaped.

    Args:
        value: a path, a file name, or a message that may hold one (anything `str()` takes).

    Returns:
        The text with control, format and separator characters as Python escapes ("\\x1b",
        "\\n", "\\u202e") and each undecodable byte of a file name (a surrogate that
        os.fsdecode made) as "\\xNN"; anything else, accented letters included, unchanged.
    """
    text = str(value)
    if text.isprintable():  # the common case, fast (isprintable is False for every hidden kind)
        return text
    return "".join(_escape(ch) if unicodedata.category(ch) in _HIDDEN else ch for ch in text)


def _escape(ch: str) -> str:
    code = ord(ch)
    if ch in _NAMED:
        return _NAMED[ch]
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: the byte 0x80..0xFF of a non-UTF-8 name
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


__all__ = ["printable"]
