"""Which server folders the app may open: the workspace and the roots an administrator allows.

The app is a web page over the server's disk; without a limit anyone who can reach it could
list any folder the server user can read. `CXR_ALLOWED_ROOTS` (paths separated by ':')
replaces the default extra root, the server user's home folder.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_ALLOWED = "CXR_ALLOWED_ROOTS"


class FolderNotAllowed(ValueError):
    """The folder lies outside the allowed roots (one-line message)."""


def allowed_roots(workspace_root: str | Path) -> tuple[Path, ...]:
    """The workspace, then $CXR_ALLOWED_ROOTS (or the home folder when unset), resolved."""
    extra = os.environ.get(ENV_ALLOWED)
    others = [p for p in extra.split(os.pathsep) if p.strip()] if extra is not None else [str(Path.home())]
    roots: list[Path] = []
    for p in [str(workspace_root), *others]:
        resolved = Path(p).expanduser().resolve()
        if resolved not in roots:
            roots.append(resolved)
    return tuple(roots)


def check_allowed(path: str | Path, roots: tuple[Path, ...]) -> Path:
    """The resolved `path` (symlinks followed) if it lies inside one of `roots`.

    Raises:
        FolderNotAllowed: empty, or outside every root (a symlink out of a root counts as outside).
    """
    text = str(path).strip()
    if not text:
        raise FolderNotAllowed("give a folder path")
    resolved = Path(text).expanduser().resolve()
    for root in roots:
        if resolved == root or root in resolved.parents:
            return resolved
    listed = ", ".join(str(r) for r in roots)
    raise FolderNotAllowed(f"{resolved} is outside the folders this app may open ({listed}); "
                           f"an administrator can add one with {ENV_ALLOWED}")
