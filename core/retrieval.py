"""Query by example: an image file -> its nearest neighbours in a run's index."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.config import RunConfig
from core.device import resolve_device, resolve_precision
from core.embeddings import Embeddings, embed_tensor
from core.imageio import load_image
from core.index import VectorIndex
from core.model import SimCLRModel, WeightsError, build_model
from core.runs import RunError, RunPaths, read_json
from core.trainer import load_checkpoint
from core.transforms import eval_view


@dataclass(frozen=True)
class Hit:
    rank: int
    path: str  # relative to the dataset root
    label: str
    score: float  # cosine similarity
    split: str = ""
    index: int = -1


def load_run_model(run_dir: str | Path, device: torch.device | None = None,
                   which: str = "best") -> tuple[SimCLRModel, RunConfig]:
    """Rebuild a run's model from its checkpoint (weights_only=True) in eval mode.

    Raises:
        RunError: no checkpoint, or a corrupt one.
        WeightsError: the checkpoint's weights or architecture do not fit the run.
    """
    paths = RunPaths(Path(run_dir))
    path = paths.best if which == "best" and paths.best.is_file() else paths.last
    if not path.is_file():
        raise RunError(f"no checkpoint in {paths.root} (train it first)")
    try:
        ckpt = load_checkpoint(path)
        config = RunConfig.from_dict(ckpt["config"])
    except Exception as e:
        raise RunError(f"corrupt checkpoint {path} ({type(e).__name__})") from None
    _check_same_arch(paths, path, config)
    model = build_model(_offline(config).model)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError:
        raise WeightsError(f"checkpoint {path} does not fit {config.model.arch}") from None
    model.eval()
    return model.to(device or torch.device("cpu")).to(memory_format=torch.channels_last), config


def _check_same_arch(paths: RunPaths, path: Path, config: RunConfig) -> None:
    """Refuse a checkpoint whose encoder differs from the run's (one copied in from another run).

    Its embeddings would neither fit the run's index (2048 against 512 dimensions) nor mean
    the same thing.
    """
    saved = read_json(paths.config)  # None when missing: the checkpoint's own config decides
    run_arch = ((saved.get("model") or {}) if isinstance(saved, dict) else {}).get("arch")
    if run_arch and run_arch != config.model.arch:
        raise WeightsError(f"checkpoint {path} holds a {config.model.arch} model but this run "
                           f"is {run_arch}; copy back this run's own checkpoint or train again")


def _offline(config: RunConfig) -> RunConfig:
    """The checkpoint holds every weight: never download or re-read initial weights."""
    from dataclasses import replace

    return replace(config, model=replace(config.model, weights="none"))


class Searcher:
    """A run's model, embeddings and index, loaded once, answering queries."""

    def __init__(self, run_dir: str | Path, device: str = "cpu") -> None:
        paths = RunPaths(Path(run_dir))
        if not paths.index.is_file() or not paths.embeddings.is_file():
            raise RunError(f"{paths.root} has no index yet (training not finished?)")
        self.device = resolve_device(device)
        self.model, self.config = load_run_model(paths.root, self.device)
        self.precision = resolve_precision(self.config.train.precision, self.device)
        self.embeddings = Embeddings.load(paths.root)
        self.index = VectorIndex.load(paths.index)
        if self.embeddings.vectors.shape[1] != self.config.model.feature_dim:
            raise RunError(f"{paths.root}: the index holds {self.embeddings.vectors.shape[1]}-d "
                           f"vectors but the checkpoint makes {self.config.model.feature_dim}-d "
                           "ones; re-embed the run (python -m core embed --run ...)")
        self.data_root = Path(self.config.data)

    def embed_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """(H, W) float image in [0, 1] -> (D,) unit vector."""
        view = eval_view(pixels, self.config.train.image_size)[None]  # (1, 1, S, S)
        return embed_tensor(self.model, view, self.device, self.precision)[0]

    def search_vector(self, vector: np.ndarray, k: int = 10) -> list[Hit]:
        scores, ids = self.index.search(vector[None].astype(np.float32), k)
        e = self.embeddings
        return [Hit(r + 1, e.paths[i], e.labels[i], float(s), e.splits[i], int(i))
                for r, (s, i) in enumerate(zip(scores[0], ids[0], strict=True)) if i >= 0]

    def search(self, source: str | Path | bytes, k: int = 10, name: str | None = None) -> list[Hit]:
        """Top-k neighbours of an image file or upload (any supported format)."""
        return self.search_vector(self.embed_pixels(load_image(source, name=name).pixels), k)
