"""Training time estimates: built-in figures scale with pixels; measured runs take over."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.config import PRESETS
from core.train.estimate import estimate_training


def test_builtin_estimate_scales_with_images_epochs_and_pixels(monkeypatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    a = estimate_training(1000, 10, 128)
    assert not a.measured and "built-in" in a.basis
    assert estimate_training(2000, 10, 128).seconds == pytest.approx(2 * a.seconds, rel=1e-3)
    assert estimate_training(1000, 10, 256).seconds == pytest.approx(4 * a.seconds, rel=1e-3)
    assert estimate_training(1000, 10, 128, arch="resnet50").seconds > a.seconds
    assert estimate_training(1000, 10, 128, device="cuda").seconds < a.seconds
    # small images: per-step overheads, not pixels, set the pace
    assert estimate_training(1000, 10, 32).seconds == estimate_training(1000, 10, 64).seconds


def test_builtin_estimate_of_the_quick_preset_by_hand(monkeypatch) -> None:
    # 2 cores, 64 px: min(500000 / 64^2, 55) = 55 img/s (the per-step cap); 1,000 images,
    # 12 epochs: 12 x (800 train + 100 val / 3) + 1000 embedded / 3 = 10,333.3 image passes
    # -> 187.9 s (the built-in figure is for a bf16 CPU; an AVX2-only one takes longer).
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    quick = PRESETS["quick"].train
    assert (quick.image_size, quick.epochs) == (64, 12)
    e = estimate_training(1000, quick.epochs, quick.image_size)
    assert e.images_per_s == pytest.approx(55.0, abs=0.01)
    assert e.seconds == pytest.approx(10_333.33 / 55.0, abs=0.1)
    # 96 px, 20 epochs (quick before): min(500000 / 96^2, 55) = 54.25 img/s, 17,000 passes
    assert estimate_training(1000, 20, 96).seconds == pytest.approx(17_000 / (500_000 / 96**2), abs=0.1)
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    assert estimate_training(1000, 12, 64).seconds == pytest.approx(e.seconds / 2, abs=0.1)


def test_measured_run_gives_the_rate(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(
        {"model": {"arch": "resnet18"}, "train": {"image_size": 32, "device": "auto"}}))
    (run / "report.json").write_text(json.dumps({"device": "cpu"}))
    (run / "metrics.jsonl").write_text("".join(
        json.dumps({"epoch": i, "images_per_s": r}) + "\n" for i, r in enumerate((5.0, 30.0, 50.0))))
    e = estimate_training(100, 3, 32, runs_dir=tmp_path / "runs")
    assert e.measured and "r1" in e.basis
    assert e.images_per_s == pytest.approx(40.0)  # median after the first (warm-up) epoch
    # 3 epochs x (80 train + 10 val / 3) + 100 embedded / 3, at 40 img/s
    assert e.seconds == pytest.approx((3 * (80 + 10 / 3) + 100 / 3) / 40, abs=0.1)
    assert not estimate_training(100, 3, 32, arch="resnet50", runs_dir=tmp_path / "runs").measured
    assert not estimate_training(100, 3, 32, device="cuda", runs_dir=tmp_path / "runs").measured
    assert not estimate_training(100, 3, 64, runs_dir=tmp_path / "runs").measured  # another size


def test_a_run_at_another_image_size_is_not_taken_as_measured(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "r2"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(
        {"model": {"arch": "resnet18"}, "train": {"image_size": 160}}))
    (run / "metrics.jsonl").write_text("".join(
        json.dumps({"epoch": i, "images_per_s": r}) + "\n" for i, r in enumerate((9.0, 20.0, 20.0))))
    assert estimate_training(100, 3, 160, runs_dir=tmp_path / "runs").images_per_s == pytest.approx(20.0)
    assert not estimate_training(100, 3, 320, runs_dir=tmp_path / "runs").measured
