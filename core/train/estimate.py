"""How long a training will take, before it starts: images x epochs / images per second."""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass
from pathlib import Path

from core.files import read_json, read_jsonl
from core.run_folder import list_runs

# Training throughput of resnet18 on 2 CPU cores (AMD EPYC Zen 4, bf16), measured on an idle
# machine, with ~15% added so the estimate errs long: 224 px trains at 13.4 img/s end to end
# (`make bench`), i.e. ~600k px^2/s, and time scales with the pixel count down to ~96 px
# (63 img/s); below that per-step overheads cap it (64 px ran at 65 img/s, not 140).
CPU_PX2_PER_S_2CORES = 500_000.0
CPU_MAX_IMAGES_PER_S_2CORES = 55.0
CUDA_PX2_PER_S = 3_000_000.0  # conservative for any recent GPU
ARCH_COST = {"resnet18": 1.0, "resnet50": 2.5}
TRAIN_SHARE, VAL_SHARE = 0.8, 0.1  # core.data.splits default fractions
FORWARD_ONLY = 1 / 3  # validation and embedding run no backward pass


@dataclass(frozen=True)
class TrainEstimate:
    """Seconds for the whole run (training, validation, embedding), and what it rests on."""

    seconds: float
    images_per_s: float  # training throughput at the run's image size
    measured: bool  # True: from a past run in this workspace; False: a built-in figure
    basis: str  # one line saying where the throughput comes from


def _builtin_rate(image_size: int, arch: str, device: str) -> float:
    if device == "cuda":
        return CUDA_PX2_PER_S / ARCH_COST.get(arch, 1.0) / image_size**2
    cores = (os.cpu_count() or 2) / 2
    rate = min(CPU_PX2_PER_S_2CORES / image_size**2, CPU_MAX_IMAGES_PER_S_2CORES)
    return cores * rate / ARCH_COST.get(arch, 1.0)


def measured_rate(runs_dir: Path, image_size: int, arch: str, device: str) -> tuple[float, str] | None:
    """Images/s of the newest past run with the same arch, device and image size.

    Only the same image size counts: throughput does not scale between sizes by any one curve
    on a busy CPU (a 64 px demo run once gave a 4x wrong estimate for 96 px). The first epoch
    (warm-up) is left out when there are later ones.
    """
    for run in list_runs(runs_dir):
        config = read_json(run / "config.json", default={}) or {}
        report = read_json(run / "report.json", default={}) or {}
        if not isinstance(config, dict) or not isinstance(report, dict):
            continue  # a damaged file (the sidebar names it) measures nothing
        rates = [r["images_per_s"] for r in read_jsonl(run / "metrics.jsonl") if r.get("images_per_s")]
        rates = rates[1:] or rates
        run_device = str(report.get("device") or config.get("train", {}).get("device", "cpu"))
        size = config.get("train", {}).get("image_size")
        if not rates or size != image_size or config.get("model", {}).get("arch") != arch:
            continue
        if run_device.split(":")[0] != device:
            continue
        rate = statistics.median(rates)
        return rate, f"measured on run '{run.name}', {rate:.1f} img/s at {size} px"
    return None


def estimate_training(n_images: int, epochs: int, image_size: int, arch: str = "resnet18",
                      device: str = "cpu", runs_dir: Path | None = None,
                      warmup: tuple[float, str] | None = None) -> TrainEstimate:
    """Estimate a run's duration from the dataset size and the settings.

    Args:
        n_images: images in the dataset (about 80% train, 10% validate every epoch).
        epochs, image_size, arch: the run's settings.
        device: "cpu" or "cuda" (the one the run will use).
        runs_dir: past runs to take a measured throughput from, if any match.
        warmup: (images/s, basis) of a warm-up of this recipe measured on this machine
            (core.warmup); it comes before past runs, since it measured the present load.

    Returns:
        TrainEstimate; `seconds` counts every epoch's training and validation, plus one
        forward pass over all images for the index.
    """
    found = warmup or (measured_rate(runs_dir, image_size, arch, device) if runs_dir else None)
    if found:
        rate, basis = found
    else:
        rate = _builtin_rate(image_size, arch, device)
        where = "a GPU" if device == "cuda" else f"{os.cpu_count() or 2} CPU cores"
        basis = f"a built-in figure for {arch} on {where}, {rate:.1f} img/s at {image_size} px"
    per_epoch = n_images * (TRAIN_SHARE + VAL_SHARE * FORWARD_ONLY)
    seconds = (epochs * per_epoch + n_images * FORWARD_ONLY) / max(rate, 1e-9)
    return TrainEstimate(round(seconds, 1), round(rate, 2), found is not None, basis)
