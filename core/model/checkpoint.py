"""Checkpoints: save atomically, load with weights_only=True, rebuild a run's model from one."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from core.config import RunConfig
from core.files import atomic_write_bytes
from core.model.network import SimCLRModel, WeightsError, build_model
from core.run_folder import RunError, RunPaths


def save_checkpoint(path: Path, model: SimCLRModel, config: RunConfig, **extra: Any) -> None:
    """Atomically write {model, config, ...}: a crash mid-write leaves the old file intact."""
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "config": config.to_dict(), **extra}, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint with weights_only=True (no pickled code is ever run)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def training_checkpoint(run_dir: str | Path) -> Path:
    """The checkpoint a new embedding pass uses: best.pt, else last.pt."""
    paths = RunPaths(Path(run_dir), generation=None)
    return paths.best if paths.best.is_file() else paths.last


def load_run_model(run_dir: str | Path, device: torch.device | None = None,
                   which: str = "served", checkpoint: Path | None = None
                   ) -> tuple[SimCLRModel, RunConfig]:
    """Rebuild a run's model from its checkpoint (weights_only=True) in eval mode.

    Args:
        run_dir: the run folder.
        device: where to put it (CPU by default).
        which: 'served', the checkpoint that made the run's served embeddings and index
            (what a query must be embedded with; best.pt in folders from before artifact
            sets); 'best', the training's best.pt (else last.pt), for a new embedding pass;
            or 'last'.
        checkpoint: this file instead (an artifact set's own, already resolved).

    Raises:
        RunError: no checkpoint, or a corrupt one.
        WeightsError: the checkpoint's weights or architecture do not fit the run.
    """
    paths = RunPaths(Path(run_dir))
    if checkpoint is not None:
        path = Path(checkpoint)
    elif which == "served":
        path = paths.model
    elif which == "best":
        path = training_checkpoint(paths.root)
    else:
        path = paths.last
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
    if not paths.config.exists():  # the checkpoint's own config decides
        return
    run_arch = RunConfig.load(paths.config).model.arch  # a damaged config.json is named
    if run_arch and run_arch != config.model.arch:
        raise WeightsError(f"checkpoint {path} holds a {config.model.arch} model but this run "
                           f"is {run_arch}; copy back this run's own checkpoint or train again")


def _offline(config: RunConfig) -> RunConfig:
    """The checkpoint holds every weight: never download or re-read initial weights."""
    from dataclasses import replace

    return replace(config, model=replace(config.model, weights="none"))
