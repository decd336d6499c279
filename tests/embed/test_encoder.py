"""The one Encoder (a run's model, image size, device, precision) and embed_dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.config import make_run_config
from core.data.dataset import scan_dataset
from core.embed.encoder import Encoder, embed_dataset
from core.files import atomic_write_json
from core.model.checkpoint import save_checkpoint
from core.model.network import build_model
from core.run_folder import RunError, RunPaths


def _folder(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 255, (40, 40), dtype=np.uint8)).save(root / label / f"{i}.png")
    (root / "b" / "broken.png").write_bytes(b"not a png")  # listed by the scan, unreadable
    return root


def _run(tmp_path: Path, data: Path) -> Path:
    config = make_run_config(str(data), "tiny")
    torch.manual_seed(0)
    model = build_model(config.model)
    run = tmp_path / "run"
    run.mkdir()
    atomic_write_json(RunPaths(run).config, config.to_dict())
    save_checkpoint(RunPaths(run).best, model.eval(), config)
    return run


def test_from_run_takes_size_and_batch_from_the_run(tmp_path):
    run = _run(tmp_path, _folder(tmp_path / "data"))
    enc = Encoder.from_run(run, "cpu", precision="fp32")
    assert (enc.image_size, enc.precision, enc.batch_size) == (32, "fp32", 16)  # the tiny preset
    assert enc.device == torch.device("cpu") and enc.config.preset == "tiny"
    assert Encoder.from_run(run, "cpu", precision="bf16", batch_size=4).batch_size == 4


def test_from_run_without_checkpoint_is_a_run_error(tmp_path):
    with pytest.raises(RunError, match="no checkpoint"):
        Encoder.from_run(tmp_path, "cpu")


def test_embed_dataset_drops_unreadable_files_with_reasons(tmp_path):
    data = _folder(tmp_path / "data")
    enc = Encoder.from_run(_run(tmp_path, data), "cpu", precision="fp32")
    dataset = scan_dataset(data)
    assert len(dataset.samples) == 5
    emb, skipped = embed_dataset(enc, dataset, splits=["train", "val", "test", "x", "y"])
    assert list(skipped) == ["b/broken.png"] and skipped["b/broken.png"]
    assert emb.paths == ["a/0.png", "a/1.png", "b/0.png", "b/1.png"]
    assert emb.labels == ["a", "a", "b", "b"] and emb.splits == ["train", "val", "test", "x"]
    assert emb.vectors.shape == (4, 512)
    np.testing.assert_allclose(np.linalg.norm(emb.vectors, axis=1), 1.0, atol=1e-5)

    files = [dataset.absolute(s) for s in dataset.samples]
    vectors, bad = embed_dataset(enc, files)
    assert list(bad) == [4] and vectors.shape == (4, 512)  # the file list keeps indices
    np.testing.assert_allclose(vectors, emb.vectors, atol=1e-6)

    # pixels embedded directly (BatchNorm not folded) agree with the folded file path
    pixels = [np.asarray(Image.open(f), np.float32) / 255 for f in files[:4]]
    direct = enc.embed(pixels)
    assert (direct * vectors).sum(axis=1).min() > 0.9999
