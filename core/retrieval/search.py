"""Query by example: an image file -> its nearest neighbours in a run's index."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.data.imageio import load_image
from core.embed.embeddings import Embeddings
from core.embed.encoder import Encoder
from core.index.vectors import VectorIndex
from core.run_folder import RunError, RunPaths


@dataclass(frozen=True)
class Hit:
    rank: int
    path: str  # relative to the dataset root
    label: str
    score: float  # cosine similarity
    split: str = ""
    index: int = -1


class Searcher:
    """A run's model, embeddings and index, loaded once, answering queries."""

    def __init__(self, run_dir: str | Path, device: str = "cpu") -> None:
        paths = RunPaths(Path(run_dir))
        if not paths.index.is_file() or not paths.embeddings.is_file():
            raise RunError(f"{paths.root} has no index yet (training not finished?)")
        self.encoder = Encoder.from_run(paths.root, device)
        self.config = self.encoder.config
        self.embeddings = Embeddings.load(paths.root)
        self.index = VectorIndex.load(paths.index)
        if self.embeddings.vectors.shape[1] != self.config.model.feature_dim:
            raise RunError(f"{paths.root}: the index holds {self.embeddings.vectors.shape[1]}-d "
                           f"vectors but the checkpoint makes {self.config.model.feature_dim}-d "
                           "ones; re-embed the run (python -m core embed --run ...)")
        self.data_root = Path(self.config.data)

    def embed_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """(H, W) float image in [0, 1] -> (D,) unit vector."""
        return self.encoder.embed([pixels])[0]

    def search_vector(self, vector: np.ndarray, k: int = 10) -> list[Hit]:
        scores, ids = self.index.search(vector[None].astype(np.float32), k)
        e = self.embeddings
        return [Hit(r + 1, e.paths[i], e.labels[i], float(s), e.splits[i], int(i))
                for r, (s, i) in enumerate(zip(scores[0], ids[0], strict=True)) if i >= 0]

    def search(self, source: str | Path | bytes, k: int = 10, name: str | None = None) -> list[Hit]:
        """Top-k neighbours of an image file or upload (any supported format)."""
        return self.search_vector(self.embed_pixels(load_image(source, name=name).pixels), k)
