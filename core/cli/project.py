"""`python -m core project`: compute a run's 2-D map (t-SNE or PCA) and cache it in the run.

Progress goes to `<projection>.progress.json` in the run folder (the Map page polls it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.cli.printable import printable
from core.embed.projection import METHODS, SPLITS


def _perplexity(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got '{text}'") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def cmd_project(a: argparse.Namespace) -> int:
    from core.embed.projection import (
        ProjectionError,
        ProjectionSpec,
        compute_projection,
        load_projection,
    )
    from core.jobs.projection import write_progress
    from core.run_folder import RunError

    if not Path(a.run).is_dir():  # before any progress file, which would create the folder
        raise RunError(f"{a.run} has no embeddings yet (no such folder)")
    try:
        spec = ProjectionSpec(a.method, a.perplexity, a.seed, a.split)
    except ProjectionError as e:
        sys.stderr.write(f"error: {printable(e)}\n")
        return 2
    if not a.force and load_projection(a.run, spec) is not None:
        write_progress(a.run, spec, "done", 1.0, "done")
        print(f"{spec.name}: already computed")
        return 0

    def report(fraction: float, message: str) -> None:
        write_progress(a.run, spec, "running", fraction, message)

    report(0.0, "loading embeddings")
    try:
        projection = compute_projection(a.run, spec, report, n_jobs=a.jobs)
    except (ProjectionError, RunError) as e:
        write_progress(a.run, spec, "failed", 0.0, str(e))
        sys.stderr.write(f"error: {printable(e)}\n")
        return 2
    except BaseException as e:  # the page must see the failure, not a run that never ends
        write_progress(a.run, spec, "failed", 0.0, f"{type(e).__name__}: {e}".splitlines()[0])
        raise
    write_progress(a.run, spec, "done", 1.0, "done")
    print(f"{spec.name}: {len(projection.rows)} points")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `project` on the CLI's subparsers."""
    p = sub.add_parser("project", help="compute and cache a run's 2-D map (t-SNE or PCA)")
    p.add_argument("--run", required=True)
    p.add_argument("--method", choices=METHODS, default="tsne")
    p.add_argument("--perplexity", type=_perplexity, default=30.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", choices=SPLITS, default="all")
    p.add_argument("--jobs", type=int, default=-1, help="threads for t-SNE (-1: all cores)")
    p.add_argument("--force", action="store_true", help="recompute even if cached")
    p.set_defaults(func=cmd_project)
