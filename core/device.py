"""Pick the device and the autocast precision."""

from __future__ import annotations

import contextlib

import torch

from core.config import ConfigError


def resolve_device(name: str = "auto") -> torch.device:
    """auto -> cuda when available, else cpu. Raises ConfigError for cuda without a GPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda asked for, but no CUDA GPU is visible (use --device cpu)")
    return torch.device(name)


def cpu_has_bf16() -> bool:
    """True when the CPU runs bf16 matmuls natively (AVX512-BF16 or AMX)."""
    try:
        flags = open("/proc/cpuinfo").read()
        if "avx512_bf16" in flags or "amx_bf16" in flags:
            return True
    except OSError:
        pass
    try:  # elsewhere (macOS, Windows) ask oneDNN
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """auto -> bf16 where the hardware has it, else fp32."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_has_bf16() else "fp32"


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def setup_cpu() -> None:
    """Flush denormals: torchvision's GaussianBlur ran up to 4.7x slower without it."""
    torch.set_flush_denormal(True)
