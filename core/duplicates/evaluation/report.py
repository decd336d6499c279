"""How well the embedding, the pHash and both together find known duplicates.

`python -m core.duplicates.evaluation.report --run RUN` (or `python -m core duplicates-eval`) prints
precision, recall and F1 of the three detectors, each calibrated the way `auto` does it on
the run's val-split images (target precision 0.99), on three sets:
- cxr real pairs: the dataset's near_duplicates.csv (pairs in one connected component count
  as duplicates), over every pair the detectors mine from the whole dataset;
- cxr synthetic: one copy per edit of every test-split image (seed 1, unlike calibration's 0)
  added to the dataset; pairs with at least one copy count, and the truth is each original
  with its copies (and the copies with each other);
- demo: the synthetic demo set against its duplicates.csv, embedded with the run's model.
The two-stage detector (the combined rule's candidates and every image's nearest neighbours,
checked geometrically) is scored per kind and, on the synthetic copies, per edit
(`core.duplicates.evaluation.pair_scores`).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from core.data.imageio import load_image
from core.duplicates.calibration.auto import auto_calibrate
from core.duplicates.calibration.edits import EDITS
from core.duplicates.calibration.known_pairs import make_copies, singletons
from core.duplicates.candidates import find_pairs
from core.duplicates.evaluation.pair_scores import (
    ScoreRow,
    SyntheticCopies,
    _row,
    interval_row,
    pair_scores,
    synthetic_verified_rows,
    verified_rows,
    verify_rule_for,
)
from core.duplicates.hashing import HashTable, hash_files, hash_pixels
from core.duplicates.neighbours import connected_groups
from core.duplicates.rules import Rule
from core.duplicates.search import dataset_embeddings, output_dir
from core.embed.embeddings import Embeddings


def flagged_pairs(emb: Embeddings, hashes: HashTable, rule: Rule, k: int = 10) -> set[tuple[int, int]]:
    """Pairs the rule flags among those mined (exact copies count only if the rule flags them)."""
    pairs = find_pairs(emb, hashes, rule, k=k, near_misses=False)
    keep = rule.flags(np.array([p.score for p in pairs]), np.array([p.hash_distance for p in pairs]))
    return {(min(p.i, p.j), max(p.i, p.j)) for p, f in zip(pairs, keep, strict=True) if f}


def closure(n: int, pairs: list[tuple[int, int]]) -> set[tuple[int, int]]:
    """Every pair inside the connected components of `pairs`."""
    out = set()
    for group in connected_groups(n, pairs):
        out |= {(a, b) for x, a in enumerate(group) for b in group[x + 1:]}
    return out


def _listed_pairs(csv_path: Path, paths: list[str]) -> list[tuple[int, int]]:
    row = {p: i for i, p in enumerate(paths)}
    with csv_path.open(newline="", encoding="utf-8") as f:
        return [(row[r["file_a"]], row[r["file_b"]]) for r in csv.DictReader(f)
                if r["file_a"] in row and r["file_b"] in row]


@dataclass(frozen=True)
class DuplicateEvaluation:
    """What `duplicates-eval` reports: one row per (set, detector), and each set's rules in words."""

    run: str
    rows: list[ScoreRow] = field(default_factory=list)
    rules: dict[str, dict[str, str]] = field(default_factory=dict)

    def row(self, set_name: str, detector: str) -> ScoreRow | None:
        """The row of one detector on one set, or None when that set was not evaluated."""
        return next((r for r in self.rows if r.set == set_name and r.detector == detector), None)

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "rows": [r.to_dict() for r in self.rows], "rules": self.rules}


def evaluate_duplicates(run: str | Path, cxr: str | Path | None = "../shared/data/cxr",
                        demo: str | Path | None = None, device: str = "cpu",
                        k: int = 10) -> DuplicateEvaluation:
    """Run every evaluation and return the table (rows of set, detector and scores).

    Args:
        run: a run folder (ideally trained on `cxr`).
        cxr: folder with near_duplicates.csv; skipped when missing.
        demo: a demo set folder with duplicates.csv (None: skip the demo rows).
        device: for the model.
        k: neighbours per image.

    Returns:
        DuplicateEvaluation with one row per (set, detector).
    """
    run = Path(run)
    rows: list[ScoreRow] = []
    rules: dict[str, dict[str, str]] = {}
    if cxr is not None and (Path(cxr) / "near_duplicates.csv").is_file():
        cxr = Path(cxr).resolve()
        own = Path(_run_data(run)).resolve() == cxr
        out = output_dir(run, None if own else cxr)
        emb, root = dataset_embeddings(run, None if own else cxr, out, device)
        hashes = hash_files(root, emb.paths, cache=out / "hashes.csv")
        val = [i for i, s in enumerate(emb.splits) if s == "val"] or None
        cal = auto_calibrate(run, emb, hashes, root, val, device=device)
        det = cal.rules()
        rules["cxr"] = {name: r.describe() for name, r in det.items()}
        truth = closure(len(emb), _listed_pairs(root / "near_duplicates.csv", emb.paths))
        for name, rule in det.items():
            rows.append(_row("cxr real pairs", name, pair_scores(flagged_pairs(emb, hashes, rule, k), truth)))
        vrule, vcal = verify_rule_for(out, emb, hashes, root, val)
        rules["cxr"]["verified"] = f"{det['combined'].describe()}, or a verified copy; {vrule.describe()}"
        rows += verified_rows("cxr real pairs", emb, hashes, root, out, det["combined"], vrule, truth, k)
        test = [i for i, s in enumerate(emb.splits) if s == "test"] or list(range(len(emb)))
        synth_rows, copies = _synthetic_rows(run, emb, hashes, root, singletons(hashes, test), det, device, k)
        rows += synth_rows + synthetic_verified_rows(copies, root, out, det["combined"], vrule, k)
        rows += [interval_row(vcal)] if vcal else []
    if demo is not None:
        rows_demo, rules_demo = _demo_rows(run, Path(demo), device, k)
        rows += rows_demo
        rules["demo"] = rules_demo
    return DuplicateEvaluation(str(run), rows, rules)


def _run_data(run: Path) -> str:
    from core.config import RunConfig
    from core.run_folder import RunPaths

    return RunConfig.load(RunPaths(run).config).data


def _synthetic_rows(run: Path, emb: Embeddings, hashes: HashTable, root: Path, originals: list[int],
                    det: dict[str, Rule], device: str, k: int) -> tuple[list[ScoreRow], SyntheticCopies]:
    """Add copies of `originals` to the dataset and score pairs that involve a copy."""
    from core.embed.encoder import Encoder

    encoder = Encoder.from_run(run, device)
    rng = np.random.default_rng(1)
    pixels, family, edits = [], [], []
    for i in originals:
        copies = make_copies(load_image(root / emb.paths[i]).pixels, rng, EDITS)
        pixels += copies
        family += [i] * len(copies)
        edits += list(EDITS)
    n = len(emb)
    h = [hash_pixels(p) for p in pixels]
    big = Embeddings(emb.paths + [f"~copy/{x}" for x in range(len(pixels))],
                     emb.labels + [""] * len(pixels), [""] * (n + len(pixels)),
                     emb.patients + [""] * len(pixels), np.concatenate([emb.vectors, encoder.embed(pixels)]))
    big_hashes = replace(hashes, paths=big.paths,
                         phash=np.concatenate([hashes.phash, np.array([x.phash for x in h], np.uint64)]),
                         digests=hashes.digests + [x.digest for x in h],
                         width=np.concatenate([hashes.width, [x.width for x in h]]),
                         height=np.concatenate([hashes.height, [x.height for x in h]]))
    members: dict[int, list[int]] = {}
    for x, i in enumerate(family):
        members.setdefault(i, [i]).append(n + x)
    truth = {(a, b) for g in members.values() for y, a in enumerate(g) for b in g[y + 1:]}
    rows = []
    for name, rule in det.items():
        flagged = {p for p in flagged_pairs(big, big_hashes, rule, k) if p[1] >= n}  # involves a copy
        rows.append(_row("cxr synthetic copies", name, pair_scores(flagged, truth)))
    return rows, SyntheticCopies(big, big_hashes, emb, family, edits, pixels)


def _demo_rows(run: Path, demo: Path, device: str, k: int) -> tuple[list[ScoreRow], dict[str, str]]:
    out = output_dir(run, demo)
    emb, root = dataset_embeddings(run, demo, out, device)
    hashes = hash_files(root, emb.paths, cache=out / "hashes.csv")
    cal = auto_calibrate(run, emb, hashes, root, None, device=device)
    det = cal.rules()
    truth = closure(len(emb), _listed_pairs(root / "duplicates.csv", emb.paths))
    rows = [_row("demo", name, pair_scores(flagged_pairs(emb, hashes, rule, k), truth))
            for name, rule in det.items()]
    return rows, {name: r.describe() for name, r in det.items()}


def format_table(table: DuplicateEvaluation) -> str:
    """The evaluation as a Markdown table (for the README), then the calibrated rules."""
    lines = ["| set | detector | precision | recall | F1 | flagged | true pairs |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in table.rows:
        pci = " [{:.3f}, {:.3f}]".format(*r.precision_ci) if r.precision_ci else ""
        rci = " [{:.3f}, {:.3f}]".format(*r.recall_ci) if r.recall_ci else ""
        lines.append(f"| {r.set} | {r.detector} | {r.precision:.3f}{pci} | {r.recall:.3f}{rci} | "
                     f"{r.f1:.3f} | {r.n_flagged} | {r.n_true} |")
    for name, rules in table.rules.items():
        lines.append("")
        lines.append(f"Rules calibrated for {name} (target precision 0.99 on synthetic copies):")
        lines += [f"- {det}: {text}" for det, text in rules.items()]
    return "\n".join(lines)
