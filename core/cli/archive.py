"""`python -m core embed-archive`: embed a large image folder into resumable shards, then index.

Prints one JSON object: out, n_files, n_vectors, n_skipped, n_shards, new_shards, seconds,
and (unless --no-index) index_kind and index_path.
"""

from __future__ import annotations

import argparse
import json
import sys

from core.cli.types import positive_int


def cmd_embed_archive(a: argparse.Namespace) -> int:
    from core.embed.shards import embed_archive
    from core.index.from_shards import build_index_from_shards

    result = embed_archive(a.run, a.data, a.out, a.shard_size, device=a.device,
                           precision=a.precision, batch_size=a.batch_size,
                           workers=a.workers, progress=sys.stderr.isatty())
    summary = {"out": str(result.out_dir), "n_files": result.n_files,
               "n_vectors": result.n_vectors, "n_skipped": result.n_skipped,
               "n_shards": result.n_shards, "new_shards": list(result.new_shards),
               "seconds": round(result.seconds, 1)}
    if not a.no_index:
        index = build_index_from_shards(a.out, a.index)
        summary.update(index_kind=index.kind, index_path=str(result.out_dir / "index.faiss"))
    print(json.dumps(summary))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add the `embed-archive` subcommand to the CLI's subparsers."""
    p = sub.add_parser("embed-archive",
                       help="embed a large image folder into resumable shards and index them")
    p.add_argument("--run", required=True, help="a trained run folder")
    p.add_argument("--data", required=True, help="the archive: any folder of images")
    p.add_argument("--out", required=True, help="folder for the shards and the index")
    p.add_argument("--shard-size", type=positive_int, default=10_000)
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--workers", type=int, default=-1, help="loader processes (-1: automatic)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto")
    p.add_argument("--index", choices=("auto", "exact", "hnsw"), default="auto",
                   help="index kind (auto: exact below 200,000 vectors, else HNSW)")
    p.add_argument("--no-index", action="store_true", help="only embed; build the index later")
    p.set_defaults(func=cmd_embed_archive)
