"""SimCLR model: a torchvision ResNet backbone plus a projection head."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import torch
import torchvision
from torch import nn

from core.config import ModelConfig
from core.errors import UserError
from core.run_folder import RunPaths


class WeightsError(UserError, RuntimeError):
    """Encoder weights could not be obtained or do not fit (one-line message)."""


class ProjectionHead(nn.Module):
    """A list of blocks: Linear -> BatchNorm1d -> ReLU -> Linear (SimCLR's g(.))."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(in_dim, hidden_dim),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, out_dim),
        )

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.layers(h)  # (B, out_dim)


class SimCLRModel(nn.Module):
    """`forward` returns the projection z for the loss; `embed` the backbone features h."""

    def __init__(self, backbone: nn.Module, head: ProjectionHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) -> (B, feature_dim) backbone features (used for retrieval)."""
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))  # (B, proj_dim)


def _imagenet_state_dict(arch: str) -> dict[str, torch.Tensor]:
    enum = {"resnet18": torchvision.models.ResNet18_Weights,
            "resnet50": torchvision.models.ResNet50_Weights}[arch]
    try:  # torch.hub writes a "Downloading" line to stdout; offline we want our one line only
        with contextlib.redirect_stdout(io.StringIO()):
            return enum.DEFAULT.get_state_dict(progress=False)
    except Exception as e:  # urllib/ssl/socket errors differ by platform; all mean "no download"
        raise WeightsError(
            f"could not download ImageNet weights for {arch} ({type(e).__name__}); "
            "offline? use --weights none (random init) or --weights PATH (a state dict)"
        ) from None


def imagenet_weights_available(arch: str = "resnet18") -> bool:
    """True when torchvision's ImageNet weights are already in the local cache."""
    enum = {"resnet18": torchvision.models.ResNet18_Weights,
            "resnet50": torchvision.models.ResNet50_Weights}[arch]
    name = Path(enum.DEFAULT.url).name
    return (Path(torch.hub.get_dir()) / "checkpoints" / name).is_file()


def weights_file(path: str) -> Path:
    """The checkpoint `--weights` names: a run folder's best.pt (else last.pt), or the file.

    Raises:
        WeightsError: nothing there, or a folder without a checkpoint.
    """
    p = Path(path).expanduser()
    if p.is_dir():
        run = RunPaths(p, generation=None)
        for candidate in (run.best, run.last):
            if candidate.is_file():
                return candidate
        raise WeightsError(f"no checkpoint (best.pt or last.pt) in {p}: --weights takes a trained "
                           "run folder, a state dict file, imagenet or none")
    if not p.is_file():
        raise WeightsError(f"weights file not found: {p} (use --weights imagenet|none|RUN|PATH)")
    return p


def _load_state_file(path: str, arch: str) -> dict[str, torch.Tensor]:
    p = weights_file(path)
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:
        raise WeightsError(f"cannot read weights file {p}: {type(e).__name__}") from None
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        saved = state.get("config")  # one of our checkpoints: its config names the encoder
        other = saved.get("model", {}).get("arch") if isinstance(saved, dict) else None
        if isinstance(other, str) and other != arch:
            raise WeightsError(f"{p} holds a {other} encoder, not {arch} (train with --arch {other}, "
                               "or warm-start from a run of the same encoder)")
        state = state["model"]
        state = {k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")}
    if not isinstance(state, dict):
        raise WeightsError(f"{p} does not hold a state dict")
    return state


def check_initial_weights(cfg: ModelConfig) -> None:
    """Raise WeightsError (one line) now if `cfg.weights` names a file or run that cannot
    start this encoder; "imagenet" and "none" are not checked (nothing to read here)."""
    if cfg.weights not in ("imagenet", "none", "", None):
        build_backbone(cfg)


def build_backbone(cfg: ModelConfig) -> nn.Module:
    """A torchvision ResNet with its classifier removed and conv1 taking `in_channels`.

    ImageNet conv1 weights are summed over RGB, which gives the same response to a gray
    image replicated to three channels, at a third of the first layer's cost.
    """
    net = getattr(torchvision.models, cfg.arch)(weights=None)
    state: dict[str, torch.Tensor] | None = None
    if cfg.weights == "imagenet":
        state = _imagenet_state_dict(cfg.arch)
    elif cfg.weights not in ("none", "", None):
        state = _load_state_file(cfg.weights, cfg.arch)
    if state is not None:
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        w = state.get("conv1.weight")
        if w is not None and w.shape[1] != cfg.in_channels:
            state["conv1.weight"] = w.sum(dim=1, keepdim=True).repeat(1, cfg.in_channels, 1, 1)
    net.conv1 = nn.Conv2d(cfg.in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    net.fc = nn.Identity()
    if state is not None:
        try:
            missing, unexpected = net.load_state_dict(state, strict=False)
        except RuntimeError:
            raise WeightsError(f"weights {cfg.weights} do not fit {cfg.arch} (tensor shapes differ)") from None
        if unexpected or [m for m in missing if not m.startswith("fc.")]:
            raise WeightsError(f"weights {cfg.weights} do not fit {cfg.arch} ({len(missing)} missing, "
                               f"{len(unexpected)} unexpected keys)")
    return net


def build_model(cfg: ModelConfig) -> SimCLRModel:
    """Backbone plus projection head (512 -> 512 -> 128 for resnet18)."""
    return SimCLRModel(build_backbone(cfg), ProjectionHead(cfg.feature_dim, cfg.hidden_dim, cfg.proj_dim))
