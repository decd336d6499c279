"""`python -m core add --run RUN --data NEWDIR [--json]`: check new films on arrival.

Embeds the images under NEWDIR with the run's model, adds them to the run's embeddings and
index, and flags each one that duplicates a film already indexed (or another new one) by the
rule of the run's last duplicate search; flagged pairs join the review queue. With --json,
prints one object (a contract): {"added": N, "skipped": [{"path", "reason"}, ...],
"pairs": [{"a", "b", "score", "kind"}, ...]} plus "rule", "seconds" and "rechecked" (films an
interrupted add had indexed but not yet checked, checked by this one). Adding the same files
again adds nothing (they are listed as skipped).
"""

from __future__ import annotations

import argparse
import json

from core.cli.printable import printable
from core.cli.types import positive_int
from core.config import VIEWS


def cmd_add(a: argparse.Namespace) -> int:
    from core.runs.ingest import add_files

    result = add_files(a.run, a.data, k=a.k, device=a.device, views=a.views)
    if a.json:
        print(json.dumps(result.contract()))
        return 0
    rechecked = (f"; {result.rechecked} films an interrupted add had indexed were checked"
                 if result.rechecked else "")
    print(f"added {result.added} files, skipped {len(result.skipped)}; "
          f"{len(result.pairs)} duplicate pairs (rule from {result.rule_source}){rechecked}")
    for p in result.pairs:
        print(f"  {p.score:.4f}  {'exact' if p.exact else 'near '}  {printable(p.a)}  "
              f"{printable(p.b)}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add the `add` subcommand to the CLI's subparsers."""
    p = sub.add_parser("add", help="add new images to a run's index and check them for duplicates")
    p.add_argument("--run", required=True, help="a trained run folder")
    p.add_argument("--data", required=True, help="folder of new images")
    p.add_argument("-k", type=positive_int, default=10, help="neighbours checked per new image")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu")
    p.add_argument("--views", choices=VIEWS, default=None,
                   help="frontal skips laterals and non-radiograph DICOM films (listed with the "
                        "reason), all adds them (default: the run's)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_add)
