"""Encoder and head shapes; weights options."""

import pytest
import torch

from core.config import ModelConfig
from core.model.network import ProjectionHead, WeightsError, build_model


def test_head_is_linear_bn_relu_linear():
    head = ProjectionHead(512, 512, 128)
    kinds = [type(m).__name__ for m in head.layers]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert head(torch.randn(4, 512)).shape == (4, 128)


def test_resnet18_shapes_on_grayscale():
    model = build_model(ModelConfig(weights="none")).eval()
    x = torch.randn(2, 1, 32, 32)
    assert model.embed(x).shape == (2, 512)
    assert model(x).shape == (2, 128)


def test_state_dict_path_roundtrip(tmp_path):
    model = build_model(ModelConfig(weights="none"))
    path = tmp_path / "backbone.pt"
    torch.save(model.backbone.state_dict(), path)
    again = build_model(ModelConfig(weights=str(path)))
    x = torch.randn(2, 1, 32, 32)
    model.eval(), again.eval()
    assert torch.allclose(model.embed(x), again.embed(x))


def test_rgb_state_dict_is_summed_to_one_channel(tmp_path):
    import torchvision

    rgb = torchvision.models.resnet18(weights=None)
    path = tmp_path / "rgb.pt"
    torch.save(rgb.state_dict(), path)
    gray = build_model(ModelConfig(weights=str(path)))
    assert torch.allclose(gray.backbone.conv1.weight, rgb.conv1.weight.sum(1, keepdim=True))


def test_bad_weights_give_one_line_errors(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        build_model(ModelConfig(weights=str(tmp_path / "missing.pt")))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read"):
        build_model(ModelConfig(weights=str(junk)))
    r50 = tmp_path / "r50.pt"
    torch.save(build_model(ModelConfig(arch="resnet50", weights="none")).backbone.state_dict(), r50)
    with pytest.raises(WeightsError, match="do not fit"):
        build_model(ModelConfig(weights=str(r50)))


def test_imagenet_offline_names_the_alternatives(monkeypatch):
    import torchvision

    def offline(*a, **k):
        raise OSError("network unreachable")

    monkeypatch.setattr(torchvision.models.ResNet18_Weights.IMAGENET1K_V1.__class__, "get_state_dict",
                        offline, raising=False)
    with pytest.raises(WeightsError) as err:
        build_model(ModelConfig(weights="imagenet"))
    assert "--weights none" in str(err.value) and "--weights PATH" in str(err.value)
    assert "\n" not in str(err.value)
