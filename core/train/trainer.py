"""The SimCLR training loop: epochs, validation NT-Xent, status, metrics and checkpoints."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from core.config import RunConfig
from core.device import autocast
from core.errors import UserError
from core.files import append_jsonl
from core.model.checkpoint import save_checkpoint
from core.model.loss import NTXentLoss
from core.model.network import build_model
from core.run_folder import RunPaths, write_status
from core.train.batch_views import BatchViews
from core.train.views import FilmPairs, patient_partners, worker_init


class TrainingDiverged(UserError):
    """The loss became NaN or infinite: training stops at once (one-line message)."""


@dataclass(frozen=True)
class TrainResult:
    epochs_done: int
    best_val_loss: float
    best_epoch: int
    seconds: float
    stopped: bool


def _is_main() -> bool:
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


class Trainer:
    """Runs epochs over decoded train/val images and records everything in the run folder.

    Args:
        config: the run's configuration (saved in each checkpoint).
        paths: the run folder.
        train_images, val_images: (N, 1, S, S) uint8 tensors.
        device, precision: where and how to compute ("bf16" uses autocast).
        train_patients: patient id (or None) of each training image, for patient positives.
        workers: loader processes (-1 or 0: none; the loader only gathers uint8 films, the
            views are made a batch at a time on `device`, see core.train.batch_views).
    """

    def __init__(self, config: RunConfig, paths: RunPaths, train_images: torch.Tensor,
                 val_images: torch.Tensor, device: torch.device, precision: str,
                 progress: bool = False, train_patients: list[str | None] | None = None,
                 workers: int = -1) -> None:
        self.config, self.paths, self.workers = config, paths, workers
        self.device, self.precision, self.progress = device, precision, progress
        t = config.train
        world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
        self.local_batch = max(2, t.batch_size // world)
        torch.manual_seed(t.seed)
        # A run that will resume takes every weight from last.pt: its initial weights (a warm
        # start's source run) are not read again, so that run may since have been removed.
        model_cfg = replace(config.model, weights="none") if paths.last.is_file() else config.model
        self.model = build_model(model_cfg).to(device).to(memory_format=torch.channels_last)
        self.net: torch.nn.Module = self.model
        if world > 1:
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None)
        self.loss_fn = NTXentLoss(t.temperature)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
        self.views = BatchViews(t.image_size, config.augment)  # on the device, a batch at a time
        partners = (patient_partners(train_patients)
                    if t.patient_positives > 0 and train_patients is not None else None)
        self.train_set = FilmPairs(train_images, partners, t.patient_positives)
        self.val_set = FilmPairs(val_images)
        # Drop a last partial batch only when it would leave a single image (BatchNorm needs 2).
        self.drop_last = len(self.train_set) % self.local_batch == 1
        self.steps_per_epoch = max(1, len(self.train_set) // self.local_batch if self.drop_last
                                   else math.ceil(len(self.train_set) / self.local_batch))
        self.start_epoch, self.best_val, self.best_epoch = 0, math.inf, -1
        self._val_seconds: float | None = None  # the last validation's duration (for the ETA)

    def resume(self, checkpoint: dict[str, Any]) -> None:
        """Continue after the last complete epoch recorded in `checkpoint`."""
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.start_epoch = int(checkpoint["epoch"]) + 1
        self.best_val = float(checkpoint.get("best_val", math.inf))
        self.best_epoch = int(checkpoint.get("best_epoch", -1))

    def _loader(self, dataset: FilmPairs, epoch: int, shuffle: bool,
                workers: int | None = None) -> DataLoader:
        g = torch.Generator().manual_seed(self.config.train.seed * 1000 + epoch)
        sampler = None
        if dist.is_available() and dist.is_initialized():
            sampler = DistributedSampler(dataset, shuffle=shuffle, seed=self.config.train.seed,
                                         drop_last=self.drop_last)
            sampler.set_epoch(epoch)
        if workers is None:  # gathering uint8 films needs no process of its own unless asked
            workers = max(0, self.workers)
        return DataLoader(dataset, batch_size=self.local_batch, shuffle=shuffle and sampler is None,
                          sampler=sampler, drop_last=self.drop_last and shuffle, generator=g,
                          num_workers=workers, worker_init_fn=worker_init,
                          persistent_workers=False, pin_memory=self.device.type == "cuda")

    def _lr(self, epoch: int) -> float:
        t = self.config.train
        if not t.cosine_schedule:
            return t.lr
        return 0.5 * t.lr * (1 + math.cos(math.pi * epoch / t.epochs))

    def _views(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 1, S, S) uint8 films and partners -> two (B, 1, size, size) augmented views."""
        a = a.to(self.device, non_blocking=True)
        b = b.to(self.device, non_blocking=True)
        return self.views(a), self.views(b)

    def _step_loss(self, v1: torch.Tensor, v2: torch.Tensor) -> torch.Tensor:
        x = torch.cat([v1, v2]).to(self.device, non_blocking=True).contiguous(
            memory_format=torch.channels_last)  # (2B, 1, H, W)
        with autocast(self.device, self.precision):
            z = self.net(x)  # (2B, proj_dim)
        z1, z2 = z.float().chunk(2)
        return self.loss_fn(z1, z2)

    @torch.no_grad()
    def validate(self) -> float:
        """NT-Xent on the val split with fixed augmentation seeds (comparable across epochs)."""
        if len(self.val_set) < 2:
            return float("nan")
        self.net.eval()
        total, count = 0.0, 0
        with torch.random.fork_rng():
            torch.manual_seed(12345)  # fixed views; loader workers derive their seeds from it too
            for a, b in self._loader(self.val_set, epoch=-1, shuffle=False):
                if a.shape[0] < 2:
                    continue
                v1, v2 = self._views(a, b)
                total += float(self._step_loss(v1, v2)) * v1.shape[0]
                count += v1.shape[0]
        if not count:
            return float("nan")  # no val split
        return total / count if math.isfinite(total) else math.inf  # inf: diverged

    def fit(self, should_stop=lambda: False) -> TrainResult:
        """Train from `start_epoch` to the configured number of epochs."""
        t = self.config.train
        started, images_seen, stopped = time.time(), 0, False
        total_steps = t.epochs * self.steps_per_epoch
        epoch = self.start_epoch - 1
        for epoch in range(self.start_epoch, t.epochs):
            if should_stop():
                stopped = True
                break
            lr = self._lr(epoch)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            torch.manual_seed(t.seed * 1000 + epoch)
            self.net.train()
            t0, running, n = time.time(), 0.0, 0
            pace = _Pace(t0)
            batches = self._loader(self.train_set, epoch, shuffle=True)
            if self.progress and _is_main():  # a terminal: one tqdm bar per epoch
                from tqdm import tqdm

                batches = tqdm(batches, desc=f"epoch {epoch + 1}/{t.epochs}", leave=False)
            for step, (a, b) in enumerate(batches):
                v1, v2 = self._views(a, b)
                loss = self._step_loss(v1, v2)
                if not torch.isfinite(loss):  # stop before the optimizer spreads it to the weights
                    raise TrainingDiverged(
                        f"training diverged: the loss became {float(loss.detach())} at epoch {epoch + 1}, "
                        f"step {step + 1}; the last good checkpoint is kept (train again with a "
                        "lower --lr on a new --run)")
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                running += loss.item() * v1.shape[0]
                n += v1.shape[0]
                images_seen += v1.shape[0]
                done = epoch * self.steps_per_epoch + step + 1
                if _is_main() and pace.due(step + 1 == self.steps_per_epoch):
                    eta = pace.eta(total_steps - done, t.epochs - epoch, self._val_seconds)
                    write_status(self.paths, "running", epoch=epoch + 1, epochs=t.epochs,
                                 step=done, total=total_steps, eta_s=round(eta, 1))
                if should_stop():
                    stopped = True
                    break
            if stopped:
                break
            v0 = time.time()
            val = self.validate()
            self._val_seconds = time.time() - v0
            if math.isinf(val):
                raise TrainingDiverged(f"training diverged: the validation loss became {val} "
                                       f"at epoch {epoch + 1}; the last good checkpoint is kept "
                                       "(train again with a lower --lr on a new --run)")
            seconds = time.time() - t0
            self._end_epoch(epoch, running / max(n, 1), val, lr, seconds, n / max(seconds, 1e-6))
        done = epoch if stopped else epoch + 1  # a stopped epoch is not complete
        return TrainResult(done, self.best_val, self.best_epoch + 1, time.time() - started, stopped)

    def _end_epoch(self, epoch: int, train_loss: float, val: float, lr: float, seconds: float,
                   rate: float) -> None:
        improved = not math.isnan(val) and val < self.best_val
        if math.isnan(val) and math.isinf(self.best_val):
            improved = True  # no val split: keep the latest as best
        if improved:
            self.best_val, self.best_epoch = (val if not math.isnan(val) else math.inf), epoch
        if not _is_main():
            return
        val_text = "—" if math.isnan(val) else f"{val:.4f}"
        print(f"epoch {epoch + 1}/{self.config.train.epochs}: loss {train_loss:.4f} · val loss {val_text} · "
              f"{rate:.1f} images/s · {seconds:.1f} s", flush=True)  # one line per epoch in train.log
        append_jsonl(self.paths.metrics, {
            "epoch": epoch + 1, "train_loss": round(train_loss, 6),
            "val_loss": None if math.isnan(val) else round(val, 6), "lr": lr,
            "seconds": round(seconds, 3), "images_per_s": round(rate, 2)})
        if improved:
            save_checkpoint(self.paths.best, self.model, self.config, epoch=epoch, val_loss=val)
        save_checkpoint(self.paths.last, self.model, self.config, epoch=epoch,
                        optimizer=self.optimizer.state_dict(), best_val=self.best_val,
                        best_epoch=self.best_epoch)


class _Pace:
    """Step timing of one epoch: when to write the status, and the ETA from the running pace.

    The ETA uses this epoch's steps after the first (which waits for the loader to start), so
    it follows the current speed rather than an average over validations and start-up.
    """

    STATUS_EVERY_S = 1.0

    def __init__(self, start: float) -> None:
        self.start, self.last_write, self.steps = start, 0.0, 0
        self.first_done: float | None = None

    def due(self, last_step: bool) -> bool:
        """Count a finished step; True when the status should be written now."""
        now = time.time()
        self.steps += 1
        if self.first_done is None:
            self.first_done = now
        if last_step or self.steps == 1 or now - self.last_write >= self.STATUS_EVERY_S:
            self.last_write = now
            return True
        return False

    def eta(self, steps_left: int, validations_left: int, val_seconds: float | None) -> float:
        """Seconds left: steps at the running pace plus the validations still to run."""
        now = time.time()
        if self.steps > 1 and self.first_done is not None:
            per_step = (now - self.first_done) / (self.steps - 1)
        else:
            per_step = now - self.start
        return steps_left * per_step + validations_left * (val_seconds or 0.0)  # none yet: 0
