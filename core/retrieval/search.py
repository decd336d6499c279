"""Query by example: an image file -> its nearest neighbours in a run's index."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from core.data.imageio import load_image
from core.embed.encoder import Encoder
from core.index.artifacts import open_artifact_set
from core.retrieval.patients import SamePatientPrior, calibrate_same_patient, without_patient
from core.run_folder import RunError, RunPaths


@dataclass(frozen=True)
class Hit:
    rank: int
    path: str  # relative to the dataset root
    label: str
    score: float  # cosine similarity
    split: str = ""
    index: int = -1
    patient_id: str = ""  # "" when the dataset gives none


class Searcher:
    """A run's model, embeddings and index, loaded once, answering queries."""

    def __init__(self, run_dir: str | Path, device: str = "cpu") -> None:
        """Load the run's served artifact set, checked to agree (core.index.artifacts).

        Raises:
            RunError: nothing served yet, or files that disagree or cannot be read (one line).
        """
        served = open_artifact_set(Path(run_dir))
        paths = RunPaths(Path(run_dir))
        self.encoder = Encoder.from_run(paths.root, device, checkpoint=served.checkpoint)
        self.config = self.encoder.config
        self.embeddings = served.embeddings
        self.index = served.index
        self.generation = served.generation
        if self.embeddings.vectors.shape[1] != self.config.model.feature_dim:
            raise RunError(f"{paths.root}: the index holds {self.embeddings.vectors.shape[1]}-d "
                           f"vectors but the checkpoint makes {self.config.model.feature_dim}-d "
                           "ones; re-embed the run (python -m core embed --run ...)")
        self.data_root = Path(self.config.data)

    def embed_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """(H, W) float image in [0, 1] -> (D,) unit vector."""
        return self.encoder.embed([pixels])[0]

    def search_vector(self, vector: np.ndarray, k: int = 10,
                      hide_patient: str | None = None) -> list[Hit]:
        """Top-k neighbours of a unit vector; `hide_patient` leaves that patient's films out
        (still k hits when the gallery has enough others)."""
        e = self.embeddings
        extra = sum(p == hide_patient for p in e.patients) if hide_patient else 0
        scores, ids = self.index.search(vector[None].astype(np.float32), k + extra)
        hits = [Hit(r + 1, e.paths[i], e.labels[i], float(s), e.splits[i], int(i), e.patients[i])
                for r, (s, i) in enumerate(zip(scores[0], ids[0], strict=True)) if i >= 0]
        return without_patient(hits, hide_patient)[:k]

    def search(self, source: str | Path | bytes, k: int = 10, name: str | None = None,
               hide_patient: str | None = None) -> list[Hit]:
        """Top-k neighbours of an image file or upload (any supported format)."""
        return self.search_vector(self.embed_pixels(load_image(source, name=name).pixels), k,
                                  hide_patient)

    @cached_property
    def same_patient_prior(self) -> SamePatientPrior:
        """The "same patient?" confidence, calibrated on this run's held-out images."""
        return calibrate_same_patient(self.embeddings)
