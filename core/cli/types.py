"""argparse value types and argument checks shared by the command-line modules (one-line
messages on bad values, given before a command loads torch: a typo answers at once)."""

from __future__ import annotations

import argparse
from pathlib import Path

from core.run_folder import RunError, RunPaths


def positive_int(text: str) -> int:
    """A whole number above zero."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def positive_float(text: str) -> float:
    """A finite number above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got '{text}'") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def require_run(run: str, *, checkpoint_ok: bool = False) -> RunPaths:
    """The run folder's paths.

    Args:
        checkpoint_ok: a folder holding only a checkpoint (best.pt or last.pt, which carry their
            config) is enough, as for embedding an archive with a trained model.

    Raises:
        RunError: `run` has no config.json (nor, with `checkpoint_ok`, a checkpoint).
    """
    paths = RunPaths(Path(run))
    found = paths.config.is_file() or (checkpoint_ok and (paths.best.is_file() or paths.last.is_file()))
    if not found:
        raise RunError(f"not a run folder: {run}")
    return paths
