"""Configuration: a run is its `RunConfig` (saved in config.json and in every checkpoint);
where and how fast it computes is a `Runtime`, not part of what makes two runs the same.

`OPTIONS` is the one list of options a user can set: the CLI's `train` flags and the Train
page's form are both built from it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from core.errors import UserError

ARCHS = ("resnet18", "resnet50")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")
# How a run lists its folder (core.data.dataset.ListingOptions): where labels come from, and
# whether laterals and non-radiograph modalities are kept.
LABEL_SOURCES = ("auto", "folders", "manifest", "none")
VIEWS = ("frontal", "all")
FEATURE_DIMS = {"resnet18": 512, "resnet50": 2048}


class ConfigError(UserError):
    """A setting the user gave cannot be used (one-line message)."""


@dataclass(frozen=True)
class ModelConfig:
    """Encoder and projection head.

    The head follows SimCLR (Chen et al. 2020): Linear -> BatchNorm1d -> ReLU -> Linear.
    """

    arch: str = "resnet18"
    weights: str = "imagenet"  # "imagenet" | "none" | a run folder (its best.pt's backbone) | a state dict
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
    cosine_schedule: bool = False
    split_seed: int = 0
    # Probability that an image's positive is another film of its patient (MedAug, Vu et al.
    # 2021; MICLe, Azizi et al. 2021) instead of a second view of itself; needs patient ids.
    patient_positives: float = 0.0


@dataclass(frozen=True)
class Runtime:
    """Where and how a run computes. Not saved as part of the run's identity: a run started
    on one device resumes on another (config.json files that still hold these fields load)."""

    device: str = "auto"  # auto | cpu | cuda
    precision: str = "auto"  # auto (bf16 where the CPU/GPU has it) | fp32 | bf16
    workers: int = -1  # data loader processes; -1: pick from the CPU count

    def validate(self) -> Runtime:
        """Raise ConfigError for an unknown device or precision; returns self."""
        if self.device not in DEVICES:
            raise ConfigError(f"unknown --device '{self.device}' (choose from {', '.join(DEVICES)})")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"unknown --precision '{self.precision}' (choose from {', '.join(PRECISIONS)})")
        return self


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs, saved with its checkpoint."""

    data: str
    preset: str = "seed"
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    labels: str = "auto"  # --labels: LABEL_SOURCES
    views: str = "frontal"  # --views: VIEWS
    # Further dataset folders (`train --data` repeated). Films of `data` keep paths relative to
    # it; films of these are recorded by absolute path (core.data.dataset.scan_folders).
    more_data: tuple[str, ...] = ()

    @property
    def folders(self) -> tuple[str, ...]:
        """Every dataset folder of the run, `data` first."""
        return (self.data, *self.more_data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> RunConfig:
        """The RunConfig saved as `d` (config.json, a checkpoint); unknown keys are ignored.

        Raises:
            ConfigError: `d` is not an object, has no data folder, or a value of the wrong type.
        """
        if not isinstance(d, dict):
            raise ConfigError(f"the run's settings are {_json_kind(d)}, not an object")
        if "data" not in d:
            raise ConfigError("the run's settings have no 'data' (the dataset folder)")
        data, preset = _typed("data", d["data"], "str"), _typed("preset", d.get("preset", "seed"), "str")
        model = _build(ModelConfig, d.get("model", {}), "model")
        if model.arch not in ARCHS:
            raise ConfigError(f"unknown model.arch '{model.arch}' (choose from {', '.join(ARCHS)})")
        labels = _typed("labels", d.get("labels", "auto"), "str")
        views = _typed("views", d.get("views", "frontal"), "str")
        if labels not in LABEL_SOURCES or views not in VIEWS:
            raise ConfigError(f"unknown labels '{labels}' or views '{views}'"[:200])
        more = d.get("more_data", [])  # absent in runs from before `--data` could be repeated
        if not isinstance(more, (list, tuple)):
            raise ConfigError(f"more_data must be a list of folders, got {_json_kind(more)}")
        return RunConfig(data=data, preset=preset, model=model,
                         augment=_build(AugmentConfig, d.get("augment", {}), "augment"),
                         train=_build(TrainConfig, d.get("train", {}), "train"),
                         labels=labels, views=views,
                         more_data=tuple(_typed("more_data[]", f, "str") for f in more))

    @staticmethod
    def load(path: str | Path) -> RunConfig:
        """`load_run_config(path)`: a run's config.json, or ConfigError naming the file."""
        return load_run_config(path)


def load_run_config(path: str | Path) -> RunConfig:
    """The RunConfig in a run's config.json.

    Raises:
        ConfigError: the file is unreadable, not JSON, or not a run's settings: one line that
            names it.
    """
    path = Path(path)
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path} is missing (not a run folder?)") from None
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror or e}") from None
    except ValueError:  # not JSON, or not UTF-8
        raise ConfigError(f"{path} is damaged (not valid JSON); restore it from a copy or "
                          "train a new run") from None
    try:
        return RunConfig.from_dict(saved)
    except ConfigError as e:
        raise ConfigError(f"{path} is damaged: {e}; restore it from a copy or train a new run") from None


# A config.json value must have its field's type (the annotations are strings here).
_KINDS = {"int": (int, "an integer"), "float": ((int, float), "a number"),
          "str": (str, "a string"), "bool": (bool, "true or false")}


def _json_kind(value: Any) -> str:
    name = {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null",
            int: "number", float: "number"}.get(type(value), type(value).__name__)
    return f"a JSON {name}"


def _typed(name: str, value: Any, kind: str) -> Any:
    types, words = _KINDS[kind]
    if not isinstance(value, types) or (isinstance(value, bool) and kind != "bool"):
        raise ConfigError(f"{name} must be {words}, got {value!r}"[:200])
    return float(value) if kind == "float" else value


def _build(cls: type, values: Any, section: str) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{section} must be a JSON object, got {_json_kind(values)}")
    kinds = {f.name: str(f.type) for f in fields(cls)}
    return cls(**{k: _typed(f"{section}.{k}", v, kinds[k]) if kinds[k] in _KINDS else v
                  for k, v in values.items() if k in kinds})


# Presets are whole RunConfigs (the dataset filled in by make_run_config). `quick` departs
# from the seed recipe where measurements on ../shared/data/cxr said so (README "Presets"):
# small images and few epochs fit ~1,000 images in 5 minutes on a 2-core AVX2 CPU in fp32.
# quick, demo and tiny start from random weights: they run offline and reproduce.
_SCRATCH = ModelConfig(weights="none")
PRESETS: dict[str, RunConfig] = {
    "seed": RunConfig("", "seed"),
    "quick": RunConfig(
        "", "quick", _SCRATCH,
        # milder crops and photometric jitter: exposure and framing carry signal on radiographs
        AugmentConfig(crop_scale_min=0.7, brightness=0.15, contrast=0.15, blur_prob=0.2),
        # 64 px x 12 epochs: what 5 minutes per 1,000 images buys on a 2-core AVX2 CPU; on the
        # dev set it matched 96 px x 20 epochs (2.7x the time) on label metrics and beat it on
        # same-patient P@1. Every positive pair is two films of one patient where ids exist (a
        # patient with one film pairs with itself): over two seeds it beat patient_positives 0
        # on label and same-patient metrics (README "Results")
        TrainConfig(epochs=12, batch_size=64, image_size=64, lr=1e-3, temperature=0.2,
                    cosine_schedule=True, patient_positives=1.0)),
    "demo": RunConfig(  # the in-app demo model: under 2 minutes on a 2-core CPU
        "", "demo", _SCRATCH, AugmentConfig(crop_scale_min=0.5),
        TrainConfig(epochs=8, batch_size=32, image_size=64, lr=1e-3, temperature=0.2,
                    cosine_schedule=True)),
    "tiny": RunConfig(  # tests: seconds, not minutes
        "", "tiny", _SCRATCH, AugmentConfig(),
        TrainConfig(epochs=2, batch_size=16, image_size=32, lr=1e-3, temperature=0.5)),
}


@dataclass(frozen=True)
class Option:
    """One option of `python -m core train` and of the Train page.

    name: the keyword (make_run_config's for the recipe, Runtime's when `runtime`);
    kind: int, float or str; positive: must be > 0; choices: the allowed values;
    low, high, step, fmt: a number's range, step and printf format on the Train page's form.
    """

    name: str
    label: str
    kind: type
    positive: bool = False
    choices: tuple[str, ...] = ()
    help: str = ""
    runtime: bool = False
    low: float | None = None
    high: float | None = None
    step: float | None = None
    fmt: str | None = None

    @property
    def is_number(self) -> bool:
        return self.kind in (int, float) and not self.runtime

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


OPTIONS: tuple[Option, ...] = (
    Option("epochs", "Epochs", int, positive=True, low=1, high=1000),
    Option("batch_size", "Batch size", int, positive=True, low=2, high=4096,
           help="images per step; NT-Xent needs at least 2"),
    Option("image_size", "Image size (px)", int, positive=True, low=16, high=1024, step=16),
    Option("lr", "Learning rate", float, positive=True, low=1e-6, high=1.0, fmt="%.4f"),
    Option("temperature", "Temperature", float, positive=True, low=0.01, high=10.0, fmt="%.2f"),
    Option("weight_decay", "Weight decay", float, low=0.0, high=0.1, step=0.0001, fmt="%.4f",
           help="Adam's L2 penalty on the weights (0: none)"),
    Option("arch", "Encoder", str, choices=ARCHS),
    Option("weights", "Initial weights", str, help="imagenet | none | RUN folder (its backbone) | PATH (state dict)"),
    Option("seed", "Seed", int, low=0, high=2**31 - 1, help="weights, views and order; the split has its own"),
    Option("patient_positives", "Patient positives", float, low=0.0, high=1.0, step=0.1, fmt="%.2f",
           help="chance that a positive pair is two films of one patient (0..1; needs ids)"),
    Option("device", "Device", str, choices=DEVICES, runtime=True),
    Option("precision", "Precision", str, choices=PRECISIONS, runtime=True),
    Option("workers", "Loader workers", int, help="data loader processes (-1: automatic)",
           runtime=True),
)


def split_options(options: dict[str, Any]) -> tuple[dict[str, Any], Runtime]:
    """Options by name (None = not set) -> (make_run_config keywords, Runtime).

    Raises:
        ConfigError: a name that is not in OPTIONS, or an unknown device or precision.
    """
    by_name = {o.name: o for o in OPTIONS}
    unknown = sorted(set(options) - set(by_name))
    if unknown:
        raise ConfigError(f"unknown training option {unknown[0]}")
    given = {k: v for k, v in options.items() if v is not None}
    runtime = Runtime(**{k: v for k, v in given.items() if by_name[k].runtime}).validate()
    return {k: v for k, v in given.items() if not by_name[k].runtime}, runtime


def make_run_config(data: str, preset: str = "seed", *, arch: str | None = None,
                    weights: str | None = None, labels: str | None = None,
                    views: str | None = None, more_data: tuple[str, ...] | list[str] = (),
                    **train_overrides: Any) -> RunConfig:
    """Build a RunConfig from a preset plus the options the user set (None = keep preset).

    `more_data`: further dataset folders, after `data` (`train --data` repeated).

    Raises:
        ConfigError: unknown preset/arch, or a non-positive size/epoch/batch/lr/temperature.
    """
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset '{preset}' (choose from {', '.join(PRESETS)})")
    base = PRESETS[preset]
    overrides = {k: v for k, v in train_overrides.items() if v is not None}
    unknown = sorted(set(overrides) - {f.name for f in fields(TrainConfig)})
    if unknown:
        raise ConfigError(f"unknown training option {unknown[0]}")
    model = base.model
    if arch is not None:
        model = replace(model, arch=arch)
    if weights is not None:
        model = replace(model, weights=weights)
    config = replace(base, data=data, model=model, train=replace(base.train, **overrides),
                     labels=labels or base.labels, views=views or base.views,
                     more_data=tuple(str(f) for f in more_data))
    validate(config)
    return config


def validate(config: RunConfig) -> None:
    """Raise ConfigError with one line for the first unusable setting."""
    m, t = config.model, config.train
    if m.arch not in ARCHS:
        raise ConfigError(f"unknown --arch '{m.arch}' (choose from {', '.join(ARCHS)})")
    if config.labels not in LABEL_SOURCES:
        raise ConfigError(f"unknown --labels '{config.labels}' (choose from {', '.join(LABEL_SOURCES)})")
    if config.views not in VIEWS:
        raise ConfigError(f"unknown --views '{config.views}' (choose from {', '.join(VIEWS)})")
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
    if not t.weight_decay >= 0:
        raise ConfigError(f"--weight-decay must be 0 or more, got {t.weight_decay}")
    if not 0.0 <= t.patient_positives <= 1.0:
        raise ConfigError(f"--patient-positives must lie in [0, 1], got {t.patient_positives}")
