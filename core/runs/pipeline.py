"""A whole training run: data -> split -> train -> embed -> index -> evaluate."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from core.config import ConfigError, RunConfig, Runtime
from core.data.added_films import read_added, run_films
from core.data.dataset import HEADER_CACHE, Dataset, DatasetError, ListingOptions, scan_folders
from core.data.splits import assign_splits, load_splits, save_splits
from core.device import resolve_device, resolve_precision, setup_cpu
from core.duplicates.search import resave_rows
from core.embed.embeddings import Embeddings
from core.embed.encoder import Encoder, embed_dataset
from core.files import atomic_write_json, read_json, read_jsonl, remove_temps, write_jsonl
from core.geometry.landmarks import LandmarkVerifier
from core.index.artifacts import write_artifact_set
from core.index.vectors import VectorIndex
from core.model.checkpoint import load_checkpoint
from core.model.network import check_initial_weights
from core.retrieval.evaluate import evaluate_run
from core.run_folder import RunError, RunPaths, hold_run_lock, write_status
from core.train.decoded_cache import decoded_films
from core.train.trainer import Trainer


def _dist_setup(device_name: str) -> bool:
    """Join the torchrun process group when launched by torchrun. Returns True if distributed."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return dist.is_initialized()
    use_cuda = device_name != "cpu" and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if use_cuda else "gloo")
    return True


def _check_resume(paths: RunPaths, config: RunConfig) -> RunConfig:
    """Reuse the saved config when resuming; only the epoch count may grow."""
    if not paths.config.exists():
        return config
    old = RunConfig.load(paths.config)  # a damaged one is named, never trained over
    if replace(old, train=replace(old.train, epochs=config.train.epochs)) != config:
        raise RunError(f"{paths.root} already holds a run with other settings; choose a new --run")
    return config


def prepare_data(config: RunConfig, paths: RunPaths) -> tuple[Dataset, list[str]]:
    """Scan the run's folders (`config.folders`: labels and views as the run says, headers
    cached in the run folder) and make (or reload) the run's split."""
    dataset = scan_folders(config.folders, options=ListingOptions(
        config.labels, config.views, paths.root / HEADER_CACHE))
    if paths.splits.is_file():
        samples, splits = load_splits(paths.splits)
        known = {s.path: s for s in dataset.samples}
        keep = [i for i, s in enumerate(samples) if s.path in known]
        samples = [replace(samples[i], header=known[samples[i].path].header) for i in keep]
        splits = [splits[i] for i in keep]
        dataset = Dataset(dataset.root, tuple(samples), dataset.skipped, dataset.layout)
    else:
        splits = assign_splits(dataset.samples, seed=config.train.split_seed)
        save_splits(paths.splits, dataset.samples, splits)
    return dataset, splits


@dataclass(frozen=True)
class RunReport:
    """What `train_run` hands back; `to_dict()` is report.json and `train --json`.

    A stopped run carries only `state` and `epochs_done` (and its dict only those keys).
    """

    state: str  # "finished" | "stopped"
    epochs_done: int
    data: str = ""
    layout: str = ""
    n_images: int = 0
    class_counts: dict[str, int] = field(default_factory=dict)
    split_counts: dict[str, int] = field(default_factory=dict)
    skipped: tuple[dict[str, str], ...] = ()  # {"path", "reason"}: scan, decode and embed
    best_epoch: int = 0
    best_val_loss: float | None = None
    train_seconds: float = 0.0
    device: str = ""
    precision: str = ""
    evaluation: dict[str, float] = field(default_factory=dict)  # test P@5, mAP, mAP@R
    wall_seconds: float = 0.0

    @property
    def n_skipped(self) -> int:
        return len(self.skipped)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> RunReport:
        """Read back report.json. Raises KeyError, TypeError, ValueError when it is not one."""
        known = {f: d[f] for f in RunReport.__dataclass_fields__ if f in d}
        known["skipped"] = tuple(dict(s) for s in known.get("skipped", ()))
        return RunReport(**known)

    def to_dict(self) -> dict[str, Any]:
        if self.state == "stopped":
            return {"state": self.state, "epochs_done": self.epochs_done}
        return {
            "state": self.state, "data": self.data, "layout": self.layout,
            "n_images": self.n_images, "class_counts": dict(self.class_counts),
            "split_counts": dict(self.split_counts), "skipped": [dict(s) for s in self.skipped],
            "epochs_done": self.epochs_done, "best_epoch": self.best_epoch,
            "best_val_loss": self.best_val_loss, "train_seconds": self.train_seconds,
            "device": self.device, "precision": self.precision, "n_skipped": self.n_skipped,
            "evaluation": dict(self.evaluation), "wall_seconds": self.wall_seconds,
        }


def load_report(run_dir: str | Path) -> RunReport | None:
    """The run's report.json; None when it is missing or not readable (training not finished)."""
    saved = read_json(RunPaths(Path(run_dir)).report, default=None)
    try:
        return RunReport.from_dict(saved) if isinstance(saved, dict) else None
    except (KeyError, TypeError, ValueError):
        return None


def train_run(config: RunConfig, run_dir: str | Path, *, runtime: Runtime | None = None,
              progress: bool = False) -> RunReport | None:
    """Train (or resume) a run, then embed, index and evaluate it.

    `runtime` (device, precision, loader workers) is not part of the run: a run resumes
    with other runtime choices.

    Returns:
        The run's report (also written to report.json); None on a non-zero torchrun rank.
    Raises:
        DatasetError, ConfigError, RunError, WeightsError: user errors, one-line messages.
    """
    setup_cpu()
    paths = RunPaths(Path(run_dir))
    runtime = (runtime or Runtime()).validate()
    distributed = _dist_setup(runtime.device)
    main = not distributed or dist.get_rank() == 0
    # One process per run folder (the app's jobs and the CLI alike); the others wait on rank 0.
    with hold_run_lock(paths) if main else contextlib.nullcontext():
        if main:
            remove_temps(paths.root)  # left by a killed writer: nobody else writes here now
        return _train_locked(config, paths, runtime, main, distributed, progress)


def _train_locked(config: RunConfig, paths: RunPaths, runtime: Runtime, main: bool,
                  distributed: bool, progress: bool) -> RunReport | None:
    config = _check_resume(paths, config)
    if not paths.last.is_file():  # a bad --weights is one line before any run file is written
        check_initial_weights(config.model)
    device = resolve_device(runtime.device)
    if distributed and device.type == "cuda":
        device = torch.device("cuda", torch.cuda.current_device())
    precision = resolve_precision(runtime.precision, device)
    dataset, splits = prepare_data(config, paths)  # the data checks come before any run file
    if main:
        atomic_write_json(paths.config, config.to_dict())
        write_status(paths, "starting", epoch=0, step=0, total=0, eta_s=None)
    stop = {"flag": False}

    def on_signal(signum: int, _frame: Any) -> None:
        stop["flag"] = True

    old_handler = signal.signal(signal.SIGTERM, on_signal)
    try:
        return _train_and_finish(config, paths, dataset, splits, device, precision, runtime.workers,
                                 main, progress,
                                 lambda: stop["flag"])
    except BaseException as e:
        if main:
            state = "stopped" if isinstance(e, KeyboardInterrupt) else "failed"
            write_status(paths, state, error=str(e).splitlines()[0] if str(e) else type(e).__name__)
        raise
    finally:
        signal.signal(signal.SIGTERM, old_handler)


def _train_and_finish(config: RunConfig, paths: RunPaths, dataset: Dataset, splits: list[str],
                      device: torch.device, precision: str, workers: int, main: bool,
                      progress: bool, should_stop) -> RunReport | None:
    started = time.time()
    size = int(round(config.train.image_size * 1.15))  # crops need a little more than the output
    files = [dataset.absolute(s) for s in dataset.samples]
    train_idx = [i for i, s in enumerate(splits) if s == "train"]
    val_idx = [i for i, s in enumerate(splits) if s == "val"]
    train_images, bad_train = decoded_films(paths.root, "train", [files[i] for i in train_idx], size,
                                            progress=progress and main)  # decoded once per run
    val_images, bad_val = decoded_films(paths.root, "val", [files[i] for i in val_idx], size)
    unreadable = {dataset.samples[train_idx[i]].path: r for i, r in bad_train.items()}
    unreadable.update({dataset.samples[val_idx[i]].path: r for i, r in bad_val.items()})
    if train_images.shape[0] < 2:
        raise DatasetError(f"only {train_images.shape[0]} readable training images in {dataset.root}")
    train_ok = [i for k, i in enumerate(train_idx) if k not in bad_train]  # decoded order
    trainer = Trainer(config, paths, train_images, val_images, device, precision, progress,
                      train_patients=[dataset.samples[i].patient_id for i in train_ok],
                      workers=workers)
    if paths.last.is_file():
        _resume(trainer, paths)
    if main:  # rows past the checkpoint: a kill between the metrics row and the checkpoint
        _trim_metrics(paths, trainer.start_epoch)
    if main:
        write_status(paths, "running", epoch=trainer.start_epoch, epochs=config.train.epochs,
                     step=trainer.start_epoch * trainer.steps_per_epoch,
                     total=config.train.epochs * trainer.steps_per_epoch, eta_s=None)
    result = trainer.fit(should_stop)
    if not main:
        return None
    if result.stopped:
        write_status(paths, "stopped", epoch=result.epochs_done, epochs=config.train.epochs)
        return RunReport("stopped", result.epochs_done)
    write_status(paths, "embedding", epoch=config.train.epochs, epochs=config.train.epochs)
    embeddings, bad_embed = embed_run(
        paths, dataset, splits, Encoder.from_run(paths.root, device, precision, which="best"),
        progress, on_stage=lambda stage: write_status(paths, stage, epoch=config.train.epochs,
                                                      epochs=config.train.epochs))
    unreadable.update(bad_embed)
    write_status(paths, "evaluating", epoch=config.train.epochs, epochs=config.train.epochs)
    evaluation = evaluate_run(paths.root, baselines=True, progress=progress, evidence=LandmarkVerifier)
    scores = evaluation.scores
    report = RunReport(
        "finished", result.epochs_done, data=str(dataset.root), layout=dataset.layout,
        n_images=len(embeddings), class_counts=dataset.class_counts(),
        split_counts={s: embeddings.splits.count(s) for s in ("train", "val", "test")},
        skipped=tuple([asdict(s) for s in dataset.skipped]
                      + [{"path": p, "reason": r} for p, r in sorted(unreadable.items())]),
        best_epoch=result.best_epoch,
        best_val_loss=None if math.isinf(result.best_val_loss) else round(result.best_val_loss, 6),
        train_seconds=round(result.seconds, 1), device=str(device), precision=precision,
        evaluation={"precision_at_5": scores.precision_at_5, "map": scores.map,
                    "map_at_r": scores.map_at_r,
                    "same_patient_p1": (evaluation.same_patient or {}).get("precision_at_1"),
                    "same_patient_verified_p1": ((evaluation.same_patient or {}).get("verified")
                                                 or {}).get("precision_at_1")},
        wall_seconds=round(time.time() - started, 1))
    atomic_write_json(paths.report, report.to_dict())
    write_status(paths, "finished", epoch=config.train.epochs, epochs=config.train.epochs,
                 step=None, total=None, eta_s=0)
    return report


def _resume(trainer: Trainer, paths: RunPaths) -> None:
    """Continue from last.pt; a damaged or foreign one is a one-line RunError, not a traceback.

    Our own writes are atomic, so this only meets a file replaced or cut by hand (or by a copy).
    """
    try:
        checkpoint = load_checkpoint(paths.last)
    except Exception as e:  # torch raises OSError, RuntimeError or UnpicklingError by damage
        raise RunError(f"corrupt checkpoint {paths.last} ({type(e).__name__}); delete it to "
                       "train this run from the start, or choose a new --run") from None
    try:
        trainer.resume(checkpoint)
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise RunError(f"checkpoint {paths.last} does not fit this run ({type(e).__name__}); "
                       "delete it to train from the start, or choose a new --run") from None


def _trim_metrics(paths: RunPaths, start_epoch: int) -> None:
    """Drop metric rows of epochs after the checkpoint (a kill between the two writes),
    all of them when there is no checkpoint yet (`start_epoch` 0)."""
    rows = read_jsonl(paths.metrics)
    keep = [r for r in rows if isinstance(r, dict) and _epoch(r) is not None
            and _epoch(r) <= start_epoch]  # a damaged row (not an epoch's) goes with them
    if len(keep) != len(rows):
        write_jsonl(paths.metrics, keep)


def _epoch(row: dict[str, Any]) -> int | None:
    """A metrics row's epoch; None for a row that is not one (damaged by hand or a copy)."""
    epoch = row.get("epoch", 0)
    return epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else None


def embed_run(paths: RunPaths, dataset: Dataset, splits: list[str], encoder: Encoder,
              progress: bool = False,
              on_stage: Callable[[str], None] = lambda stage: None) -> tuple[Embeddings, dict[str, str]]:
    """Embed the run's films with `encoder` (the run's best checkpoint) and switch the run to
    the new artifact set; returns the embeddings and {path: reason} for unreadable files.

    The run's films are its dataset plus every film added to it since (`added.csv`, see
    `core.data.added_films`), so re-embedding or retraining keeps what `add` brought in; the
    saved duplicate search's rows follow the films to their new rows.

    The set (checkpoint, embeddings, items, index) is written as a new generation beside the
    served one and switched in by one rename (core.index.artifacts): a kill at any point
    leaves the old set served, whole. The caller holds the run's lock.
    """
    from core.model.checkpoint import training_checkpoint

    checkpoint = training_checkpoint(paths.root)
    films, film_splits = run_films(dataset, splits, read_added(paths))
    embeddings, bad = embed_dataset(encoder, films, splits=film_splits, progress=progress)
    on_stage("indexing")
    index = VectorIndex.build(embeddings.vectors)
    write_artifact_set(paths.root, embeddings, index, checkpoint)
    resave_rows(paths.root, embeddings.paths)
    return embeddings, bad


__all__ = ["RunReport", "load_report", "train_run", "embed_run", "prepare_data", "ConfigError"]
