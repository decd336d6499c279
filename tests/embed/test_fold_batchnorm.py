"""Folding BatchNorm into the convolutions for embedding keeps the embeddings."""

from __future__ import annotations

import torch

from core.config import ModelConfig
from core.embed.encoder import embed_tensor, fold_batchnorm
from core.model.network import build_model


def _model_with_running_stats() -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(ModelConfig(weights="none"))
    model.train()
    with torch.no_grad():  # non-trivial running mean/var, so the fold has something to fold
        for _ in range(3):
            model(torch.randn(4, 1, 32, 32) * 2 + 0.5)
    return model.eval()


def test_folded_model_gives_the_same_embeddings():
    model = _model_with_running_stats()
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.backbone.modules())
    x = torch.randn(3, 1, 32, 32)
    cpu = torch.device("cpu")
    ours = embed_tensor(folded, x, cpu, "fp32")  # (3, 512)
    ref = embed_tensor(model, x, cpu, "fp32")
    assert ours.shape == (3, 512)
    assert (ours * ref).sum(axis=1).min() > 0.99999


def test_original_model_is_left_as_it_was():
    model = _model_with_running_stats()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fold_batchnorm(model)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.backbone.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
