"""Similar and near-duplicate chest X-rays: the library under the app and the CLI.

Data flows one way: imageio -> data/splits -> transforms -> model/loss -> trainer ->
embeddings -> index -> retrieval/evaluate. Pages import from here; core never imports streamlit.
"""

from core.config import (
    PRESETS,
    AugmentConfig,
    ConfigError,
    ModelConfig,
    RunConfig,
    TrainConfig,
    make_run_config,
)
from core.data import (
    Dataset,
    DatasetError,
    Sample,
    scan_dataset,
)
from core.embeddings import (
    Embeddings,
    embed_files,
    l2_normalize,
)
from core.evaluate import (
    evaluate_run,
)
from core.imageio import (
    SUPPORTED_SUFFIXES,
    ImageReadError,
    LoadedImage,
    Window,
    apply_window,
    load_image,
    read_gray,
    to_uint8,
)
from core.index import (
    VectorIndex,
)
from core.loss import (
    NTXentLoss,
)
from core.metrics import (
    RetrievalScores,
    average_precision,
    evaluate_retrieval,
    map_at_r,
    precision_at_k,
)
from core.model import (
    ProjectionHead,
    SimCLRModel,
    WeightsError,
    build_model,
    imagenet_weights_available,
)
from core.pairs import (
    DuplicatePair,
    connected_groups,
    mine_pairs,
)
from core.pipeline import (
    train_run,
)
from core.retrieval import (
    Hit,
    Searcher,
    load_run_model,
)
from core.runs import (
    RunError,
    RunPaths,
    read_status,
)
from core.splits import (
    assign_splits,
)
from core.transforms import (
    XRayViews,
    eval_view,
)
from core.workspace import (
    Workspace,
    workspace_root,
    workspace_status,
)

__all__ = [
    "PRESETS",
    "SUPPORTED_SUFFIXES",
    "AugmentConfig",
    "ConfigError",
    "Dataset",
    "DatasetError",
    "DuplicatePair",
    "Embeddings",
    "Hit",
    "ImageReadError",
    "LoadedImage",
    "ModelConfig",
    "NTXentLoss",
    "ProjectionHead",
    "RetrievalScores",
    "RunConfig",
    "RunError",
    "RunPaths",
    "Sample",
    "Searcher",
    "SimCLRModel",
    "TrainConfig",
    "VectorIndex",
    "WeightsError",
    "Window",
    "Workspace",
    "XRayViews",
    "apply_window",
    "assign_splits",
    "average_precision",
    "build_model",
    "connected_groups",
    "embed_files",
    "eval_view",
    "evaluate_retrieval",
    "evaluate_run",
    "imagenet_weights_available",
    "l2_normalize",
    "load_image",
    "load_run_model",
    "make_run_config",
    "map_at_r",
    "mine_pairs",
    "precision_at_k",
    "read_gray",
    "read_status",
    "scan_dataset",
    "to_uint8",
    "train_run",
    "workspace_root",
    "workspace_status",
]
