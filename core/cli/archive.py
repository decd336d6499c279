"""`python -m core embed-archive`: embed a large image folder into resumable shards, then index.

Prints one JSON object: out, n_files, n_vectors, n_skipped, n_shards, new_shards, seconds,
n_left_out and left_out_csv (the files the views rule left out; `--views all` keeps them), and
(unless --no-index) index_kind and index_path, plus recall_at_10 for an approximate index
(measured against exact search on 200 of the archive's own vectors). --engine ray runs the same
embedding on Ray Data (a local Ray unless --address names a cluster).

OUT records the archive it was made from (`archive_root` in OUT/archive.json): both commands
refuse, in one line, a missing archive folder, one without images, and any folder other than
OUT's own archive, before anything is written (`core.embed.shards.check_archive_root`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.cli.types import positive_int, require_run
from core.config import VIEWS


def non_negative_float(text: str) -> float:
    """argparse type: a number >= 0 (GPU shares may be fractional)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a number > 0 (seconds)."""
    value = non_negative_float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def cmd_embed_archive(a: argparse.Namespace) -> int:
    require_run(a.run, checkpoint_ok=True)
    from core.embed.shards import LEFT_OUT, embed_archive
    from core.index.from_shards import build_index_from_shards

    result = embed_archive(a.run, a.data, a.out, a.shard_size, device=a.device,
                           precision=a.precision, batch_size=a.batch_size,
                           workers=a.workers, progress=sys.stderr.isatty(), engine=a.engine,
                           address=a.address, gpus_per_worker=a.gpus_per_worker,
                           stall_timeout=a.stall_timeout, views=a.views)
    summary = {"out": str(result.out_dir), "n_files": result.n_files,
               "n_vectors": result.n_vectors, "n_skipped": result.n_skipped,
               "n_shards": result.n_shards, "new_shards": list(result.new_shards),
               "seconds": round(result.seconds, 1), "n_left_out": len(result.left_out),
               "left_out_csv": str(result.out_dir / LEFT_OUT)}
    if not a.no_index:
        index = build_index_from_shards(a.out, a.index, opq=a.opq)
        summary.update(index_kind=index.kind, index_path=str(result.out_dir / "index.faiss"))
        if "recall_at_10" in index.report:
            summary["recall_at_10"] = index.report["recall_at_10"]
    print(json.dumps(summary))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add the `embed-archive` subcommand to the CLI's subparsers."""
    p = sub.add_parser("embed-archive",
                       help="embed a large image folder into resumable shards and index them")
    p.add_argument("--run", required=True, help="a trained run folder")
    p.add_argument("--data", required=True, help="the archive: any folder of images")
    p.add_argument("--out", required=True,
                   help="folder for the shards and the index (it records its archive)")
    p.add_argument("--shard-size", type=positive_int, default=10_000)
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--workers", type=int, default=-1, help="loader processes (-1: automatic)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto")
    p.add_argument("--index", choices=("auto", "exact", "hnsw", "ivfpq"), default="auto",
                   help="index kind (auto: exact below 200,000 vectors, HNSW below 1M, else IVF-PQ)")
    p.add_argument("--opq", action="store_true", help="give an IVF-PQ index an OPQ rotation")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: this process; ray: Ray Data (decode tasks, model actors)")
    p.add_argument("--address", default=None,
                   help="Ray cluster to join ('auto' or HOST:PORT); default: start a local Ray")
    p.add_argument("--gpus-per-worker", type=non_negative_float, default=0.0,
                   help="GPUs per embedding actor with --engine ray (0: embed on CPUs)")
    p.add_argument("--stall-timeout", type=positive_float, default=None,
                   help="with --engine ray: seconds without a row from the cluster before the "
                        "run stops in one line, keeping its finished shards (default 300)")
    p.add_argument("--no-index", action="store_true", help="only embed; build the index later")
    p.add_argument("--views", choices=VIEWS, default=None,
                   help="frontal leaves laterals and non-radiograph DICOM films out (listed in "
                        "OUT/left_out.csv with the reason), all embeds them (default: the run's)")
    p.set_defaults(func=cmd_embed_archive)


def cmd_archive_duplicates(a: argparse.Namespace) -> int:
    from core.duplicates.archive_pairs import archive_duplicates
    from core.files import atomic_write_csv

    pairs = archive_duplicates(a.out, a.data, threshold=a.threshold, k=a.k, engine=a.engine,
                               address=a.address)
    rows = [p.to_dict() for p in pairs]
    atomic_write_csv(Path(a.out) / "duplicates.csv",
                     ["a", "b", "score", "kind", "inliers", "agreement"], rows)
    kinds = {k: sum(p.kind == k for p in pairs) for k in ("exact", "copy", "similar")}
    print(json.dumps({"n_pairs": len(pairs), **kinds, "pairs_csv": str(Path(a.out) / "duplicates.csv")}
                     | ({"pairs": rows} if a.json else {})))
    return 0


def add_duplicates_parser(sub: argparse._SubParsersAction) -> None:
    """Add the `archive-duplicates` subcommand: near-duplicates of an embedded archive."""
    p = sub.add_parser("archive-duplicates",
                       help="near-duplicate pairs of an embed-archive output, through its index")
    p.add_argument("--out", required=True, help="the embed-archive output folder")
    p.add_argument("--data", required=True, help="the archive folder OUT was made from")
    p.add_argument("--threshold", type=float, default=0.95,
                   help="cosine at which an unverified pair is still reported as similar")
    p.add_argument("-k", type=positive_int, default=10, help="neighbours per image")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="where candidate pairs are verified (ray: tasks on the Ray cluster)")
    p.add_argument("--address", default=None, help="Ray cluster ('auto' or HOST:PORT)")
    p.add_argument("--json", action="store_true", help="also list every pair")
    p.set_defaults(func=cmd_archive_duplicates)
