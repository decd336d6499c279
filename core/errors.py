"""The one base for errors a user can act on: a message of one line, never a traceback.

Every module's own error (`DatasetError`, `RunError`, ...) derives from `UserError`; the CLI
catches `UserError` once and prints `error: <message>`, the pages show it with `st.error`.
"""

from __future__ import annotations

import errno

# Environmental failures (the disk, not the user's input) in words a user can act on.
_OS_WORDS = {
    errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
    errno.EPERM: "permission denied", errno.EIO: "input/output error",
}


class UserError(ValueError):
    """Bad input or a bad environment, told in one line (the first line of `str(e)`)."""


def one_line(e: BaseException) -> str:
    """The first line of an error's message, or its type's name when it has none.

    An OSError reads as what happened and where: 'the disk is full: /runs/r1/.last.pt.x.tmp'.
    """
    if isinstance(e, OSError) and not isinstance(e, UserError):
        what = _OS_WORDS.get(e.errno or 0) or e.strerror or str(e).strip() or type(e).__name__
        where = e.filename or ""
        text = f"{what}: {where}" if where and str(where) not in what else str(what)
        return text.splitlines()[0] if text.strip() else type(e).__name__
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
