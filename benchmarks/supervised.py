"""`python -m benchmarks.supervised RUN`: a label-supervised ceiling for a run's retrieval figures.

Trains the run's architecture from scratch with cross-entropy on the *labels* of the run's
training split (what SimCLR never sees), at the run's image size and with its augmentations,
then scores the backbone's pooled features exactly as `benchmarks.readouts` does: val and
test P@5, mAP, mAP@R and same-patient P@1 with `evaluate`'s protocol (the query's patient
left out of its gallery). It answers "how much of a target can this data and input size give
at all?" (README, "What was tried for issue 14"); it is not a recipe the product ships. The
first line is the run's own embedding, for comparison. About 1.5 minutes at 25 epochs on the
dev set's 776 films (64 px).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from benchmarks.readouts import format_scores, score_splits
from core.config import ModelConfig, RunConfig
from core.embed.embeddings import Embeddings
from core.errors import UserError, one_line
from core.model.checkpoint import load_run_model
from core.model.network import build_backbone
from core.model.transforms import XRayViews, normalize
from core.train.views import decode_images


def train_supervised(images: torch.Tensor, labels: np.ndarray, train: np.ndarray, config: RunConfig,
                     *, epochs: int, seed: int, size: int) -> nn.Module:
    """A backbone trained with a linear classifier on `images[train]` (N, 1, S, S) uint8."""
    torch.manual_seed(seed)
    backbone = build_backbone(ModelConfig(arch=config.model.arch, weights="none"))
    classifier = nn.Linear(config.model.feature_dim, int(labels.max()) + 1)
    model = nn.Sequential(backbone, classifier)
    opt = torch.optim.Adam(model.parameters(), lr=config.train.lr)
    views = XRayViews(size, config.augment)
    y = torch.from_numpy(labels)
    batch = config.train.batch_size
    model.train()
    for epoch in range(epochs):
        order = train[torch.randperm(len(train)).numpy()]
        total = 0.0
        for s in range(0, len(order), batch):
            idx = order[s:s + batch]
            if len(idx) < 2:  # BatchNorm needs two samples
                continue
            x = torch.stack([views.one(images[i]) for i in idx])  # (B, 1, size, size)
            loss = nn.functional.cross_entropy(model(x), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        print(f"epoch {epoch + 1}/{epochs}: cross-entropy {total / len(train):.3f}", file=sys.stderr, flush=True)
    return backbone.eval()


@torch.no_grad()
def pooled_features(backbone: nn.Module, images: torch.Tensor) -> np.ndarray:
    """(N, 1, S, S) uint8 -> (N, D) float32 pooled backbone features (the clean view)."""
    return np.concatenate([backbone(normalize(images[s:s + 128])).numpy() for s in range(0, len(images), 128)])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.supervised", description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path, help="a trained run folder (its dataset must be where it was)")
    p.add_argument("--epochs", type=int, default=25, help="0 scores the untrained encoder (the random-init baseline)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=None, help="image size (default: the run's)")
    a = p.parse_args(argv)
    if a.epochs < 0 or (a.size is not None and a.size < 32):
        p.error("--epochs must be 0 or more (0: the untrained encoder) and --size at least 32")
    torch.set_flush_denormal(True)
    try:
        _, config = load_run_model(a.run)  # the run's saved config, with the loaders' one-line errors
        emb = Embeddings.load(a.run)
    except UserError as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    size = a.size or config.train.image_size
    images, bad = decode_images([Path(config.data) / q for q in emb.paths], size)
    if bad:
        print(f"{len(bad)} films of the run no longer read; run it where its dataset is", file=sys.stderr)
        return 2
    classes = sorted(set(emb.labels))
    labels = np.array([classes.index(c) for c in emb.labels], dtype=np.int64)
    train = emb.subset("train")
    started = time.perf_counter()
    backbone = train_supervised(images, labels, train, config, epochs=a.epochs, seed=a.seed, size=size)
    seconds = time.perf_counter() - started
    print(f"{'read-out':44s} {'val: P@5 mAP mAP@R same-P@1':>30s} | test: P@5 mAP mAP@R same-P@1")
    print(f"{'the run: self-supervised':44s} {format_scores(score_splits(emb.vectors, emb))}")
    name = f"labels: {a.epochs} epochs, {size} px, seed {a.seed} ({seconds:.0f} s)"
    print(f"{name:44s} {format_scores(score_splits(pooled_features(backbone, images), emb))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
