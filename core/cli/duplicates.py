"""`python -m core duplicates` and `python -m core duplicates-eval`.

`duplicates --json` prints one object (a contract): threshold, estimated_precision,
estimated_recall, n_pairs, n_groups, n_cross_split and pairs, a list of
{"a", "b", "score", "hash_distance", "cross_split", "kind", "inliers"} with paths relative to the
dataset root; kind is exact, copy, similar or same_patient; inliers is null when the pair was not
checked geometrically (exact copies).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from core.cli.printable import printable
from core.cli.types import positive_int, require_run
from core.config import LABEL_SOURCES, VIEWS


def add_listing_options(parser: argparse.ArgumentParser, default: str = "the run's") -> None:
    """--labels and --views: how a folder is listed (core.data.dataset.ListingOptions)."""
    parser.add_argument("--labels", choices=LABEL_SOURCES, default=None,
                        help=f"where labels come from (default: {default}; auto: manifest.csv, "
                             "else class folders one level deep, else none)")
    parser.add_argument("--views", choices=VIEWS, default=None,
                        help=f"frontal leaves laterals and non-radiograph modalities out, all keeps "
                             f"them (default: {default})")


def listing_options(a: argparse.Namespace, run: str | Path, cache: Path | None = None):
    """The ListingOptions of the command: its --labels/--views, else the run's."""
    from core.config import RunConfig
    from core.data.dataset import ListingOptions
    from core.run_folder import RunPaths

    config = RunConfig.load(RunPaths(Path(run)).config)
    return ListingOptions(a.labels or config.labels, a.views or config.views, cache)


def _threshold(text: str) -> str | float:
    from core.duplicates.rules import CalibrationError, parse_threshold

    try:
        value = parse_threshold(text)
    except CalibrationError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return "auto" if value is None else value


def _cosine(text: str) -> float:
    value = _threshold(text)
    if value == "auto":
        raise argparse.ArgumentTypeError("expected a cosine in [-1, 1], got 'auto'")
    return value


def cmd_duplicates(a: argparse.Namespace) -> int:
    require_run(a.run)
    from core.duplicates.search import run_duplicates

    result = run_duplicates(a.run, a.threshold, data=a.data, k=a.k, device=a.device,
                            progress=sys.stderr.isatty(), verify_k=a.verify_k, floor=a.floor,
                            workers=a.workers or 0, listing=listing_options(a, a.run))
    if a.json:
        print(json.dumps(result.contract()))
        return 0
    r = result.rule
    est = ("" if result.estimated_precision is None else
           f"; estimated precision {result.estimated_precision:.3f}, recall {result.estimated_recall:.3f}")
    print(f"{result.method} rule: {r.describe()}{est}")
    flagged = result.flagged
    print(f"{len(flagged)} duplicate pairs in {len(result.groups)} groups among {result.n_images} "
          f"images; {sum(p.cross_split for p in flagged)} cross-split; "
          f"{result.leakage.n_patients_across_splits} patients in more than one split")
    for p in flagged[:20]:
        inl = "" if p.inliers is None else f"  inliers={p.inliers}"
        print(f"  {p.kind:12s} {p.score:.4f}  d={p.hash_distance:2d}{inl}"
              f"{'  CROSS-SPLIT' if p.cross_split else ''}  {printable(p.a)}  {printable(p.b)}")
    if len(flagged) > 20:
        print(f"  ... {len(flagged) - 20} more")
    print(f"written to {printable(result.out_dir)}")
    return 0


def cmd_duplicates_eval(a: argparse.Namespace) -> int:
    require_run(a.run, checkpoint_ok=True)
    from core.demo.dataset import write_demo_dataset
    from core.duplicates.evaluation.report import evaluate_duplicates, format_table

    demo = Path(a.demo) if a.demo else Path(tempfile.gettempdir()) / "cxr-similar-demo-eval"
    if not (demo / "duplicates.csv").is_file():
        write_demo_dataset(demo, per_class=60, size=256, seed=0)
    table = evaluate_duplicates(a.run, cxr=a.cxr, demo=demo, device=a.device)
    print(json.dumps(table.to_dict(), indent=2) if a.json else format_table(table))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `duplicates` and `duplicates-eval` on the CLI's subparsers."""
    d = sub.add_parser("duplicates", help="find near-duplicate pairs, groups and cross-split leaks")
    d.add_argument("--run", required=True)
    d.add_argument("--threshold", type=_threshold, default="auto",
                   help="'auto' (calibrated on synthetic copies) or a cosine in [-1, 1]")
    d.add_argument("--data", help="another image folder, embedded with the run's model")
    d.add_argument("-k", type=positive_int, default=10, help="neighbours per image")
    d.add_argument("--verify-k", type=positive_int, default=5,
                   help="neighbours per image checked geometrically (local features + RANSAC)")
    d.add_argument("--floor", type=_cosine, default=0.5,
                   help="lowest cosine of a neighbour checked geometrically")
    d.add_argument("--workers", type=positive_int, default=None,
                   help="processes for features and verification (default: one per core)")
    d.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu")
    d.add_argument("--json", action="store_true", help="print one JSON object")
    add_listing_options(d, "the run's, for --data")
    d.set_defaults(func=cmd_duplicates)

    e = sub.add_parser("duplicates-eval", help="precision/recall/F1 of embedding, hash and both")
    e.add_argument("--run", required=True)
    e.add_argument("--cxr", default="../shared/data/cxr", help="folder with near_duplicates.csv")
    e.add_argument("--demo", help="a demo set with duplicates.csv (made if missing)")
    e.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_duplicates_eval)
