"""Configuration dataclasses, saved inside every checkpoint so a run can rebuild its model."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from core.errors import UserError

ARCHS = ("resnet18", "resnet50")
FEATURE_DIMS = {"resnet18": 512, "resnet50": 2048}


class ConfigError(UserError):
    """A setting the user gave cannot be used (one-line message)."""


@dataclass(frozen=True)
class ModelConfig:
    """Encoder and projection head.

    The head follows SimCLR (Chen et al. 2020): Linear -> BatchNorm1d -> ReLU -> Linear.
    """

    arch: str = "resnet18"
    weights: str = "imagenet"  # "imagenet" | "none" | path to a state dict
    hidden_dim: int = 512
    proj_dim: int = 128
    in_channels: int = 1  # radiographs are grayscale; ImageNet conv1 is summed over RGB

    @property
    def feature_dim(self) -> int:
        return FEATURE_DIMS[self.arch]


@dataclass(frozen=True)
class AugmentConfig:
    """Radiograph augmentations (see core.model.transforms.XRayViews)."""

    crop_scale_min: float = 0.6
    rotation_deg: float = 10.0
    brightness: float = 0.3
    contrast: float = 0.3
    blur_prob: float = 0.3
    blur_sigma_max: float = 1.0
    hflip: bool = False  # flipping changes laterality (heart on the wrong side): opt-in


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings. Defaults are the shipped `seed` recipe."""

    epochs: int = 50
    batch_size: int = 64
    image_size: int = 224
    lr: float = 1e-3
    weight_decay: float = 0.0
    temperature: float = 0.5
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    precision: str = "auto"  # auto (bf16 where the CPU/GPU has it) | fp32 | bf16
    num_workers: int = -1  # -1: pick from the CPU count
    cosine_schedule: bool = False
    split_seed: int = 0
    # Probability that an image's positive is another film of its patient (MedAug, Vu et al.
    # 2021; MICLe, Azizi et al. 2021) instead of a second view of itself; needs patient ids.
    patient_positives: float = 0.0


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs, saved with its checkpoint."""

    data: str
    preset: str = "seed"
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> RunConfig:
        return RunConfig(
            data=d["data"],
            preset=d.get("preset", "seed"),
            model=_build(ModelConfig, d.get("model", {})),
            augment=_build(AugmentConfig, d.get("augment", {})),
            train=_build(TrainConfig, d.get("train", {})),
        )


def _build(cls: type, values: dict[str, Any]) -> Any:
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in known})


# `quick` departs from the seed recipe where measurements on ../shared/data/cxr said so
# (README "Presets"): smaller images and more epochs fit ~1,000 images in 5 CPU minutes.
PRESETS: dict[str, tuple[TrainConfig, AugmentConfig]] = {
    "seed": (TrainConfig(), AugmentConfig()),
    "quick": (
        TrainConfig(epochs=20, batch_size=64, image_size=96, lr=1e-3, temperature=0.2,
                    cosine_schedule=True),
        # milder crops and photometric jitter: exposure and framing carry signal on radiographs
        AugmentConfig(crop_scale_min=0.7, brightness=0.15, contrast=0.15, blur_prob=0.2),
    ),
    "demo": (  # the in-app demo model: under 2 minutes on a 2-core CPU
        TrainConfig(epochs=8, batch_size=32, image_size=64, lr=1e-3, temperature=0.2,
                    cosine_schedule=True),
        AugmentConfig(crop_scale_min=0.5),
    ),
    "tiny": (  # tests: seconds, not minutes
        TrainConfig(epochs=2, batch_size=16, image_size=32, lr=1e-3, temperature=0.5),
        AugmentConfig(),
    ),
}


def make_run_config(data: str, preset: str = "seed", *, arch: str | None = None,
                    weights: str | None = None, **train_overrides: Any) -> RunConfig:
    """Build a RunConfig from a preset plus the options the user set (None = keep preset).

    Raises:
        ConfigError: unknown preset/arch, or a non-positive size/epoch/batch/lr/temperature.
    """
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset '{preset}' (choose from {', '.join(PRESETS)})")
    train, augment = PRESETS[preset]
    overrides = {k: v for k, v in train_overrides.items() if v is not None}
    train = replace(train, **overrides)
    model = ModelConfig()
    if arch is not None:
        model = replace(model, arch=arch)
    if weights is not None:
        model = replace(model, weights=weights)
    if preset in ("quick", "demo", "tiny") and weights is None:  # from scratch: runs offline, reproducible
        model = replace(model, weights="none")
    config = RunConfig(data=data, preset=preset, model=model, augment=augment, train=train)
    validate(config)
    return config


def validate(config: RunConfig) -> None:
    """Raise ConfigError with one line for the first unusable setting."""
    m, t = config.model, config.train
    if m.arch not in ARCHS:
        raise ConfigError(f"unknown --arch '{m.arch}' (choose from {', '.join(ARCHS)})")
    for name in ("epochs", "batch_size", "image_size"):
        value = getattr(t, name)
        if not isinstance(value, int) or value <= 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be a positive integer, got {value}")
    if t.batch_size < 2:
        raise ConfigError("--batch-size must be at least 2 (NT-Xent needs negatives)")
    if t.image_size < 16:
        raise ConfigError("--image-size must be at least 16 px")
    if not t.lr > 0:
        raise ConfigError(f"--lr must be positive, got {t.lr}")
    if not t.temperature > 0:
        raise ConfigError(f"--temperature must be positive, got {t.temperature}")
    if not 0.0 <= t.patient_positives <= 1.0:
        raise ConfigError(f"--patient-positives must lie in [0, 1], got {t.patient_positives}")
    if t.device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"unknown --device '{t.device}' (choose from auto, cpu, cuda)")
    if t.precision not in ("auto", "fp32", "bf16"):
        raise ConfigError(f"unknown --precision '{t.precision}' (choose from auto, fp32, bf16)")
