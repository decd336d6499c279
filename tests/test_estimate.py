"""Training time estimates: built-in figures scale with pixels; measured runs take over."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.estimate import estimate_training


def test_builtin_estimate_scales_with_images_epochs_and_pixels() -> None:
    a = estimate_training(1000, 10, 64)
    assert not a.measured and "built-in" in a.basis
    assert estimate_training(2000, 10, 64).seconds == pytest.approx(2 * a.seconds, rel=1e-3)
    assert estimate_training(1000, 10, 128).seconds == pytest.approx(4 * a.seconds, rel=1e-3)
    assert estimate_training(1000, 10, 64, arch="resnet50").seconds > a.seconds
    assert estimate_training(1000, 10, 64, device="cuda").seconds < a.seconds


def test_measured_run_gives_the_rate(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(
        {"model": {"arch": "resnet18"}, "train": {"image_size": 32, "device": "auto"}}))
    (run / "report.json").write_text(json.dumps({"device": "cpu"}))
    (run / "metrics.jsonl").write_text("".join(
        json.dumps({"epoch": i, "images_per_s": r}) + "\n" for i, r in enumerate((5.0, 30.0, 50.0))))
    e = estimate_training(100, 3, 64, runs_dir=tmp_path / "runs")
    assert e.measured and "r1" in e.basis
    assert e.images_per_s == pytest.approx(40.0 / 4)  # median after warm-up, scaled by (32/64)^2
    # 3 epochs x (80 train + 10 val / 3) + 100 embedded / 3, at 10 img/s
    assert e.seconds == pytest.approx((3 * (80 + 10 / 3) + 100 / 3) / 10, abs=0.1)
    assert not estimate_training(100, 3, 64, arch="resnet50", runs_dir=tmp_path / "runs").measured
    assert not estimate_training(100, 3, 64, device="cuda", runs_dir=tmp_path / "runs").measured
    assert not estimate_training(100, 3, 224, runs_dir=tmp_path / "runs").measured  # 32 px is too far
