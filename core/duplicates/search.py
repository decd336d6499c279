"""One duplicate search over a run's dataset (or another folder): calibrate, mine, save, reload.

Files written to the output folder (the run folder, or `run/other-data/<name>` for --data):
    duplicates.json   rule, estimates, every candidate pair, groups, leakage report
    pairs.csv         the candidate pairs, one a row
    groups.csv        group,path for the flagged groups
    calibration.json  the `auto` calibration with its known pairs (for the histograms)
    hashes.csv        pHash cache, keyed by path, mtime and size
    dicom-headers.csv DICOM header cache (SOPInstanceUID: one instance twice is an exact pair)
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core.config import RunConfig
from core.data.dataset import HEADER_CACHE, ListingOptions, scan_dataset
from core.data.dicom_headers import read_headers
from core.duplicates.calibration.auto import AutoCalibration, auto_calibrate
from core.duplicates.calibration.thresholds import precision_recall
from core.duplicates.calibration.verification import Interval
from core.duplicates.candidates import (
    DEFAULT_HASH_THRESHOLD,
    DEFAULT_K,
    CandidatePair,
    duplicate_groups,
    find_pairs,
)
from core.duplicates.hashing import hash_files
from core.duplicates.leakage import LeakageReport, PatientLeak, leakage_report
from core.duplicates.proof import DEFAULT_FLOOR, DEFAULT_VERIFY_K, geometric_stage
from core.duplicates.rules import (
    DEFAULT_TARGET,
    CalibrationError,
    Rule,
    VerifyRule,
    parse_threshold,
)
from core.embed.embeddings import Embeddings
from core.files import atomic_write_csv, atomic_write_json, read_json
from core.run_folder import RunError, RunPaths, hold_run_lock

CALIBRATION = "calibration.json"


@dataclass(frozen=True)
class DuplicateResult:
    """A finished duplicate search: the rule used, its estimates, pairs, groups and leakage."""

    out_dir: Path
    run: Path
    data_root: Path
    method: str  # auto | fixed
    rule: Rule
    estimated_precision: float | None
    estimated_recall: float | None
    n_images: int
    pairs: list[CandidatePair]  # flagged pairs and unflagged near misses
    groups: list[list[str]]
    leakage: LeakageReport
    verify_rule: VerifyRule = VerifyRule()

    @property
    def flagged(self) -> list[CandidatePair]:
        """The pairs the rule calls duplicates (near misses left out)."""
        return [p for p in self.pairs if p.flagged]

    def contract(self) -> dict[str, Any]:
        """The `duplicates --json` object (a documented contract: keys do not change)."""
        flagged = self.flagged
        return {
            "threshold": round(self.rule.threshold, 6),
            "estimated_precision": _round(self.estimated_precision),
            "estimated_recall": _round(self.estimated_recall),
            "n_pairs": len(flagged), "n_groups": len(self.groups),
            "n_cross_split": sum(p.cross_split for p in flagged),
            "pairs": [{"a": p.a, "b": p.b, "score": round(p.score, 6),
                       "hash_distance": p.hash_distance, "cross_split": p.cross_split,
                       "kind": p.kind, "inliers": p.inliers}
                      for p in flagged],
        }


def output_dir(run_dir: str | Path, data: str | Path | None = None) -> Path:
    """Where a search writes: the run folder, or run/other-data/<name>-<hash> for another folder."""
    run = Path(run_dir)
    if data is None:
        return run
    root = Path(data).expanduser().resolve()
    tag = hashlib.sha1(str(root).encode()).hexdigest()[:8]
    return run / "other-data" / f"{root.name}-{tag}"


def run_duplicates(run_dir: str | Path, threshold: str | float = "auto", *,
                   data: str | Path | None = None, k: int = DEFAULT_K,
                   target: float = DEFAULT_TARGET, n_heldout: int = 60, seed: int = 0,
                   device: str = "cpu", progress: bool = False, verify_k: int = DEFAULT_VERIFY_K,
                   floor: float = DEFAULT_FLOOR, workers: int = 0,
                   listing: ListingOptions | None = None) -> DuplicateResult:
    """Find the near-duplicates of a run's dataset (or of `data`) and save them.

    Args:
        run_dir: a trained run folder.
        threshold: 'auto' (calibrated on synthetic copies of held-out images) or a cosine.
        data: another image folder, embedded with the run's model.
        k: neighbours per image.
        target: precision the auto threshold must reach.
        n_heldout: held-out images copied for calibration.
        seed: seeds the choice of held-out images and the copies.
        device: 'cpu', 'cuda' or 'auto' for the model.
        progress: show progress bars.
        verify_k: neighbours per image checked geometrically (`core.duplicates.proof`).
        floor: lowest cosine of a pair checked geometrically.
        workers: processes for features and verification (0: one per core).
        listing: labels and views for `data` (its header cache is the output folder's).

    Returns:
        The DuplicateResult (also written to the output folder).

    Raises:
        RunError, DatasetError, CalibrationError: one-line user errors.
    """
    run = Path(run_dir)
    paths = RunPaths(run)
    if not paths.config.is_file():
        raise RunError(f"not a run folder (no config.json): {run}")
    fixed = parse_threshold(threshold)
    if data is not None:  # writes under run/other-data/: the run's own files are only read
        return _search(run, fixed, data, k, target, n_heldout, seed, device, progress,
                       verify_k, floor, workers, listing)
    # The run's duplicates.json is also written by `add` (and rows move with `embed`): every
    # writer holds the run's lock, so none overwrites another's pairs.
    with hold_run_lock(paths, exists=True):
        return _search(run, fixed, None, k, target, n_heldout, seed, device, progress,
                       verify_k, floor, workers, listing)


def _search(run: Path, fixed: float | None, data: str | Path | None, k: int, target: float,
            n_heldout: int, seed: int, device: str, progress: bool, verify_k: int, floor: float,
            workers: int, listing: ListingOptions | None = None) -> DuplicateResult:
    out = output_dir(run, data)
    listing = dataclasses.replace(listing or ListingOptions(), header_cache=out / HEADER_CACHE)
    emb, data_root = dataset_embeddings(run, data, out, device, progress, listing)
    if len(emb) < 2:
        raise CalibrationError(f"{data_root} has fewer than two readable images")
    hashes = hash_files(data_root, emb.paths, cache=out / "hashes.csv")
    headers = read_headers(data_root, emb.paths, cache=out / HEADER_CACHE)  # cached: no re-read
    instances = [headers[p].sop_uid if p in headers else "" for p in emb.paths]
    if fixed is None:
        heldout = [i for i, s in enumerate(emb.splits) if s != "train"] if data is None else None
        cal = auto_calibrate(run, emb, hashes, data_root, heldout, target=target,
                             n_heldout=n_heldout, seed=seed, device=device)
        calibration = cal.to_dict()
        rule, method = cal.rule.rule, "auto"
        precision, recall = cal.rule.precision, cal.rule.recall
    else:
        heldout, calibration = None, None
        rule, method = Rule(fixed, DEFAULT_HASH_THRESHOLD), "fixed"
        precision, recall = _estimate(out / CALIBRATION, rule)
    pairs = find_pairs(emb, hashes, rule, k=k, instances=instances)
    saved = None if fixed is None else (read_json(out / CALIBRATION, default=None) or {}).get("verification")
    pairs, verify_rule, verification = geometric_stage(
        out, emb, hashes, data_root, pairs, heldout,
        None if fixed is None else VerifyRule(**saved["rule"]) if saved else VerifyRule(),
        target=target, seed=seed, k=verify_k, floor=floor, workers=workers)
    if calibration is not None:
        atomic_write_json(out / CALIBRATION, calibration | {"verification": verification})
    groups = [[emb.paths[r] for r in g] for g in duplicate_groups(len(emb), pairs)]
    result = DuplicateResult(out, run, data_root, method, rule, precision, recall, len(emb),
                             pairs, groups, leakage_report(emb, pairs), verify_rule)
    save_result(result)
    return result


def dataset_embeddings(run: Path, data: str | Path | None, out: Path, device: str = "cpu",
                       progress: bool = False,
                       listing: ListingOptions | None = None) -> tuple[Embeddings, Path]:
    """The run's own embeddings, or another folder embedded with its model.

    Args:
        run: run folder.
        data: another image folder, or None for the run's own dataset.
        out: where another folder's embeddings are cached (reused while the checkpoint is older).
        device: for the model; progress: show a progress bar.
        listing: how `data` is listed (labels, views, header cache).

    Returns:
        (embeddings, dataset root).
    """
    paths = RunPaths(run)
    if data is None:
        if not paths.embeddings.is_file() or not paths.items.is_file():
            raise RunError(f"{run} has no embeddings yet (training not finished?)")
        config = RunConfig.load(paths.config)
        return Embeddings.load(run), Path(config.data)
    from core.embed.encoder import Encoder, embed_dataset

    dataset = scan_dataset(data, options=listing)
    cached = RunPaths(out)
    checkpoint = paths.model  # the checkpoint of the served set, which load_run_model uses
    if cached.embeddings.is_file() and cached.items.is_file() and checkpoint.is_file() \
            and cached.embeddings.stat().st_mtime > checkpoint.stat().st_mtime:
        emb = Embeddings.load(out)
        if emb.paths == [s.path for s in dataset.samples]:
            return emb, dataset.root
    emb, _ = embed_dataset(Encoder.from_run(run, device), dataset, progress=progress)
    out.mkdir(parents=True, exist_ok=True)
    emb.save(out)
    return emb, dataset.root


def _estimate(calibration: Path, rule: Rule) -> tuple[float | None, float | None]:
    """Precision and recall of a fixed rule on the known pairs of an earlier auto calibration."""
    saved = _read_calibration(calibration)
    if saved is None:
        return None, None
    k = saved.known
    pos, neg = rule.flags(k.pos_score, k.pos_hash), rule.flags(k.neg_score, k.neg_hash)
    return precision_recall(pos, neg) if len(pos) else (None, None)


def _round(x: float | None) -> float | None:
    return None if x is None else round(float(x), 6)


def save_result(result: DuplicateResult) -> None:
    """Write duplicates.json, pairs.csv and groups.csv, each atomically."""
    out = result.out_dir
    leak = result.leakage
    doc = {
        "created": time.time(), "run": str(result.run), "data": str(result.data_root),
        "method": result.method, "rule": asdict(result.rule),
        "verify_rule": asdict(result.verify_rule),
        "estimated_precision": _round(result.estimated_precision),
        "estimated_recall": _round(result.estimated_recall), "n_images": result.n_images,
        "pairs": [p.to_dict() | {"i": p.i, "j": p.j} for p in result.pairs],
        "groups": result.groups,
        "leakage": {"n_patients_across_splits": leak.n_patients_across_splits,
                    "patient_leaks": [asdict(x) for x in leak.patient_leaks]},
    }
    atomic_write_json(RunPaths(out, generation=None).duplicates, doc)
    fields = ["a", "b", "score", "hash_distance", "exact", "cross_split", "same_patient", "flagged",
              "kind", "inliers", "agreement"]
    atomic_write_csv(out / "pairs.csv", fields, [p.to_dict() for p in result.pairs])
    atomic_write_csv(out / "groups.csv", ["group", "path"], [
        (g, path) for g, members in enumerate(result.groups, 1) for path in members])


def follow_rows(result: DuplicateResult, paths: list[str]) -> DuplicateResult:
    """The search with its pairs' rows (and groups) re-pointed at `paths`, the served rows.

    Rows move when a run is re-embedded (`embed`, `train`) or grows (`add`); a pair names its
    films by path, so its rows follow them. A pair whose film is no longer served keeps its
    place in the list (its verdicts are the reviewers') with rows -1, outside every group.
    """
    at = {p: r for r, p in enumerate(paths)}
    pairs = [dataclasses.replace(p, i=at.get(p.a, -1), j=at.get(p.b, -1)) for p in result.pairs]
    served = [p for p in pairs if p.i >= 0 and p.j >= 0]
    groups = [[paths[r] for r in g] for g in duplicate_groups(len(paths), served)]
    return dataclasses.replace(result, pairs=pairs, groups=groups, n_images=len(paths))


def resave_rows(run_dir: str | Path, paths: list[str]) -> None:
    """Re-point the run's saved search at the served rows `paths` (the caller holds the run's
    lock); nothing to do when the run has no search."""
    result = load_result(run_dir)
    if result is not None:
        save_result(follow_rows(result, paths))


def load_result(run_dir: str | Path, data: str | Path | None = None) -> DuplicateResult | None:
    """The last saved search of a run (or of `data` with that run), None if there is none.

    The one reader of duplicates.json. Raises RunError (one line) for a damaged file.
    """
    out = output_dir(run_dir, data)
    path = RunPaths(out, generation=None).duplicates
    if not path.exists():
        return None
    damaged = f"{path} is damaged; run the duplicate search again"
    doc = read_json(path, default=None)  # None: not JSON, empty, or unreadable
    if not isinstance(doc, dict):
        raise RunError(damaged)
    try:
        return _result_from_doc(out, doc)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise RunError(damaged) from None


def _result_from_doc(out: Path, doc: dict[str, Any]) -> DuplicateResult:
    pairs = [CandidatePair(p["a"], p["b"], p["i"], p["j"], p["score"], p["hash_distance"],
                           p["exact"], p["cross_split"], p["same_patient"], p["flagged"],
                           p.get("kind", ""), p.get("inliers"), p.get("agreement"))
             for p in doc["pairs"]]
    leak = doc.get("leakage", {})
    leakage = LeakageReport([p for p in pairs if p.flagged and p.cross_split],
                            [PatientLeak(**x) for x in leak.get("patient_leaks", [])],
                            int(leak.get("n_patients_across_splits", 0)))
    rule = Rule(**{k: v for k, v in doc["rule"].items() if k in Rule.__dataclass_fields__})
    return DuplicateResult(out, Path(doc["run"]), Path(doc["data"]), doc["method"], rule,
                           doc["estimated_precision"], doc["estimated_recall"], doc["n_images"],
                           pairs, doc["groups"], leakage, VerifyRule(**doc.get("verify_rule", {})))


def load_calibration(run_dir: str | Path, data: str | Path | None = None) -> AutoCalibration | None:
    """The saved auto calibration (summary and known pairs); None if there is none or it is
    not one this version can read (the next 'auto' search writes it again)."""
    return _read_calibration(output_dir(run_dir, data) / CALIBRATION)


def _read_calibration(path: Path) -> AutoCalibration | None:
    saved = read_json(path, default=None)
    try:
        return AutoCalibration.from_dict(saved) if isinstance(saved, dict) else None
    except (KeyError, TypeError, ValueError):
        return None


@dataclass(frozen=True)
class CopyEstimate:
    """How well the geometric check finds copies, as calibrated: 95 % bootstrap intervals.

    prevalence: the share of copies among candidate pairs the precision is stated for.
    """

    prevalence: float
    precision: Interval
    recall: Interval
    recall_by_edit: dict[str, Interval]


def copy_estimate(result: DuplicateResult) -> CopyEstimate | None:
    """The calibration behind `result`'s verification rule; None without one (a rule given by
    hand, or a calibration made for another rule)."""
    saved = (read_json(result.out_dir / CALIBRATION, default=None) or {}).get("verification")
    try:
        if not saved or VerifyRule(**saved["rule"]) != result.verify_rule:
            return None
        return CopyEstimate(float(saved["prevalence"]), Interval(**saved["precision"]),
                            Interval(**saved["recall"]),
                            {k: Interval(**v) for k, v in saved.get("recall_by_edit", {}).items()})
    except (KeyError, TypeError, ValueError):
        return None
