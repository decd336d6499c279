"""Retrieval quality of a run, with baselines measured by the same evaluator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.config import ModelConfig
from core.data.dataset import scan_dataset
from core.data.imageio import ImageReadError, read_gray
from core.device import resolve_device, resolve_precision
from core.embed.embeddings import Embeddings, l2_normalize
from core.embed.encoder import embed_files
from core.files import atomic_write_json, read_json
from core.model.network import SimCLRModel, build_model, imagenet_weights_available
from core.model.transforms import eval_view
from core.retrieval.metrics import evaluate_retrieval
from core.retrieval.patient_metrics import same_patient_retrieval
from core.run_folder import RunPaths

PROTOCOL_RUN = ("queries = test split; gallery = every other image of the dataset; "
                "relevant = same label; the query itself never counts")
PROTOCOL_DATA = ("queries = every image of the folder; gallery = all the others; "
                 "relevant = same label; the query itself never counts")
EXCLUSION = "; the query patient's other films are left out of its gallery"
SAME_PATIENT = ("same_patient: relevant = another film of the query's patient, for queries "
                "whose patient has one in the gallery")


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
    vectors, _ = embed_files(model, files, image_size, device, resolve_precision("auto", device),
                             progress=progress)
    return vectors


def _score(vectors: np.ndarray, labels: list[str], queries: np.ndarray, patients: list[str],
           exclude: bool) -> dict[str, Any]:
    """Label metrics (the query's patient left out when `exclude`) and the same-patient block."""
    gallery = np.arange(len(labels))
    out = evaluate_retrieval(vectors, labels, queries, gallery,
                             patients=patients if exclude else None).to_dict()
    out["same_patient"] = same_patient_retrieval(vectors, patients, queries, gallery).to_dict()
    return out


def evaluate_run(run_dir: str | Path, data: str | Path | None = None, baselines: bool = True,
                 progress: bool = False, include_same_patient: bool = False) -> dict[str, Any]:
    """P@1/5/10, mAP, mAP@R (overall and per class) of a run, beside baselines.

    Without `data`: the run's test split queries every other image of its dataset.
    With `data`: every image of that labelled folder queries all the others.
    Where patient ids exist, each query's own patient's other films leave its gallery
    (`include_same_patient=True` keeps them), and a `same_patient` block scores how well those
    films are found. Baselines (raw 32x32 pixels, a random-init encoder, ImageNet weights when
    cached) are measured the same way.
    """
    from core.model.checkpoint import load_run_model

    paths = RunPaths(Path(run_dir))
    device = resolve_device("auto")
    model, config = load_run_model(paths.root, device)
    if data is None:
        emb = Embeddings.load(paths.root)
        root = Path(config.data)
        files = [root / p for p in emb.paths]
        labels, vectors, patients = emb.labels, emb.vectors, list(emb.patients)
        queries, protocol = emb.subset("test"), PROTOCOL_RUN
        if len(queries) == 0:
            queries = np.arange(len(labels))
            protocol = PROTOCOL_DATA + " (the run has no test split)"
    else:
        dataset = scan_dataset(data)
        files = [dataset.absolute(s) for s in dataset.samples]
        labels = dataset.labels
        patients = [s.patient_id or "" for s in dataset.samples]
        vectors, bad = embed_files(model, files, config.train.image_size, device,
                                   resolve_precision(config.train.precision, device), progress=progress)
        keep = np.array([i for i in range(len(files)) if i not in bad], dtype=np.int64)
        files, labels, vectors = [files[i] for i in keep], [labels[i] for i in keep], vectors[keep]
        patients = [patients[i] for i in keep]
        queries, protocol = np.arange(len(labels)), PROTOCOL_DATA
    exclude = not include_same_patient and any(patients)
    result = _score(vectors, labels, queries, patients, exclude)
    result["protocol"] = protocol + (EXCLUSION if exclude else "") + "; " + SAME_PATIENT
    result["excludes_same_patient"] = exclude
    result["data"] = str(data or config.data)
    if baselines:
        result["baselines"] = _baselines(paths, config, files, labels, queries, patients, exclude,
                                         data, progress)
    if data is None and not include_same_patient:  # the run's record keeps the default protocol
        atomic_write_json(paths.evaluation, result)
    return result


def _baselines(paths: RunPaths, config, files: list[Path], labels: list[str], queries: np.ndarray,
               patients: list[str], exclude: bool, data: str | Path | None,
               progress: bool) -> dict[str, Any]:
    """Baseline scores, cached in the run's evaluation.json for its own dataset and protocol."""
    cached: dict[str, Any] = {}
    if data is None:
        saved = read_json(paths.evaluation) or {}
        if saved.get("excludes_same_patient", False) == exclude:
            cached = {k: v for k, v in (saved.get("baselines") or {}).items() if "same_patient" in v}

    def score(vectors: np.ndarray) -> dict[str, Any]:
        return _score(vectors, labels, queries, patients, exclude)

    out: dict[str, Any] = {}
    if "pixels_32" in cached:
        out["pixels_32"] = cached["pixels_32"]
    else:
        out["pixels_32"] = score(pixel_vectors(files))
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
    return out
