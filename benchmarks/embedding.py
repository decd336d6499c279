"""Embedding throughput: image files on disk -> L2-normalised vectors, project vs plain loop.

Project: `core.embed.encoder.embed_dataset` (loader worker decoding ahead of the model, bf16
autocast + channels_last where the CPU has bf16, fp32 otherwise).
Reference: the loop most people write: PIL decode, torchvision Resize/ToTensor/Normalize,
the same model in eval mode, fp32, batches of 64, all in one process.

Also: throughput as a fraction of the measured matmul peak, and retrieval metrics of bf16
vs fp32 embeddings of the same model on the dev set (../shared/data/cxr) when present.
"""

from __future__ import annotations

import copy
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import demo_files, emit, matmul_peak_gflops, note
from core.config import ModelConfig
from core.device import cpu_has_bf16, resolve_precision, setup_cpu
from core.embed.embeddings import l2_normalize
from core.embed.encoder import Encoder, embed_dataset
from core.model.network import SimCLRModel, build_model
from core.model.transforms import MEAN, STD

DEV_SET = Path(__file__).resolve().parents[2] / "shared" / "data" / "cxr"
CONV1_NOTE = ("our encoder takes 1 channel (ImageNet conv1 summed over RGB), so conv1 does a "
              "third of the 3-channel work: 0.16 GFLOP less per 224 px image than torchvision's "
              "ResNet-18; FLOP counted here as 2 x multiply-adds of this model")


def model_gflop(model: SimCLRModel, px: int) -> float:
    """FLOP (2 x multiply-adds of conv and linear layers) of one `embed` at px x px, in G."""
    macs = 0

    def hook(module: torch.nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal macs
        if isinstance(module, torch.nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            macs += output.numel() * k
        elif isinstance(module, torch.nn.Linear):
            macs += output.numel() * module.in_features

    handles = [m.register_forward_hook(hook) for m in model.backbone.modules()
               if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    with torch.no_grad():
        model.eval().embed(torch.zeros(1, 1, px, px))
    for h in handles:
        h.remove()
    return 2 * macs / 1e9


def plain_embed(model: SimCLRModel, files: list[Path], px: int, batch_size: int = 64) -> np.ndarray:
    """The reference loop: PIL decode, torchvision transform, fp32 model, one process."""
    from PIL import Image
    from torchvision import transforms

    tf = transforms.Compose([transforms.Resize((px, px)), transforms.ToTensor(),
                             transforms.Normalize([MEAN], [STD])])
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(files), batch_size):
            x = torch.stack([tf(Image.open(f).convert("L")) for f in files[start:start + batch_size]])
            out.append(l2_normalize(model.embed(x).numpy()))  # (B, 512)
    return np.concatenate(out)


def _interleaved_rates(fns: dict, n: int, repeats: int) -> dict[str, float]:
    """Best-of-`repeats` images/s of each fn() over n images, alternating between them so a
    change in the machine's load hits all of them alike (best: the machine may be shared)."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t)
    return {name: n / s for name, s in best.items()}


def throughput(quick: bool) -> None:
    """Project vs plain loop at 96 and 224 px, and as a fraction of the matmul peak."""
    setup_cpu()
    device = torch.device("cpu")
    precision = resolve_precision("auto", device)
    peak32 = matmul_peak_gflops("fp32")
    peak16 = matmul_peak_gflops("bf16") if cpu_has_bf16() else None
    emit("matmul_peak", peak32, "GFLOP/s", dtype="fp32", threads=torch.get_num_threads())
    if peak16:
        emit("matmul_peak", peak16, "GFLOP/s", dtype="bf16", threads=torch.get_num_threads())
    torch.manual_seed(0)
    model = build_model(ModelConfig(weights="none")).eval()
    with tempfile.TemporaryDirectory(prefix="bench-embed-") as tmp:
        for px in (96, 224):
            n = (192 if px == 224 else 512) if quick else (640 if px == 224 else 2048)
            files = demo_files(Path(tmp), n)
            repeats = 1 if quick else 2
            note(f"embedding {n} files at {px} px ({precision})")
            project_model = copy.deepcopy(model).to(memory_format=torch.channels_last)
            plain_model = model  # default memory format
            project = Encoder(project_model, px, device, precision)
            embed_dataset(project, files[:64])  # warm-up
            plain_embed(plain_model, files[:64], px)
            rates = _interleaved_rates({
                "project": lambda e=project, f=files: embed_dataset(e, f),
                "plain": lambda m=plain_model, f=files, p=px: plain_embed(m, f, p)}, n, repeats)
            project, plain = rates["project"], rates["plain"]
            gflop = model_gflop(model, px)
            emit("embed.throughput", project, "images/s", reference="plain fp32 loop (PIL, torchvision, batch 64)",
                 reference_value=plain, px=px, n=n, precision=precision, arch="resnet18",
                 channels_last=True, gflop_per_image=gflop,
                 fraction_of_fp32_peak=project * gflop / peak32,
                 reference_fraction_of_fp32_peak=plain * gflop / peak32,
                 fraction_of_bf16_peak=(project * gflop / peak16) if peak16 else None,
                 target=">= 2.5x plain at 224 px" if px == 224 else None, note=CONV1_NOTE)


def retrieval_check(quick: bool) -> None:
    """P@5 and mAP of bf16 vs fp32 embeddings of one model on the dev set (same images)."""
    from core.data.dataset import scan_dataset
    from core.retrieval.metrics import evaluate_retrieval

    if not DEV_SET.is_dir():
        note(f"no dev set at {DEV_SET}: bf16 vs fp32 retrieval check skipped")
        return
    if not cpu_has_bf16():
        note("no bf16 on this CPU: embeddings stay fp32, retrieval check skipped")
        return
    dataset = scan_dataset(DEV_SET)
    files = [dataset.absolute(s) for s in dataset.samples]
    labels = dataset.labels
    px = 96 if quick else 224  # the quick preset's size; 224 px (seed preset) in the full run
    torch.manual_seed(0)
    model = build_model(ModelConfig(weights="none")).eval().to(memory_format=torch.channels_last)
    device = torch.device("cpu")
    note(f"bf16 vs fp32 retrieval on {len(files)} dev images at {px} px")
    vectors = {}
    for precision in ("fp32", "bf16"):  # the same files are unreadable at either precision
        vectors[precision], bad = embed_dataset(Encoder(model, px, device, precision), files)
    keep = [i for i in range(len(files)) if i not in bad]
    everyone = np.arange(len(keep))
    scores = {p: evaluate_retrieval(v, [labels[i] for i in keep], everyone, everyone)
              for p, v in vectors.items()}
    cos = float((vectors["bf16"] * vectors["fp32"]).sum(axis=1).min())
    s32, s16 = scores["fp32"], scores["bf16"]
    diff = max(abs(s16.precision_at_5 - s32.precision_at_5), abs(s16.map - s32.map))
    emit("embed.bf16_retrieval_max_abs_diff", diff, "metric", n=int(s32.n_queries), px=px,
         model="resnet18, random init (seed 0)", data=str(DEV_SET),
         p_at_5_fp32=s32.precision_at_5, p_at_5_bf16=s16.precision_at_5,
         map_fp32=s32.map, map_bf16=s16.map, min_cosine_bf16_vs_fp32=cos,
         target="<= 0.01", met=diff <= 0.01)


def run(quick: bool) -> None:
    throughput(quick)
    retrieval_check(quick)
