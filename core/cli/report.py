"""`python -m core report --run RUN --out FILE.html`: one self-contained HTML report of a run.

The report (core.report) holds the run's summary, duplicate groups with both films, leakage
across splits, the data-quality lists and the metrics beside baselines; its films are inside
the file, and opening it makes no request. Patients appear by the keyed names of the run's
workspace, never by their ids.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.cli.printable import printable
from core.cli.types import require_run


def add_parser(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("report", help="write one self-contained HTML report of a run (summary, "
                       "duplicates, leakage, data quality, metrics)")
    r.add_argument("--run", required=True)
    r.add_argument("--out", required=True, help="the HTML file to write")
    r.set_defaults(func=cmd_report)


def run_workspace(run: Path) -> Path:
    """The workspace holding `run` (its runs/ folder's parent, when that holds a
    workspace.json), else the default one ($CXR_WORKSPACE or ./workspace)."""
    above = run.resolve().parent
    if above.name == "runs" and (above.parent / "workspace.json").is_file():
        return above.parent
    from core.runs.workspace import workspace_root

    return workspace_root()


def cmd_report(a: argparse.Namespace) -> int:
    paths = require_run(a.run)
    from core.data.access import allowed_roots
    from core.data.patient_ids import patient_key
    from core.report.output import check_output

    check_output(a.out)  # before the run is read and torch loads: a typo in --out answers at once
    from core.report.write import write_report

    workspace = run_workspace(paths.root)
    progress = None
    if sys.stderr.isatty():
        def progress(done: int, total: int) -> None:
            sys.stderr.write(f"\rmeasuring films {done}/{total}" + ("\n" if done == total else ""))

    w = write_report(paths.root, a.out, patient_key(workspace), allowed_roots(workspace), progress)
    print(f"wrote {printable(w.out)} ({w.n_bytes / 1e6:.1f} MB): {w.n_films:,} films, "
          f"{w.n_groups:,} duplicate group{'' if w.n_groups == 1 else 's'}, {w.n_listed:,} films on "
          "the quality lists")
    return 0
