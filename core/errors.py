"""The one base for errors a user can act on: a message of one line, never a traceback.

Every module's own error (`DatasetError`, `RunError`, ...) derives from `UserError`; the CLI
catches `UserError` once and prints `error: <message>`, the pages show it with `st.error`.
"""

from __future__ import annotations


class UserError(ValueError):
    """Bad input or a bad environment, told in one line (the first line of `str(e)`)."""


def one_line(e: BaseException) -> str:
    """The first line of an error's message, or its type's name when it has none."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
