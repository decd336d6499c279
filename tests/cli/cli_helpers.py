"""What the archive CLI tests share: the tiny training options and one in-process CLI call."""

from __future__ import annotations

import pytest

from core.cli.main import main

TINY = ["--preset", "tiny", "--workers", "0", "--epochs", "1", "--image-size", "32"]


def run_cli(capsys: pytest.CaptureFixture, *args: str) -> str:
    """`python -m core ARGS` in this process; its stdout, once it has exited 0."""
    rc = main(list(args))
    out, err = capsys.readouterr()
    assert rc == 0, err
    return out
