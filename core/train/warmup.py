"""A short measured warm-up: a few training steps of a recipe on this machine, timed.

The estimate before a run starts rests on this when no past run of the same image size exists:
it measures this machine, at its present load, on the recipe's own network and image size.
The result is kept per (arch, image size, device, CPU count) in the workspace's runs folder.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from core.files import atomic_write_json, read_json

WARMUP_FILE = "warmup.json"
MAX_BATCH = 8  # images per measured step; per-image cost on a CPU is about flat above ~8
STEPS = 3  # timed steps at most, after one untimed step (allocation, kernel choice)
BUDGET_S = 8.0  # no more timed steps after this many seconds (a busy machine: fewer steps)


@dataclass(frozen=True)
class Warmup:
    """Training throughput measured just now: images (two views each) per second."""

    images_per_s: float
    image_size: int
    arch: str
    device: str
    measured_at: float  # time.time()

    def basis(self) -> str:
        age = max(0, int(time.time() - self.measured_at))
        when = f"{age // 60} min ago" if age >= 60 else "just now"
        return (f"a warm-up of this recipe on this machine ({when}): "
                f"{self.images_per_s:.1f} img/s at {self.image_size} px")


def _key(arch: str, image_size: int, device: str) -> str:
    return f"{arch}|{image_size}|{device}|{os.cpu_count() or 0}"


def saved_warmup(runs_dir: str | Path, arch: str, image_size: int, device: str) -> Warmup | None:
    """The last warm-up of this recipe on this machine, None if never measured."""
    doc = read_json(Path(runs_dir) / WARMUP_FILE, default={}) or {}
    entry = doc.get(_key(arch, image_size, device)) if isinstance(doc, dict) else None
    if not isinstance(entry, dict):
        return None
    try:
        return Warmup(float(entry["images_per_s"]), image_size, arch, device, float(entry["measured_at"]))
    except (KeyError, TypeError, ValueError):
        return None


def measure_warmup(runs_dir: str | Path, arch: str, image_size: int, device: str = "cpu",
                   batch_size: int = MAX_BATCH, temperature: float = 0.2,
                   augment: object | None = None) -> Warmup:
    """Time STEPS training steps (augment, forward on two views, NT-Xent, backward, Adam); keep the rate.

    Args:
        runs_dir: where warmup.json is kept.
        arch, image_size, device: the recipe's network, input size and device.
        batch_size: the recipe's batch (capped at MAX_BATCH).
        temperature: the recipe's NT-Xent temperature.
        augment: the recipe's AugmentConfig (None: the default).
    """
    import torch

    from core.config import AugmentConfig, ModelConfig
    from core.device import resolve_device
    from core.model.loss import NTXentLoss
    from core.model.network import build_model
    from core.train.batch_views import BatchViews

    dev = resolve_device(device)
    model = build_model(ModelConfig(arch=arch, weights="none")).to(dev)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    loss_fn = NTXentLoss(temperature)
    b = max(2, min(batch_size, MAX_BATCH))
    g = torch.Generator().manual_seed(0)
    images = (torch.rand(b, 1, image_size, image_size, generator=g) * 255).to(torch.uint8)  # (B, 1, S, S)
    views = BatchViews(image_size, augment or AugmentConfig())

    def step() -> None:  # the augmentation is timed too: the Trainer makes the views per batch
        x = torch.cat([views(images.to(dev)), views(images.to(dev))])  # (2B, 1, S, S)
        z1, z2 = model(x).float().chunk(2)
        loss = loss_fn(z1, z2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    start, steps = time.perf_counter(), 0
    while steps < STEPS and (steps == 0 or time.perf_counter() - start < BUDGET_S):
        step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        steps += 1
    rate = steps * b / max(time.perf_counter() - start, 1e-9)
    result = Warmup(round(rate, 2), image_size, arch, dev.type, time.time())
    path = Path(runs_dir) / WARMUP_FILE
    doc = read_json(path, default={}) or {}
    doc = doc if isinstance(doc, dict) else {}
    doc[_key(arch, image_size, dev.type)] = {"images_per_s": result.images_per_s,
                                             "measured_at": result.measured_at}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, doc)
    return result
