"""SimCLR training throughput of the quick and seed presets: the project's Trainer vs a plain loop.

Images/s counts images, each seen as two augmented views per step (as the Trainer reports).
For each preset, a few dozen steps (not whole runs), in alternating rounds (best of each kept),
three figures:
- end to end: the Trainer's own loop (loader worker + bf16 autocast + channels_last where the
  CPU has bf16) vs a plain fp32 loop with the same model, loss, optimiser, augmentations and
  batch size, augmenting in the training process (DataLoader num_workers=0, PyTorch defaults);
- model only: the same step on pre-made tensors, so the gap to end to end is the loader's cost;
- loader only: the Trainer's input alone (its DataLoader gathers uint8 films, core.train.batch_views
  makes the two views a batch at a time), images/s; the plain loop's DataLoader (per-image
  XRayViews) as its reference.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from benchmarks.common import demo_files, emit, note
from core.config import make_run_config
from core.device import resolve_precision, setup_cpu
from core.model.loss import NTXentLoss
from core.model.network import build_model
from core.model.transforms import XRayViews
from core.run_folder import RunPaths
from core.train.trainer import Trainer
from core.train.views import TwoViewDataset, decode_images


def _plan(quick: bool, preset: str) -> tuple[int, int, int]:
    """(rounds, untimed warm-up steps, timed steps) per measurement."""
    if preset == "seed":
        return (2, 1, 3) if quick else (2, 1, 6)
    return (2, 2, 6) if quick else (3, 2, 12)


@contextlib.contextmanager
def _pytorch_defaults() -> Iterator[None]:
    """Denormals as PyTorch leaves them (the project flushes them, see core.device.setup_cpu)."""
    torch.set_flush_denormal(False)
    try:
        yield
    finally:
        setup_cpu()


def _timed_fit(trainer: Trainer, warm: int, steps: int) -> float:
    """Images/s of the Trainer's own loop over `steps` steps after `warm` untimed ones."""
    stamps: list[float] = []

    def stop() -> bool:  # called by fit after every optimiser step
        stamps.append(time.perf_counter())
        return len(stamps) >= warm + steps

    trainer.fit(should_stop=stop)
    return steps * trainer.local_batch / (stamps[-1] - stamps[warm - 1])


def _model_only(step, batch: int, px: int, warm: int, steps: int) -> float:
    """Images/s of `step(v1, v2)` on pre-made normalised views (no loader)."""
    g = torch.Generator().manual_seed(0)
    v1, v2 = torch.randn(batch, 1, px, px, generator=g), torch.randn(batch, 1, px, px, generator=g)
    for _ in range(warm):
        step(v1, v2)
    t = time.perf_counter()
    for _ in range(steps):
        step(v1, v2)
    return steps * batch / (time.perf_counter() - t)


def _loader_only(loader: DataLoader, batches: int, views=None) -> float:
    """Images/s of a DataLoader alone, then `views(a, b)` on each batch when given (first
    batch untimed: worker start-up)."""
    it = iter(loader)
    first = next(it)
    n, t = 0, time.perf_counter()
    for _ in range(batches):
        v1, v2 = next(it)
        if views is not None:
            v1, v2 = views(v1, v2)
        n += v1.shape[0]
    del first
    return n / (time.perf_counter() - t)


class PlainSimCLR:
    """The reference: fp32, default memory format, Adam, NT-Xent; no autocast, no tricks."""

    def __init__(self, config, images: torch.Tensor) -> None:
        torch.manual_seed(0)
        t = config.train
        self.model = build_model(config.model).train()
        self.loss_fn = NTXentLoss(t.temperature, gather_distributed=False)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=t.lr)
        self.loader = DataLoader(TwoViewDataset(images, XRayViews(t.image_size, config.augment)),
                                 batch_size=t.batch_size, shuffle=True, drop_last=True)

    def step(self, v1: torch.Tensor, v2: torch.Tensor) -> None:
        z = self.model(torch.cat([v1, v2]))  # (2B, proj_dim)
        z1, z2 = z.chunk(2)
        loss = self.loss_fn(z1, z2)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()

    def end_to_end(self, warm: int, steps: int) -> float:
        """Images/s over `steps` steps after `warm` untimed ones, from a fresh epoch."""
        it = iter(self.loader)
        for _ in range(warm):
            self.step(*next(it))
        n, t = 0, time.perf_counter()
        for _ in range(steps):
            v1, v2 = next(it)
            self.step(v1, v2)
            n += v1.shape[0]
        return n / (time.perf_counter() - t)


def bench_preset(preset: str, quick: bool, tmp: Path) -> None:
    """Measure one preset; project and plain runs alternate, best of each is kept, so a
    change in the (shared) machine's load does not favour either."""
    rounds, warm, steps = _plan(quick, preset)
    config = make_run_config(str(tmp), preset, weights="none")
    t = config.train
    device = torch.device("cpu")
    precision = resolve_precision("auto", device)
    need = (warm + steps + 1) * t.batch_size
    files = demo_files(tmp, min(need, 256))
    images, _ = decode_images(files, int(round(t.image_size * 1.15)))  # as the pipeline does
    images = images.repeat((-(-need // images.shape[0]), 1, 1, 1))[:need]  # (need, 1, S, S)
    note(f"training {preset}: {t.image_size} px, batch {t.batch_size}, "
         f"{rounds} x ({warm}+{steps}) steps, {precision}")

    setup_cpu()
    trainer = Trainer(config, RunPaths(tmp / f"run-{preset}"), images, images[:0], device, precision)
    with _pytorch_defaults():
        plain = PlainSimCLR(config, images)

    def project_step(v1: torch.Tensor, v2: torch.Tensor) -> None:
        loss = trainer._step_loss(v1, v2)  # the Trainer's own forward (autocast, channels_last)
        trainer.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        trainer.optimizer.step()

    rates: dict[str, list[float]] = {k: [] for k in ("e2e", "model", "plain_e2e", "plain_model")}
    for _ in range(rounds):
        rates["e2e"].append(_timed_fit(trainer, warm, steps))
        trainer.net.train()
        rates["model"].append(_model_only(project_step, t.batch_size, t.image_size, 1, steps))
        with _pytorch_defaults():
            rates["plain_e2e"].append(plain.end_to_end(warm, steps))
            rates["plain_model"].append(_model_only(plain.step, t.batch_size, t.image_size, 1, steps))
    best = {k: max(v) for k, v in rates.items()}
    batches = min(steps, need // t.batch_size - 1)
    loader_rate = _loader_only(trainer._loader(trainer.train_set, 0, shuffle=True), batches, trainer._views)
    with _pytorch_defaults():
        plain_loader = _loader_only(plain.loader, batches)
    workers = max(0, trainer.workers)  # the Trainer's default: no loader process

    common = dict(preset=preset, px=t.image_size, batch=t.batch_size, steps=steps, rounds=rounds,
                  precision=precision, reference_precision="fp32")
    emit("train.end_to_end", best["e2e"], "images/s", reference="plain fp32 SimCLR loop",
         reference_value=best["plain_e2e"], loader_workers=workers, reference_loader_workers=0,
         flush_denormal=True, reference_flush_denormal=False,
         target=">= 1.2x plain, >= 0.9x model only" if preset == "quick" else None,
         end_to_end_over_model_only=best["e2e"] / best["model"], **common)
    emit("train.model_only", best["model"], "images/s", reference="plain fp32 SimCLR step",
         reference_value=best["plain_model"], **common)
    emit("train.loader_only", loader_rate, "images/s", reference="plain DataLoader, no workers (per image)",
         reference_value=plain_loader, loader_workers=workers,
         loader_bound=loader_rate < best["model"],
         end_to_end_over_model_only=best["e2e"] / best["model"], **common)


def run(quick: bool) -> None:
    presets = ("quick",) if quick else ("quick", "seed")  # seed (224 px) takes minutes
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        for preset in presets:
            bench_preset(preset, quick, Path(tmp))
