"""Decode a dataset's images once and serve them to torch as views."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset as TorchDataset

from core.data.imageio import ImageReadError, read_gray
from core.device import setup_cpu
from core.model.transforms import XRayViews, eval_view, to_uint8_tensor


def decode_images(paths: Sequence[Path], size: int, workers: int = 0,
                  progress: bool = False) -> tuple[torch.Tensor, dict[int, str]]:
    """Read and resize every image to (1, size, size) uint8.

    Returns:
        images: (N_ok, 1, size, size) uint8 tensor, in order of the readable paths.
        bad: {index in `paths`: reason} for files that could not be read.
    """
    def load(i: int) -> tuple[int, torch.Tensor | None, str | None]:
        try:
            return i, to_uint8_tensor(read_gray(paths[i]), size), None
        except ImageReadError as e:
            return i, None, str(e)
        except OSError as e:
            return i, None, f"{paths[i].name}: {e.strerror or e}"

    workers = workers or min(4, os.cpu_count() or 1)
    out: list[torch.Tensor] = []
    bad: dict[int, str] = {}
    bar = _progress(len(paths), "decode", progress)
    with ThreadPoolExecutor(workers) as pool:  # PIL and zlib release the GIL
        for i, tensor, reason in pool.map(load, range(len(paths))):
            if tensor is None:
                bad[i] = reason or "unreadable"
            else:
                out.append(tensor)
            bar.update(1)
    bar.close()
    if not out:
        return torch.empty(0, 1, size, size, dtype=torch.uint8), bad
    return torch.stack(out), bad  # (N_ok, 1, size, size)


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, leave=False)


class TwoViewDataset(TorchDataset):
    """Decoded images -> two augmented views each (SimCLR positives)."""

    def __init__(self, images: torch.Tensor, views: XRayViews) -> None:
        self.images = images  # (N, 1, S, S) uint8
        self.views = views

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.views(self.images[i])


def patient_partners(patients: Sequence[str | None]) -> list[list[int]]:
    """For each image, the indices of the other images of its patient ([] when it has none).

    Images without a patient id (None or "") have no partners.
    """
    groups: dict[str, list[int]] = {}
    for i, p in enumerate(patients):
        if p:
            groups.setdefault(p, []).append(i)
    return [[j for j in groups[p] if j != i] if p else [] for i, p in enumerate(patients)]


class PatientPairDataset(TwoViewDataset):
    """Two views per image where, with probability `prob`, the second view is drawn from
    another film of the same patient (MedAug / MICLe positives). An image whose patient has
    one film (or no id) pairs with itself, as in plain SimCLR."""

    def __init__(self, images: torch.Tensor, views: XRayViews, patients: Sequence[str | None],
                 prob: float) -> None:
        super().__init__(images, views)
        if len(patients) != images.shape[0]:
            raise ValueError(f"{len(patients)} patient ids for {images.shape[0]} images")
        self.partners = patient_partners(patients)
        self.prob = prob

    def partner(self, i: int) -> int:
        """The image that supplies i's second view (i itself, or one of its patient's films)."""
        others = self.partners[i]
        if not others or float(torch.rand(())) >= self.prob:
            return i
        return others[int(torch.randint(len(others), ()))]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        j = self.partner(i)
        if j == i:
            return self.views(self.images[i])
        return self.views.one(self.images[i]), self.views.one(self.images[j])


class FilmPairs(TorchDataset):
    """Decoded films -> (film, partner) uint8 pairs, augmented later as a batch
    (core.train.batch_views.BatchViews): the loader only gathers.

    With `partners` (patient_partners of the films) and probability `prob`, the partner is
    another film of the same patient (MedAug / MICLe positives); otherwise, and for a film
    whose patient has one film, it is the film itself (two views of one image, plain SimCLR).
    """

    def __init__(self, images: torch.Tensor, partners: list[list[int]] | None = None,
                 prob: float = 0.0) -> None:
        self.images = images  # (N, 1, S, S) uint8
        if partners is not None and len(partners) != images.shape[0]:
            raise ValueError(f"{len(partners)} patient ids for {images.shape[0]} images")
        self.partners = partners or [[] for _ in range(images.shape[0])]
        self.prob = prob

    def __len__(self) -> int:
        return self.images.shape[0]

    def partner(self, i: int) -> int:
        """The film that supplies i's second view (i itself, or one of its patient's films)."""
        others = self.partners[i]
        if not others or self.prob <= 0 or float(torch.rand(())) >= self.prob:
            return i
        return others[int(torch.randint(len(others), ()))]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[i], self.images[self.partner(i)]  # (1, S, S) uint8 each


class FileDataset(TorchDataset):
    """Image files -> one clean view each, for embedding. Unreadable files give an empty tensor."""

    def __init__(self, paths: Sequence[Path], size: int) -> None:
        self.paths = list(paths)
        self.size = size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, str]:
        try:
            return eval_view(read_gray(self.paths[i]), self.size), i, ""
        except (ImageReadError, OSError) as e:
            return torch.zeros(1, self.size, self.size), i, str(e) or "unreadable"


def worker_init(_: int) -> None:
    """Each loader worker: one thread, denormals flushed."""
    torch.set_num_threads(1)
    setup_cpu()
    np.random.seed(torch.initial_seed() % 2**32)


def default_workers(requested: int = -1) -> int:
    if requested >= 0:
        return requested
    cpus = os.cpu_count() or 1
    return 1 if cpus <= 2 else min(8, cpus // 2)
