"""What a run's report holds, gathered from the run folder as plain data.

Summary (films, patients, labels, model and preset) from items.csv and config.json; the
duplicate groups and leakage from the last duplicate search (duplicates.json), or, without
one, the patients across splits from the embedding's patient ids; the quality lists
(`core.quality`, measuring films not yet measured); the evaluation's metrics beside its
baselines (evaluation.json, as `evaluate` saves it).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.config import RunConfig
from core.data.patient_ids import display_patient
from core.duplicates.candidates import CandidatePair
from core.duplicates.leakage import LeakageReport, leakage_report
from core.duplicates.search import DuplicateResult, load_result
from core.embed.embeddings import Embeddings
from core.quality.lists import RunQuality, run_quality
from core.retrieval.evaluate import Evaluation, load_evaluation
from core.run_folder import RunPaths

QUALITY_LIMIT = 30  # films per quality list in a report


@dataclass(frozen=True)
class Summary:
    """The run in a few figures."""

    run: str
    dataset: str  # the dataset folder's name (not its path: the report leaves the machine)
    n_films: int
    n_patients: int  # distinct patient ids (0: none known)
    labels: dict[str, int]  # films per label, "" (unlabelled) left out
    n_unlabelled: int
    splits: dict[str, int]
    arch: str
    preset: str
    image_size: int
    epochs: int
    generated: str  # UTC time the report was made


@dataclass(frozen=True)
class ReportContents:
    """Everything a report shows; `duplicates` None when the run has no duplicate search."""

    summary: Summary
    duplicates: DuplicateResult | None
    leakage: LeakageReport
    patient_names: dict[str, str]  # patient id -> keyed name (`display_patient`), never the id
    quality: RunQuality
    evaluation: Evaluation | None
    films: dict[str, tuple[str, str]]  # path -> (label, split), for the captions

    @property
    def groups(self) -> list[tuple[list[str], list[CandidatePair]]]:
        """Each flagged duplicate group's films and the flagged pairs inside it, largest first."""
        if self.duplicates is None:
            return []
        flagged = self.duplicates.flagged
        out = []
        for members in self.duplicates.groups:
            inside = set(members)
            out.append((list(members), [p for p in flagged if p.a in inside and p.b in inside]))
        return out


def summary_of(run_dir: Path, emb: Embeddings, config: RunConfig) -> Summary:
    """The Summary of a run from its films (items.csv) and config."""
    labels = Counter(label for label in emb.labels if label)
    return Summary(run_dir.name, Path(config.data).name, len(emb), len({p for p in emb.patients if p}),
                   dict(sorted(labels.items())), sum(not label for label in emb.labels),
                   dict(sorted(Counter(s or "none" for s in emb.splits).items())),
                   config.model.arch, config.preset, config.train.image_size, config.train.epochs,
                   time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))


def gather(run_dir: str | Path, key: bytes, roots: tuple[Path, ...] = (),
           progress: Callable[[int, int], None] | None = None) -> ReportContents:
    """The contents of a run's report.

    Args:
        run_dir: the run folder.
        key: the workspace's patient key: patients are named `display_patient(id, key)`.
        roots: the allowed roots films added from elsewhere may lie in.
        progress: (done, total) while films without image statistics are measured.

    Raises:
        RunError, ConfigError: the run's embeddings, config or duplicates.json are missing or
            damaged (one line).
    """
    paths = RunPaths(Path(run_dir))
    emb = Embeddings.load(paths.root, paths)
    config = RunConfig.load(paths.config)
    duplicates = load_result(paths.root)
    leakage = duplicates.leakage if duplicates is not None else leakage_report(emb, [])
    names = {leak.patient: display_patient(leak.patient, key) for leak in leakage.patient_leaks}
    quality = run_quality(paths.root, roots, measure=True, progress=progress, limit=QUALITY_LIMIT)
    films = {p: (label, split) for p, label, split in zip(emb.paths, emb.labels, emb.splits, strict=True)}
    return ReportContents(summary_of(paths.root, emb, config), duplicates, leakage, names, quality,
                          load_evaluation(paths.root), films)
