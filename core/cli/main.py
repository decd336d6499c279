"""Command line: `python -m core {demo-data,demo-workspace,train,embed,evaluate,search,...}`.

User errors print one line (`error: ...`) and exit 2; never a traceback. Every name a line
prints (a path, a label, a message naming a file) goes through `printable`: escaped, never raw.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.cli.add import add_parser as add_add_parser
from core.cli.archive import add_duplicates_parser as add_archive_duplicates_parser
from core.cli.archive import add_parser as add_archive_parser
from core.cli.duplicates import add_listing_options, listing_options
from core.cli.duplicates import add_parser as add_duplicates_parser
from core.cli.printable import printable
from core.cli.project import add_parser as add_project_parser
from core.cli.report import add_parser as add_report_parser
from core.cli.types import positive_float, positive_int, require_run
from core.config import OPTIONS, PRESETS
from core.errors import UserError, one_line

# Every one-line error derives from UserError; an OSError is the environment failing (a
# missing path, a full or read-only disk): one line too, never a traceback.
USER_ERRORS = (UserError, OSError)


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse prints usage + message; we print one line
        sys.stderr.write(f"error: {self.prog}: {printable(message)}\n")
        raise SystemExit(2)


def cmd_demo_data(a: argparse.Namespace) -> int:
    from core.demo.dataset import write_demo_dataset

    s = write_demo_dataset(a.out, per_class=a.per_class, size=a.size, seed=a.seed)
    print(f"wrote {s.n_images} synthetic images ({s.n_duplicates} near-duplicate copies) "
          f"in {len(s.classes)} classes to {printable(s.root)} in {s.seconds:.1f} s")
    return 0


def cmd_demo_workspace(a: argparse.Namespace) -> int:
    from core.runs.workspace import ensure_demo_workspace

    ws = ensure_demo_workspace(a.workspace)
    print(f"workspace {printable(ws.root)}: dataset {printable(ws.dataset_name)} "
          f"({ws.n_images} images, synthetic demo)")
    if a.train:
        from core.jobs.training import start_demo_if_empty
        from core.runs.workspace import Workspace

        job = start_demo_if_empty(Workspace(ws.root))
        if job is not None:
            print(f"the demo model is training in the background (run '{printable(job.name)}', "
                  f"process {job.pid}; log: {printable(job.run_dir / 'train.log')}); Search and "
                  "the Map use it when it is done")
    return 0


def cmd_train(a: argparse.Namespace) -> int:
    from core.config import make_run_config, split_options
    from core.data.dataset import check_dataset_folders

    recipe, runtime = split_options({o.name: getattr(a, o.name) for o in OPTIONS})
    folders = [str(f) for f in check_dataset_folders(a.data)]  # --data, repeated or not
    config = make_run_config(folders[0], a.preset, labels=a.labels, views=a.views,
                             more_data=folders[1:], **recipe)
    from core.runs.pipeline import train_run

    report = train_run(config, a.run, runtime=runtime, progress=sys.stderr.isatty())
    if report is None:  # a non-zero torchrun rank
        return 0
    if a.json:
        print(json.dumps(report.to_dict(), indent=2))
    elif report.state == "stopped":
        print(f"stopped after epoch {report.epochs_done}; run the same command to resume")
    else:
        print(train_summary(report, a.run))
    return 0


def train_summary(report, run: str) -> str:
    """The one line `train` prints for a finished run (its report's figures)."""
    ev = report.evaluation
    same = ev.get("same_patient_p1")  # None where the dataset has no patient with two films
    verified = ev.get("same_patient_verified_p1")
    return (f"trained {report.epochs_done} epochs in {report.train_seconds} s; "
            + (f"test P@5 {ev['precision_at_5']:.3f}, mAP {ev['map']:.3f}, mAP@R {ev['map_at_r']:.3f}"
               if ev.get("precision_at_5") is not None else "no label metrics (the test split has no labels)")
            + (f", same-patient P@1 {same:.3f}" if same is not None else "")
            + (f" ({verified:.3f} re-ranked by shared landmarks)" if None not in (same, verified) else "")
            + f"; {report.n_skipped} files skipped; run: {printable(run)}")


def cmd_embed(a: argparse.Namespace) -> int:
    if a.out is not None or a.data is not None:
        return _embed_out(a)
    paths = require_run(a.run)
    from core.config import RunConfig
    from core.data.dataset import HEADER_CACHE, scan_folders
    from core.data.splits import load_splits
    from core.embed.encoder import Encoder
    from core.files import remove_temps
    from core.run_folder import hold_run_lock
    from core.runs.pipeline import embed_run

    config = RunConfig.load(paths.config)
    dataset = scan_folders(config.folders, options=listing_options(a, a.run, paths.root / HEADER_CACHE))
    samples, splits = load_splits(paths.splits)
    by_path = {s.path: sp for s, sp in zip(samples, splits, strict=True)}
    with hold_run_lock(paths):
        remove_temps(paths.root)
        emb, bad = embed_run(paths, dataset, [by_path.get(s.path, "") for s in dataset.samples],
                             Encoder.from_run(paths.root, a.device, which="best"), sys.stderr.isatty())
    print(json.dumps({"n_images": len(emb), "n_skipped": len(bad), "dim": int(emb.vectors.shape[1])}))
    return 0


def _embed_out(a: argparse.Namespace) -> int:
    """`embed --run RUN [--data DIR] --out OUT`: vectors and items of a folder, for anyone to check."""
    paths = require_run(a.run)
    from core.embed.export import ExportError, embed_folder

    if a.out is None:
        raise ExportError("--data needs --out OUT (embed --run RUN alone re-embeds the run's dataset)")
    data = a.data
    if data is None:  # the run's own dataset
        from core.config import RunConfig

        data = RunConfig.load(paths.config).folders  # every folder of the run
    from core.data.dataset import HEADER_CACHE

    result = embed_folder(a.run, data, a.out, device=a.device, progress=sys.stderr.isatty(),
                          listing=listing_options(a, a.run, paths.root / HEADER_CACHE))
    print(json.dumps({"out": str(result.out), "n_images": result.n_images,
                      "n_skipped": result.n_skipped, "dim": result.dim}))
    return 0


def cmd_evaluate(a: argparse.Namespace) -> int:
    paths = require_run(a.run)
    from core.data.dataset import HEADER_CACHE
    from core.geometry.landmarks import LandmarkVerifier
    from core.retrieval.evaluate import evaluate_run
    from core.run_folder import hold_run_lock

    listing = listing_options(a, a.run, paths.root / HEADER_CACHE)
    with hold_run_lock(paths):  # it writes evaluation.json
        result = evaluate_run(a.run, data=a.data, listing=listing, baselines=not a.no_baselines,
                              progress=sys.stderr.isatty(),
                              include_same_patient=a.include_same_patient,
                              evidence=None if a.no_landmarks else LandmarkVerifier)
    if a.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(format_evaluation(result.to_dict()))
    return 0


def format_evaluation(result: dict) -> str:
    keys = ("precision_at_1", "precision_at_5", "precision_at_10", "map", "map_at_r")
    same = {"precision_at_1": "same-patient P@1", "map": "same-patient mAP",
            "recall_at_5": "same-patient R@5"}
    rows = [("model", result)] + list(result.get("baselines", {}).items())
    header = ("".join(f"{k:>16s}" for k in keys) + "".join(f"{h:>19s}" for h in same.values())
              + f"{'re-ranked P@1':>16s}")
    lines = [f"{'':24s}" + header]
    for name, r in rows:
        sp = r.get("same_patient") or {}
        verified = (sp.get("verified") or {}).get("precision_at_1")
        lines.append(f"{name:24s}" + "".join(f"{r[k]:16.3f}" if r[k] is not None else f"{'-':>16s}" for k in keys)
                     + "".join(f"{sp[k]:19.3f}" if sp.get(k) is not None else f"{'-':>19s}" for k in same)
                     + (f"{verified:16.3f}" if verified is not None else f"{'-':>16s}"))
    n_same = (result.get("same_patient") or {}).get("n_queries", 0)
    lines.append(f"queries {result['n_queries']} ({n_same} with another film of their patient), "
                 f"gallery {result['n_gallery']}: {result['protocol']}")
    if result.get("label_metrics_skipped"):
        lines.append(result["label_metrics_skipped"])
    return "\n".join(lines)


def cmd_search(a: argparse.Namespace) -> int:
    require_run(a.run, checkpoint_ok=True)  # a checkpoint carries its config
    if not Path(a.image).is_file():
        raise FileNotFoundError(f"query image not found: {a.image}")
    from core.retrieval.search import Searcher

    hits = Searcher(a.run, device=a.device).search(Path(a.image), k=a.k)
    if a.json:
        print(json.dumps({"query": a.image, "results": [
            {"rank": h.rank, "path": h.path, "label": h.label, "score": round(h.score, 6)} for h in hits]}))
    else:
        for h in hits:
            print(f"{h.rank:3d}  {h.score:.4f}  {printable(h.label):20s} {printable(h.path)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m core", description="Similar and near-duplicate chest X-rays.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    d = sub.add_parser("demo-data", help="write the synthetic demo dataset")
    d.add_argument("out")
    d.add_argument("--per-class", type=positive_int, default=60)
    d.add_argument("--size", type=positive_int, default=256)
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=cmd_demo_data)

    w = sub.add_parser("demo-workspace", help="create a workspace with the synthetic demo set if none exists")
    w.add_argument("workspace", nargs="?", default="workspace")
    w.add_argument("--train", action="store_true",
                   help="also start the demo model's training in the background, once: not when "
                        "the workspace holds another dataset or any run (`make run` passes it)")
    w.set_defaults(func=cmd_demo_workspace)

    t = sub.add_parser("train", help="train SimCLR, then embed, index and evaluate")
    t.add_argument("--data", required=True, action="append",
                   help="a dataset folder; repeat it to train on several (labelled or not)")
    t.add_argument("--run", required=True)
    t.add_argument("--preset", choices=sorted(PRESETS), default="seed")
    for o in OPTIONS:  # the Train page builds its form from the same list
        kind = {int: positive_int, float: positive_float}.get(o.kind) if o.positive else o.kind
        t.add_argument(o.flag, type=kind, choices=o.choices or None, help=o.help or None)
    t.add_argument("--json", action="store_true", help="print the run report as JSON")
    add_listing_options(t, "auto and frontal, remembered by the run")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("embed", help="re-embed a run's dataset and rebuild its index, or "
                       "write any folder's vectors to --out")
    e.add_argument("--run", required=True)
    e.add_argument("--data", help="a labelled folder to embed with the run's model (needs --out)")
    e.add_argument("--out", help="write OUT/embeddings.npy and OUT/items.csv instead of "
                   "touching the run (--data defaults to the run's dataset)")
    e.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    add_listing_options(e)
    e.set_defaults(func=cmd_embed)

    v = sub.add_parser("evaluate", help="retrieval metrics of a run beside baselines")
    v.add_argument("--run", required=True)
    v.add_argument("--data", help="evaluate on another labelled folder")
    v.add_argument("--include-same-patient", action="store_true",
                   help="let the query patient's other films count (the old protocol)")
    v.add_argument("--json", action="store_true")
    v.add_argument("--no-baselines", action="store_true")
    v.add_argument("--no-landmarks", action="store_true",
                   help="skip re-ranking same-patient results by shared landmarks (same_patient.verified)")
    add_listing_options(v, "the run's, for --data")
    v.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("search", help="nearest neighbours of an image")
    s.add_argument("--run", required=True)
    s.add_argument("--image", required=True)
    s.add_argument("-k", type=positive_int, default=10)
    s.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_search)
    add_project_parser(sub)
    add_duplicates_parser(sub)
    add_add_parser(sub)
    add_archive_parser(sub)
    add_archive_duplicates_parser(sub)
    add_report_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except USER_ERRORS as e:  # bad input, and the environment failing (disk full, read-only)
        sys.stderr.write(f"error: {printable(one_line(e))}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
