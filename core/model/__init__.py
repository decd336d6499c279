"""The SimCLR network: X-ray views, backbone + projection head, NT-Xent loss, checkpoints and `load_run_model`."""

from core.facade import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "load_checkpoint": "checkpoint",
    "load_run_model": "checkpoint",
    "save_checkpoint": "checkpoint",
    "training_checkpoint": "checkpoint",
    "NTXentLoss": "loss",
    "ProjectionHead": "network",
    "SimCLRModel": "network",
    "WeightsError": "network",
    "build_model": "network",
    "check_initial_weights": "network",
    "imagenet_weights_available": "network",
    "weights_file": "network",
    "MEAN": "transforms",
    "STD": "transforms",
    "XRayViews": "transforms",
    "eval_view": "transforms",
    "normalize": "transforms",
    "to_uint8_tensor": "transforms",
})

__all__ = [
    "load_checkpoint",
    "load_run_model",
    "save_checkpoint",
    "training_checkpoint",
    "NTXentLoss",
    "ProjectionHead",
    "SimCLRModel",
    "WeightsError",
    "build_model",
    "check_initial_weights",
    "imagenet_weights_available",
    "weights_file",
    "MEAN",
    "STD",
    "XRayViews",
    "eval_view",
    "normalize",
    "to_uint8_tensor",
]
