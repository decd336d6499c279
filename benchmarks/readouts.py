"""`python -m benchmarks.readouts RUN`: other read-outs of a trained run's encoder, scored
beside the run's own embedding (issue 14's query-time experiments; no retraining).

Read-outs: centred on the training films' mean; PCA-whitened on the training films;
another input size (FixRes, Touvron et al. 2019) and multi-scale sums; GeM pooling
(Radenović et al. 2018); a centre crop added to the full film; the projection head's hidden
layer; layer3 features beside layer4's. Each line gives val and test P@5, mAP, mAP@R and
same-patient P@1 with `evaluate`'s protocol (the query's patient left out of its gallery for
the label metrics). Choose on val, report test: the test split has 78 queries on the dev set.
The first line must match `python -m core evaluate --run RUN` on test.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core.data.imageio import read_gray
from core.device import autocast
from core.embed.embeddings import Embeddings, l2_normalize
from core.embed.encoder import Encoder
from core.errors import UserError, one_line
from core.model.transforms import eval_view
from core.retrieval.metrics import evaluate_retrieval
from core.retrieval.patient_metrics import same_patient_retrieval


class GeM(nn.Module):
    """Generalised-mean pooling: (B, C, H, W) -> (B, C)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(min=1e-6).pow(self.p).mean((-2, -1)).pow(1 / self.p)


class Readouts:
    """A run's films and model, and the features each read-out gives them."""

    def __init__(self, run: Path) -> None:
        # The precision `train` embedded with (bf16 where the CPU has it), so the first
        # read-out reproduces the run's saved embedding on every machine.
        self.encoder = Encoder.from_run(run, device="cpu")
        self.emb = Embeddings.load(run)
        root = Path(self.encoder.config.data)
        self.films = [read_gray(root / p) for p in self.emb.paths]
        self.split = np.array(self.emb.splits)
        self.model = self.encoder.model.eval()

    @torch.no_grad()
    def features(self, size: int | None = None, pool: nn.Module | None = None, crop: float = 1.0,
                 layers: tuple[str, ...] = ("layer4",)) -> dict[str, np.ndarray]:
        """Average-pooled outputs of `layers` (and "pooled", the backbone's output, and
        "hidden", the head's ReLU output) for every film resized to `size` after a centre crop."""
        backbone, head = self.model.backbone, self.model.head.layers
        saved_pool = backbone.avgpool
        if pool is not None:
            backbone.avgpool = nn.Sequential(pool, nn.Flatten(1))
        out: dict[str, list[np.ndarray]] = {}
        hooks = [getattr(backbone, name).register_forward_hook(
            lambda _m, _i, o, name=name: out.setdefault(name, []).append(o.float().mean((-2, -1)).numpy()))
            for name in layers]
        try:
            for s in range(0, len(self.films), 128):
                views = torch.stack([eval_view(_centre(p, crop), size or self.encoder.image_size)
                                     for p in self.films[s:s + 128]])
                with autocast(self.encoder.device, self.encoder.precision):
                    h = backbone(views)
                    hidden = head[2](head[1](head[0](h)))
                out.setdefault("pooled", []).append(h.float().numpy())
                out.setdefault("hidden", []).append(hidden.float().numpy())
        finally:
            backbone.avgpool = saved_pool
            for hook in hooks:
                hook.remove()
        return {k: np.concatenate(v) for k, v in out.items()}

    def score(self, vectors: np.ndarray) -> dict[str, tuple[float, float, float, float]]:
        return score_splits(vectors, self.emb)

    def whiten(self, vectors: np.ndarray, dim: int, shrink: float) -> np.ndarray:
        """PCA whitening fitted on the training films, eigenvalues shrunk by shrink x their mean."""
        x = l2_normalize(vectors)
        train = x[self.split == "train"]
        mean = train.mean(0)
        eigval, eigvec = np.linalg.eigh(np.cov((train - mean).T))
        top = np.argsort(eigval)[::-1][:dim]
        return (x - mean) @ eigvec[:, top] / np.sqrt(eigval[top] + shrink * eigval.mean() + 1e-9)


def score_splits(vectors: np.ndarray, emb: Embeddings) -> dict[str, tuple[float, float, float, float]]:
    """{split: (P@5, mAP, mAP@R, same-patient P@1)} for the val and test queries of `emb`'s
    films, with `vectors` (one row per film, any length) in place of `emb.vectors`."""
    v = l2_normalize(vectors.astype(np.float32))
    gallery, patients, splits = np.arange(len(v)), list(emb.patients), np.array(emb.splits)
    out = {}
    for split in ("val", "test"):
        q = np.flatnonzero(splits == split)
        s = evaluate_retrieval(v, emb.labels, q, gallery, patients=patients).to_dict()
        same = same_patient_retrieval(v, patients, q, gallery).to_dict()
        out[split] = (s["precision_at_5"], s["map"], s["map_at_r"], same["precision_at_1"])
    return out


def format_scores(s: dict[str, tuple[float, float, float, float]]) -> str:
    """'val: P@5 mAP mAP@R same-P@1 | test: ...' as one line of figures ('-' where a figure has
    no queries, e.g. same-patient P@1 without patient ids)."""
    def figures(split: str) -> str:
        return " ".join("    -" if x is None else f"{x:.3f}" for x in s[split])

    return f"{figures('val'):>30s} | {figures('test')}"


def _centre(pixels: np.ndarray, crop: float) -> np.ndarray:
    if crop >= 1.0:
        return pixels
    h, w = pixels.shape
    dh, dw = int(h * (1 - crop) / 2), int(w * (1 - crop) / 2)
    return pixels[dh:h - dh, dw:w - dw]


def readouts(r: Readouts) -> dict[str, Callable[[], np.ndarray]]:
    """Name -> a function computing that read-out's vectors."""
    n = l2_normalize
    size = r.encoder.image_size
    base = r.features(layers=("layer3",))
    out: dict[str, Callable[[], np.ndarray]] = {
        "the run's embedding": lambda: base["pooled"],
        "centred on the training mean": lambda: n(base["pooled"]) - n(base["pooled"])[r.split == "train"].mean(0),
    }
    for dim in (64, 128, 256):
        out[f"PCA-whitened to {dim}, shrinkage 1"] = lambda dim=dim: r.whiten(base["pooled"], dim, 1.0)
    for s in (size - 8, size + 8, size + 16, size + 32):
        out[f"embedded at {s} px"] = lambda s=s: r.features(s)["pooled"]
    out[f"multi-scale {size - 8} + {size} + {size + 8} px"] = lambda: sum(
        n(r.features(s)["pooled"]) for s in (size - 8, size + 8)) + n(base["pooled"])
    for p in (2.0, 3.0):
        out[f"GeM pooling, p {p:g}"] = lambda p=p: r.features(pool=GeM(p))["pooled"]
    out["plus a centre crop of 0.9"] = lambda: n(base["pooled"]) + n(r.features(crop=0.9)["pooled"])
    out["the head's hidden layer"] = lambda: base["hidden"]
    out["layer4 + 0.3 x layer3"] = lambda: np.hstack([n(base["pooled"]), 0.3 * n(base["layer3"])])
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.readouts", description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path, help="a trained run folder (its dataset must be where it was)")
    a = p.parse_args(argv)
    torch.set_flush_denormal(True)
    try:
        r = Readouts(a.run)
    except UserError as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    print(f"{'read-out':40s} {'val: P@5 mAP mAP@R same-P@1':>30s} | test: P@5 mAP mAP@R same-P@1")
    for name, make in readouts(r).items():
        print(f"{name:40s} {format_scores(r.score(make()))}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
