"""Which server folders and films the app may open: the workspace and the roots an administrator allows.

The app is a web page over the server's disk; without a limit anyone who can reach it could
list any folder the server user can read. `CXR_ALLOWED_ROOTS` (paths separated by ':')
replaces the default extra root, the server user's home folder. The later dataset folders of
the workspace's runs (`train --data A --data B`) are allowed too: whoever trained the run chose
them.

`dataset_file` is the one door to a run's films (items.csv and duplicates.json paths): every
page and picture that opens one goes through it.
"""

from __future__ import annotations

import os
from pathlib import Path

from core.config import ConfigError, load_run_config
from core.data.imageio import ImageReadError
from core.run_folder import RunPaths

ENV_ALLOWED = "CXR_ALLOWED_ROOTS"
RUNS_DIR = "runs"  # a workspace's runs folder (core.runs.workspace.Workspace.runs_dir)


class FolderNotAllowed(ValueError):
    """The folder lies outside the allowed roots (one-line message)."""


def allowed_roots(workspace_root: str | Path) -> tuple[Path, ...]:
    """The workspace, the later dataset folders of its runs (`run_folders`), then
    $CXR_ALLOWED_ROOTS (or the home folder when unset), resolved."""
    extra = os.environ.get(ENV_ALLOWED)
    others = [p for p in extra.split(os.pathsep) if p.strip()] if extra is not None else [str(Path.home())]
    roots: list[Path] = []
    for p in [str(workspace_root), *run_folders(workspace_root), *others]:
        resolved = Path(p).expanduser().resolve()
        if resolved not in roots:
            roots.append(resolved)
    return tuple(roots)


def run_folders(workspace_root: str | Path) -> list[str]:
    """The dataset folders after the first of every run in the workspace's runs folder.

    A run trained on several folders (`train --data A --data B`) records B's films by absolute
    path; the run names B as it names A, so the app opens B's films as it opens A's (those are
    relative to A, which `dataset_file` always allows). Runs whose config.json cannot be read
    add nothing.
    """
    try:
        runs = sorted(p for p in (Path(workspace_root) / RUNS_DIR).iterdir() if p.is_dir())
    except OSError:
        return []
    folders: list[str] = []
    for run in runs:
        try:
            folders += load_run_config(RunPaths(run, generation=None).config).more_data
        except ConfigError:
            continue
    return folders


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


def dataset_file(data_root: str | Path, rel_path: str, roots: tuple[Path, ...] = ()) -> Path:
    """The file a run names `rel_path`, resolved (symlinks followed), if the app may open it.

    A relative path (a film of the dataset) must stay inside `data_root`. An absolute one (a
    film `add` took from another folder) must lie inside `data_root` or one of `roots`.

    Args:
        data_root: the run's dataset folder.
        rel_path: the path as items.csv or duplicates.json holds it.
        roots: the allowed roots (`allowed_roots(workspace)`); () allows the dataset folder only.

    Raises:
        ImageReadError: the file lies outside them (one line naming it).
    """
    root = Path(data_root).resolve()
    path = (root / rel_path).resolve()
    if path.is_relative_to(root):
        return path
    if not Path(rel_path).is_absolute():
        raise ImageReadError(rel_path, "is outside the dataset folder")
    for allowed in roots:
        if path.is_relative_to(Path(allowed).resolve()):
            return path
    listed = ", ".join(str(r) for r in (root, *roots))
    raise ImageReadError(rel_path, f"is outside the dataset folder and the folders this app may "
                                   f"open ({listed}); not shown (an administrator can add a "
                                   f"folder with {ENV_ALLOWED})")
