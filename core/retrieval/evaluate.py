"""Retrieval quality of a run, with baselines measured by the same evaluator."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.config import ModelConfig
from core.data.added_films import read_added
from core.data.dataset import ListingOptions, scan_dataset
from core.data.imageio import ImageReadError, read_gray
from core.device import resolve_device, resolve_precision
from core.embed.embeddings import Embeddings, l2_normalize
from core.embed.encoder import Encoder, embed_dataset
from core.files import atomic_write_json, read_json
from core.model.network import SimCLRModel, build_model, imagenet_weights_available
from core.model.transforms import eval_view
from core.retrieval.metrics import NoRelevantItems, RetrievalScores, evaluate_retrieval
from core.retrieval.patient_metrics import (
    PatientEvidence,
    reranked_same_patient,
    same_patient_retrieval,
)
from core.run_folder import RunPaths

PROTOCOL_RUN = ("queries = test split; gallery = every other image of the dataset; "
                "relevant = same label; the query itself never counts")
PROTOCOL_DATA = ("queries = every image of the folder; gallery = all the others; "
                 "relevant = same label; the query itself never counts")
EXCLUSION = "; the query patient's other films are left out of its gallery"
SAME_PATIENT = ("same_patient: relevant = another film of the query's patient, for queries "
                "whose patient has one in the gallery")
VERIFIED = "; same_patient.verified: the embedding's top {depth} re-ranked by {method}"
LONE = "no labelled query has another film of its label in the gallery"
MAX_VERIFIED_QUERIES = 200  # re-ranking costs ~0.3 s a query on 2 cores: a sample beyond this


@dataclass(frozen=True)
class Evaluation:
    """What `evaluate_run` hands back; `to_dict()` is evaluation.json and `evaluate --json`.

    `same_patient` (and each baseline's) is the same-patient retrieval block
    (`SamePatientScores.to_dict()`); `excludes_same_patient` says whether the query's own
    patient's other films were left out of its gallery for the label metrics. Label metrics
    need labels: where no query has one (an unlabelled folder), `scores` is
    `RetrievalScores.absent` (its metrics None) and `label_metrics_skipped` says why, in one line.
    """

    scores: RetrievalScores
    protocol: str
    data: str
    baselines: dict[str, RetrievalScores] | None = None  # None: baselines not asked for
    same_patient: dict[str, Any] | None = None
    excludes_same_patient: bool = False
    baseline_same_patient: dict[str, dict[str, Any]] | None = None
    label_metrics_skipped: str = ""  # why `scores` holds no label metrics ("" when it does)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = self.scores.to_dict()
        if self.label_metrics_skipped:
            out["label_metrics_skipped"] = self.label_metrics_skipped
        if self.same_patient is not None:
            out["same_patient"] = self.same_patient
        out["excludes_same_patient"] = self.excludes_same_patient
        out["protocol"] = self.protocol
        out["data"] = self.data
        if self.baselines is not None:
            same = self.baseline_same_patient or {}
            out["baselines"] = {name: {**s.to_dict(), **({"same_patient": same[name]} if name in same else {})}
                                for name, s in self.baselines.items()}
        return out

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Evaluation:
        """Read back what `to_dict` wrote. Raises KeyError, TypeError, ValueError otherwise."""
        baselines = d.get("baselines")
        return Evaluation(RetrievalScores.from_dict(d), str(d.get("protocol", "")), str(d.get("data", "")),
                          None if baselines is None else
                          {str(k): RetrievalScores.from_dict(v) for k, v in baselines.items()},
                          d.get("same_patient"), bool(d.get("excludes_same_patient", False)),
                          None if baselines is None else
                          {str(k): v["same_patient"] for k, v in baselines.items() if "same_patient" in v},
                          str(d.get("label_metrics_skipped") or ""))


def load_evaluation(run_dir: str | Path) -> Evaluation | None:
    """The run's saved evaluation.json; None when it is missing or not readable."""
    saved = read_json(RunPaths(Path(run_dir)).evaluation, default=None)
    try:
        return Evaluation.from_dict(saved) if isinstance(saved, dict) else None
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def pixel_vectors(files: list[Path], size: int = 32) -> np.ndarray:
    """The raw-pixel baseline: each image resized to size x size, flattened, L2-normalised."""
    rows = []
    for f in files:
        try:
            rows.append(eval_view(read_gray(f), size).flatten().numpy())
        except (ImageReadError, OSError):
            rows.append(np.zeros(size * size, np.float32))
    return l2_normalize(np.stack(rows))  # (N, size*size)


def _encoder_vectors(model_cfg: ModelConfig, files: list[Path], image_size: int, seed: int,
                     progress: bool) -> np.ndarray:
    device = resolve_device("auto")
    torch.manual_seed(seed)
    model: SimCLRModel = build_model(model_cfg).to(device).to(memory_format=torch.channels_last)
    encoder = Encoder(model.eval(), image_size, device, resolve_precision("auto", device))
    vectors, bad = embed_dataset(encoder, files, progress=progress)
    out = np.zeros((len(files), vectors.shape[1]), np.float32)  # unreadable files: zero rows
    out[[i for i in range(len(files)) if i not in bad]] = vectors
    return out


def _score(vectors: np.ndarray, labels: list[str], queries: np.ndarray, patients: list[str],
           exclude: bool, evidence: PatientEvidence | None) -> tuple[RetrievalScores, dict[str, Any]]:
    """Label metrics (the query's patient left out when `exclude`) and the same-patient block.

    Only queries with a label ("" = unknown) are scored by label; with none (or none with a
    relevant film) the label metrics are `RetrievalScores.absent`. With `evidence`, the block
    holds `verified`: the same-patient scores once each query's nearest `evidence.depth`
    films are re-ranked by it.
    """
    gallery = np.arange(len(labels))
    labelled = np.asarray([i for i in queries if labels[i]], dtype=np.int64)
    try:
        scores = (evaluate_retrieval(vectors, labels, labelled, gallery,
                                     patients=patients if exclude else None)
                  if labelled.size else RetrievalScores.absent(gallery.size))
    except NoRelevantItems:
        scores = RetrievalScores.absent(gallery.size)
    same = same_patient_retrieval(vectors, patients, queries, gallery).to_dict()
    if evidence is not None and same["n_queries"]:
        verified = reranked_same_patient(vectors, patients, queries, gallery, evidence, evidence.depth,
                                         max_queries=MAX_VERIFIED_QUERIES)
        same["verified"] = {**verified.to_dict(), "n_eligible": same["n_queries"],
                            "depth": evidence.depth, "method": evidence.method}
    return scores, same


def evaluate_run(run_dir: str | Path, data: str | Path | None = None, baselines: bool = True,
                 progress: bool = False, include_same_patient: bool = False,
                 evidence: Callable[[list[Path]], PatientEvidence] | None = None,
                 listing: ListingOptions | None = None) -> Evaluation:
    """P@1/5/10, mAP, mAP@R (overall and per class) of a run, beside baselines.

    Without `data`: the run's test split queries every other image of its dataset.
    With `data`: every image of that folder queries all the others. Images without a label
    query no label metric; with none labelled, the label metrics are absent
    (`Evaluation.label_metrics_skipped` says why) and same-patient retrieval is still scored.
    Where patient ids exist, each query's own patient's other films leave its gallery
    (`include_same_patient=True` keeps them), and a `same_patient` block scores how well those
    films are found. Baselines (raw 32x32 pixels, a random-init encoder, ImageNet weights when
    cached) are measured the same way. `evidence`, given the dataset's files, makes the
    evidence that two films are one patient (e.g. `core.geometry.landmarks.LandmarkVerifier`);
    with it, each same-patient block also holds `verified` (see `_score`).
    """
    paths = RunPaths(Path(run_dir))
    encoder = Encoder.from_run(paths.root)
    config = encoder.config
    if data is None:
        emb = _dataset_rows(Embeddings.load(paths.root), paths)
        root = Path(config.data)
        files = [root / p for p in emb.paths]
        queries, protocol = emb.subset("test"), PROTOCOL_RUN
        if len(queries) == 0:
            queries = np.arange(len(emb))
            protocol = PROTOCOL_DATA + " (the run has no test split)"
    else:
        dataset = scan_dataset(data, options=listing)  # --labels/--views for `data`
        emb, _ = embed_dataset(encoder, dataset, progress=progress)
        files = [dataset.root / p for p in emb.paths]
        queries, protocol = np.arange(len(emb)), PROTOCOL_DATA
    labels, vectors, patients = emb.labels, emb.vectors, list(emb.patients)
    exclude = not include_same_patient and any(patients)
    verifier = evidence(files) if evidence is not None and any(patients) else None
    scores, same = _score(vectors, labels, queries, patients, exclude, verifier)
    base, base_same = (_baselines(paths, config, files, labels, queries, patients, exclude, data,
                                  progress, verifier) if baselines else (None, None))
    protocol += (EXCLUSION if exclude else "") + "; " + SAME_PATIENT
    if verifier is not None:
        protocol += VERIFIED.format(depth=verifier.depth, method=verifier.method)
    skipped = "" if scores.measured else _why_no_label_metrics(labels, queries, data)
    result = Evaluation(scores, protocol,
                        str(data or config.data), base, same, exclude, base_same, skipped)
    if data is None and not include_same_patient:  # the run's record keeps the default protocol
        atomic_write_json(paths.evaluation, result.to_dict())
    return result


def _why_no_label_metrics(labels: list[str], queries: np.ndarray, data: str | Path | None) -> str:
    """The one line saying why an evaluation has no label metrics."""
    where = "the run's test split" if data is None else str(data)
    if not any(labels[i] for i in queries):
        return f"label metrics skipped: {where} has no labels (same-patient retrieval is still scored)"
    return f"label metrics skipped: {where}: {LONE}"


def _dataset_rows(emb: Embeddings, paths: RunPaths) -> Embeddings:
    """The rows of the run's own dataset: films added after training (`add`) are served for
    search but are no part of the dataset the run is scored on."""
    added = {f.path for f in read_added(paths)}
    if not added:
        return emb
    keep = [i for i, p in enumerate(emb.paths) if p not in added]
    return Embeddings([emb.paths[i] for i in keep], [emb.labels[i] for i in keep],
                      [emb.splits[i] for i in keep], [emb.patients[i] for i in keep],
                      emb.vectors[keep])


def _baselines(paths: RunPaths, config, files: list[Path], labels: list[str], queries: np.ndarray,
               patients: list[str], exclude: bool, data: str | Path | None, progress: bool,
               evidence: PatientEvidence | None) -> tuple[dict[str, RetrievalScores], dict[str, dict[str, Any]]]:
    """Baseline scores, cached in the run's evaluation.json for its own dataset and protocol."""
    saved = load_evaluation(paths.root) if data is None else None
    cached: dict[str, tuple[RetrievalScores, dict[str, Any]]] = {}
    if saved is not None and saved.excludes_same_patient == exclude and saved.baselines:
        same = saved.baseline_same_patient or {}
        cached = {k: (v, same[k]) for k, v in saved.baselines.items()
                  if k in same and (evidence is None or "verified" in same[k] or not same[k].get("n_queries"))}

    def score(vectors: np.ndarray) -> tuple[RetrievalScores, dict[str, Any]]:
        return _score(vectors, labels, queries, patients, exclude, evidence)

    out: dict[str, tuple[RetrievalScores, dict[str, Any]]] = {}
    out["pixels_32"] = cached.get("pixels_32") or score(pixel_vectors(files))
    arch = config.model.arch
    name = f"random_init_{arch}"
    out[name] = cached.get(name) or score(_encoder_vectors(
        ModelConfig(arch=arch, weights="none"), files, config.train.image_size,
        config.train.seed, progress))
    if imagenet_weights_available(arch):
        name = f"imagenet_{arch}"
        out[name] = cached.get(name) or score(_encoder_vectors(
            ModelConfig(arch=arch, weights="imagenet"), files, max(config.train.image_size, 112),
            config.train.seed, progress))
    return {k: v[0] for k, v in out.items()}, {k: v[1] for k, v in out.items()}
