"""What an unlabelled archive buys: the development set alone vs the development set + the archive.

`python -m benchmarks.archive [--preset quick] [--seeds 0 1] [--limit N] [--work DIR] [--out FILE]`

For each seed, two runs of one recipe (`train_run`, the project's own pipeline):
(a) trained on `--dev` (../shared/data/cxr) with the project's patient-aware split;
(b) trained on the same development films and split, plus `--archive` (../shared/data/cxr-kermany)
    minus a held-out part: HELD_OUT of its patients, chosen by `--holdout-seed`, none trained on.
Both are scored the same way:
- development test split against all development films, the query's own patient left out:
  P@5, mAP, mAP@R (core.retrieval.metrics.evaluate_retrieval);
- the held-out archive patients, every film against the others: same-patient P@1, mAP,
  recall@5 (core.retrieval.patient_metrics), from the embedding alone and with the nearest
  `DEPTH` re-ranked by shared landmarks (core.geometry.landmarks.LandmarkVerifier), with the
  re-ranking's seconds per query.
Prints a table, writes one JSON line per run (benchmarks/results-<date>-archive.jsonl unless
`--out`). `--limit N` takes at most N films of each collection (whole patients, fixed order):
the small path, for tests.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.common import emit, machine, note, tee_to
from core.config import make_run_config
from core.data.dataset import Dataset, scan_dataset
from core.data.splits import load_splits, save_splits
from core.embed.encoder import Encoder, embed_dataset
from core.geometry.landmarks import LandmarkVerifier
from core.retrieval.evaluate import MAX_VERIFIED_QUERIES
from core.retrieval.metrics import evaluate_retrieval
from core.retrieval.patient_metrics import reranked_same_patient, same_patient_retrieval
from core.run_folder import RunPaths
from core.runs.pipeline import train_run

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "data" / "cxr"
ARCHIVE = ROOT.parent / "shared" / "data" / "cxr-kermany"
HELD_OUT = 0.2  # fraction of the archive's patients never trained on


@dataclass(frozen=True)
class Films:
    """A folder of films (links to the collections' files) with a manifest of labels and patients."""

    root: Path
    n: int


def _patients(dataset: Dataset) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(dataset.samples):
        groups.setdefault(s.patient_id or f"~{s.path}", []).append(i)  # no id: a patient of one film
    return groups


def _whole_patients(dataset: Dataset, limit: int | None, seed: int) -> list[int]:
    """Sample indices of whole patients in a seeded order, at most `limit` films (None: all)."""
    groups = _patients(dataset)
    order = sorted(groups)
    np.random.default_rng(seed).shuffle(order)
    out: list[int] = []
    for p in order:
        if limit is not None and len(out) + len(groups[p]) > limit:
            continue
        out.extend(groups[p])
    return sorted(out)


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)  # no copy where both lie on one file system
    except OSError:
        shutil.copy2(src, dst)


def _write_folder(root: Path, parts: Sequence[tuple[str, Dataset, Sequence[int]]]) -> Films:
    """Link the chosen films of each (prefix, dataset, indices) into `root` with one manifest."""
    if root.exists():
        shutil.rmtree(root)
    rows = []
    for prefix, dataset, indices in parts:
        for i in indices:
            s = dataset.samples[i]
            rel = Path(s.path).parent / f"{prefix}{Path(s.path).name}"
            _link(dataset.absolute(s), root / rel)
            rows.append({"file": rel.as_posix(), "label": s.label, "patient_id": s.patient_id or ""})
    with open(root / "manifest.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["file", "label", "patient_id"])
        w.writeheader()
        w.writerows(rows)
    return Films(root, len(rows))


def prepare(work: Path, dev: Path, archive: Path, limit: int | None, holdout_seed: int
            ) -> tuple[Films, Films, Films]:
    """(development folder, archive-for-training folder, held-out archive folder) under `work`."""
    dev_set, arch_set = scan_dataset(dev), scan_dataset(archive)
    dev_films = _write_folder(work / "dev", [("", dev_set, _whole_patients(dev_set, limit, 0))])
    chosen = _whole_patients(arch_set, limit, holdout_seed)
    groups = _patients(arch_set)
    chosen_patients = sorted({arch_set.samples[i].patient_id or f"~{arch_set.samples[i].path}" for i in chosen})
    rng = np.random.default_rng(holdout_seed)
    held = set(rng.choice(chosen_patients, size=max(1, round(HELD_OUT * len(chosen_patients))),
                          replace=False).tolist())
    held_idx = sorted(i for p in held for i in groups[p])
    train_idx = sorted(set(chosen) - set(held_idx))
    held_films = _write_folder(work / "held-out", [("", arch_set, held_idx)])
    dev_again = scan_dataset(dev_films.root)
    both = _write_folder(work / "dev+archive", [("dev__", dev_again, range(len(dev_again.samples))),
                                                ("archive__", arch_set, train_idx)])
    return dev_films, both, held_films


def _same_split(dev_run: Path, both: Films, run: Path) -> None:
    """Give run (b) the development films' split of run (a); every archive film trains."""
    samples, splits = load_splits(RunPaths(dev_run).splits)
    by_path = {s.path: sp for s, sp in zip(samples, splits, strict=True)}
    dataset = scan_dataset(both.root)
    out = []
    for s in dataset.samples:
        name = Path(s.path).name
        if name.startswith("dev__"):
            out.append(by_path[(Path(s.path).parent / name.removeprefix("dev__")).as_posix()])
        else:
            out.append("train")
    RunPaths(run).root.mkdir(parents=True, exist_ok=True)
    save_splits(RunPaths(run).splits, dataset.samples, out)


def score(run: Path, dev: Films, dev_run: Path, held: Films, rerank_queries: int = MAX_VERIFIED_QUERIES) -> dict:
    """Development test-split label metrics and held-out same-patient metrics of one run."""
    encoder = Encoder.from_run(run, "cpu", which="best")
    dev_set = scan_dataset(dev.root)
    emb, _ = embed_dataset(encoder, dev_set)
    samples, splits = load_splits(RunPaths(dev_run).splits)
    split_of = {s.path: sp for s, sp in zip(samples, splits, strict=True)}
    test = np.asarray([i for i, p in enumerate(emb.paths) if split_of.get(p) == "test" and emb.labels[i]])
    labels = evaluate_retrieval(emb.vectors, emb.labels, test, np.arange(len(emb)), patients=list(emb.patients))
    held_set = scan_dataset(held.root)
    hemb, _ = embed_dataset(encoder, held_set)
    everyone = np.arange(len(hemb))
    plain = same_patient_retrieval(hemb.vectors, list(hemb.patients), everyone, everyone)
    verifier = LandmarkVerifier([held.root / p for p in hemb.paths])
    t = time.perf_counter()
    reranked = reranked_same_patient(hemb.vectors, list(hemb.patients), everyone, everyone, verifier,
                                     verifier.depth, max_queries=rerank_queries)
    rerank_s = time.perf_counter() - t
    return {"dev_test_p5": labels.precision_at_5, "dev_test_map": labels.map,
            "dev_test_map_at_r": labels.map_at_r, "dev_test_queries": int(test.size),
            "held_p1": plain.precision_at_1, "held_map": plain.map, "held_recall5": plain.recall_at_5,
            "held_queries": plain.n_queries, "held_films": len(hemb),
            "held_reranked_p1": reranked.precision_at_1, "held_reranked_map": reranked.map,
            "held_reranked_recall5": reranked.recall_at_5, "reranked_queries": reranked.n_queries,
            "rerank_depth": verifier.depth,
            "rerank_s_per_query": rerank_s / max(reranked.n_queries, 1)}


def run_pair(work: Path, preset: str, seed: int, dev: Films, both: Films, held: Films,
             options: dict, rerank_queries: int = MAX_VERIFIED_QUERIES) -> list[dict]:
    """Train and score (a) dev alone and (b) dev + archive for one seed."""
    rows = []
    dev_run = work / f"runs/{preset}-s{seed}-dev"
    for name, films, run in (("dev", dev, dev_run), ("dev+archive", both, work / f"runs/{preset}-s{seed}-both")):
        if name == "dev+archive" and not RunPaths(run).splits.exists():
            _same_split(dev_run, both, run)
        note(f"archive: training {name} ({films.n} films), {preset}, seed {seed}")
        t = time.time()
        report = train_run(make_run_config(str(films.root), preset, seed=seed, **options), run)
        if report is None or report.state != "finished":  # stopped (SIGTERM): resume by running again
            raise SystemExit(f"stopped while training {run}; run the same command to resume")
        n_train = report.split_counts.get("train", 0)
        scores = score(run, dev, dev_run, held, rerank_queries)
        rows.append({"trained_on": name, "preset": preset, "seed": seed, "n_train": n_train,
                     "train_s": report.train_seconds,
                     "s_per_1000_films": round(1000 * report.train_seconds / max(n_train, 1), 1),
                     "wall_s": round(time.time() - t, 1), **options, **scores})
    return rows


def table(rows: list[dict]) -> str:
    """The rows as a Markdown table."""
    head = ("| trained on | seed | films | dev P@5 | dev mAP | dev mAP@R | held-out P@1 | mAP | R@5 | "
            "P@1 re-ranked | s / 1,000 films |")
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['trained_on']} | {r['seed']} | {r['n_train']} | {r['dev_test_p5']:.3f} | "
                     f"{r['dev_test_map']:.3f} | {r['dev_test_map_at_r']:.3f} | {r['held_p1']:.3f} | "
                     f"{r['held_map']:.3f} | {r['held_recall5']:.3f} | {r['held_reranked_p1']:.3f} | "
                     f"{r['s_per_1000_films']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.archive", description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="quick")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--limit", type=int, default=None, help="at most N films of each collection")
    p.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    p.add_argument("--dev", type=Path, default=DEV)
    p.add_argument("--archive", type=Path, default=ARCHIVE)
    p.add_argument("--holdout-seed", type=int, default=0)
    p.add_argument("--work", type=Path, default=None, help="keep the folders and runs here")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--rerank-queries", type=int, default=MAX_VERIFIED_QUERIES,
                   help="re-rank at most this many held-out queries (evenly spaced; ~0.3 s each on 2 cores)")
    a = p.parse_args(argv)
    for folder in (a.dev, a.archive):
        if not (folder / "manifest.csv").is_file():
            p.error(f"{folder} has no manifest.csv (the data set is not here)")
    out_path = a.out or ROOT / "benchmarks" / f"results-{time.strftime('%Y-%m-%d')}-archive.jsonl"
    work = a.work or Path(tempfile.mkdtemp(prefix="bench-archive-"))
    options = {"epochs": a.epochs} if a.epochs else {}
    with open(out_path, "a", encoding="utf-8") as out:
        tee_to(out)
        m = machine()
        command = "python -m benchmarks.archive " + " ".join(argv if argv is not None else sys.argv[1:])
        emit("machine", m.cores, "cores", command=command.strip(), date=time.strftime("%Y-%m-%d %H:%M"),
             cpu=m.cpu, load_1min=m.load_1min)
        dev, both, held = prepare(work, a.dev, a.archive, a.limit, a.holdout_seed)
        rows = []
        for seed in a.seeds:
            for r in run_pair(work, a.preset, seed, dev, both, held, options, a.rerank_queries):
                rows.append(r)
                emit("archive.run", r["dev_test_map"], "mAP", load_1min=machine().load_1min, **r)
    print(table(rows))
    note(f"runs and folders in {work}; figures appended to {out_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
