"""Server folders the app may open: the workspace and the allowed roots, nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.data.access import FolderNotAllowed, allowed_roots, check_allowed


def test_default_roots_are_workspace_and_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CXR_ALLOWED_ROOTS", raising=False)
    assert allowed_roots(tmp_path / "ws") == ((tmp_path / "ws").resolve(), Path.home().resolve())


def test_env_replaces_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CXR_ALLOWED_ROOTS", f"{tmp_path / 'data'}:{tmp_path / 'more'}:")
    assert allowed_roots(tmp_path / "ws") == tuple(
        (tmp_path / n).resolve() for n in ("ws", "data", "more"))


def test_inside_is_allowed_outside_and_symlinks_out_are_not(tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "chest").mkdir(parents=True)
    (tmp_path / "secret").mkdir()
    (root / "link").symlink_to(tmp_path / "secret")
    roots = (root.resolve(),)
    assert check_allowed(root / "chest", roots) == (root / "chest").resolve()
    assert check_allowed(f"  {root}  ", roots) == root.resolve()
    for bad in (tmp_path / "secret", root / "link", root / ".." / "secret", "/etc"):
        with pytest.raises(FolderNotAllowed, match="outside the folders"):
            check_allowed(bad, roots)
    with pytest.raises(FolderNotAllowed, match="give a folder"):
        check_allowed(" ", roots)
    with pytest.raises(FolderNotAllowed):  # a sibling sharing the prefix is not inside
        check_allowed(tmp_path / "data-other", roots)
