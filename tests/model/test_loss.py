"""NT-Xent: symmetry, closed form, gradient flow."""

import math

import pytest
import torch

from core.model.loss import NTXentLoss


def test_symmetric_in_views():
    torch.manual_seed(0)
    z1, z2 = torch.randn(8, 16), torch.randn(8, 16)
    loss = NTXentLoss(0.5, gather_distributed=False)
    assert loss(z1, z2).item() == pytest.approx(loss(z2, z1).item(), abs=1e-6)


@pytest.mark.parametrize("t", [0.1, 0.5, 1.0])
def test_closed_form_for_identical_orthogonal_pairs(t):
    b = 4
    z = torch.eye(8)[:b]  # views identical, images orthogonal: cos 1 to the positive, 0 otherwise
    expected = -math.log(math.exp(1 / t) / (math.exp(1 / t) + 2 * b - 2))
    assert NTXentLoss(t, False)(z, z).item() == pytest.approx(expected, rel=1e-3, abs=1e-6)


def test_invariant_to_scale_and_lower_for_aligned_views():
    torch.manual_seed(1)
    z1 = torch.randn(16, 32)
    loss = NTXentLoss(0.5, False)
    aligned = loss(z1, z1 + 0.01 * torch.randn_like(z1))
    random = loss(z1, torch.randn(16, 32))
    assert aligned < random
    assert loss(z1, 3 * z1).item() == pytest.approx(loss(z1, z1).item(), abs=1e-5)


def test_gradients_reach_both_views():
    z1 = torch.randn(6, 8, requires_grad=True)
    z2 = torch.randn(6, 8, requires_grad=True)
    NTXentLoss(0.5, False)(z1, z2).backward()
    assert z1.grad.abs().sum() > 0 and z2.grad.abs().sum() > 0


def test_rejects_bad_temperature():
    with pytest.raises(ValueError):
        NTXentLoss(0.0)
