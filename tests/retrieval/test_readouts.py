"""benchmarks.readouts: its first line is the run's own evaluation; whitening is fitted on train."""

import json

import numpy as np
import pytest

from benchmarks.readouts import GeM, Readouts, readouts


def test_the_runs_own_readout_scores_what_evaluate_saved(tiny_workspace):
    r = Readouts(tiny_workspace.run_dir)
    saved = json.loads((tiny_workspace.run_dir / "evaluation.json").read_text())
    made = readouts(r)
    vectors = made["the run's embedding"]()
    # The same vectors as the run's, up to rounding: the saved ones come from the BatchNorm-folded
    # model, in bf16 where the CPU has it (AMX, AVX512-BF16), and so do the read-outs.
    cosine = np.sum(vectors / np.linalg.norm(vectors, axis=1, keepdims=True) * r.emb.vectors, axis=1)
    assert cosine.min() > (0.999 if r.encoder.precision == "bf16" else 0.99999)
    # ... scored with evaluate's protocol: the saved vectors give the saved figures exactly.
    p5, map_, map_r, _ = r.score(r.emb.vectors)["test"]
    assert (p5, map_, map_r) == pytest.approx((saved["precision_at_5"], saved["map"], saved["map_at_r"]), abs=1e-6)


def test_whitening_gives_the_training_films_unit_variance(tiny_workspace):
    r = Readouts(tiny_workspace.run_dir)
    w = r.whiten(r.emb.vectors, dim=4, shrink=0.0)
    assert w.shape == (len(r.emb), 4)
    assert np.cov(w[r.split == "train"].T) == pytest.approx(np.eye(4), abs=1e-3)


def test_gem_with_p_1_is_average_pooling():
    import torch

    x = torch.rand(2, 3, 4, 4)
    assert torch.allclose(GeM(1.0)(x), x.mean((-2, -1)), atol=1e-6)


def _separation(f: np.ndarray, labels: np.ndarray) -> float:
    """Distance between the two class means of unit features over the mean within-class spread."""
    f = f / np.linalg.norm(f, axis=1, keepdims=True)
    means = [f[labels == c].mean(0) for c in (0, 1)]
    spread = np.mean([np.linalg.norm(f[labels == c] - means[c], axis=1).mean() for c in (0, 1)])
    return float(np.linalg.norm(means[0] - means[1]) / spread)


def test_the_supervised_ceiling_learns_the_labels():
    import torch

    from benchmarks.supervised import pooled_features, train_supervised
    from core.config import ModelConfig, RunConfig
    from core.model.network import build_backbone

    # A problem only the labels decide: a bright square top left (class 0) or bottom right (1).
    images = torch.randint(60, 100, (32, 1, 32, 32), generator=torch.Generator().manual_seed(0)).to(torch.uint8)
    labels = np.array([0, 1] * 16)
    for i, y in enumerate(labels):
        r = 4 if y == 0 else 20
        images[i, 0, r:r + 8, r:r + 8] = 230
    torch.manual_seed(0)  # the weights train_supervised starts from
    before = _separation(pooled_features(build_backbone(ModelConfig(weights="none")).eval(), images), labels)
    trained = train_supervised(images, labels, np.arange(32), RunConfig(data="unused"), epochs=4, seed=0, size=32)
    after = _separation(pooled_features(trained, images), labels)
    assert after > 1.4 * before, (before, after)


def test_the_supervised_ceiling_prints_the_run_and_the_label_trained_encoder(tiny_workspace, capsys):
    from benchmarks.readouts import format_scores, score_splits
    from benchmarks.supervised import main
    from core.embed.embeddings import Embeddings

    assert main([str(tiny_workspace.run_dir), "--epochs", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    emb = Embeddings.load(tiny_workspace.run_dir)
    assert out[1].startswith("the run: self-supervised")
    assert out[1].endswith(format_scores(score_splits(emb.vectors, emb)))
    assert out[2].startswith("labels: 1 epochs") and len(out[2].split("|")[1].split()) == 4


@pytest.mark.parametrize("module", ["benchmarks.readouts", "benchmarks.supervised"])
def test_a_folder_that_is_not_a_run_gets_one_line(module, tmp_path, capsys):
    import importlib

    assert importlib.import_module(module).main([str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and str(tmp_path) in err and "\n" not in err
