"""NT-Xent (normalised temperature-scaled cross entropy), SimCLR's contrastive loss."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


def gather_with_grad(z: torch.Tensor) -> tuple[torch.Tensor, int]:
    """All-gather `z` from every process, keeping the gradient path to each process's part.

    Returns:
        (world * B, D) tensor and this process's offset in it.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return z, 0
    from torch.distributed.nn.functional import all_gather

    parts = all_gather(z)  # differentiable: backward sums gradients back to their owners
    return torch.cat(parts, dim=0), dist.get_rank() * z.shape[0]


class NTXentLoss(nn.Module):
    """NT-Xent on cosine similarity (Chen et al. 2020, eq. 1).

    For 2B views, each view's positive is the other view of its image and the 2B-2 other
    views are negatives. Under DDP, negatives are gathered from all processes with gradient
    (`gather_distributed=True`), so the loss equals the single-process loss on the global batch.
    """

    def __init__(self, temperature: float = 0.5, gather_distributed: bool = True) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError("temperature must be positive")
        self.temperature = temperature
        self.gather_distributed = gather_distributed

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        """Args: z1, z2: (B, D) projections of the two views. Returns: scalar mean loss."""
        b = z1.shape[0]
        z1 = F.normalize(z1.float(), dim=1)
        z2 = F.normalize(z2.float(), dim=1)
        if self.gather_distributed:
            all1, offset = gather_with_grad(z1)  # (N, D), N = world * B
            all2, _ = gather_with_grad(z2)
        else:
            all1, all2, offset = z1, z2, 0
        n = all1.shape[0]
        local = torch.cat([z1, z2])  # (2B, D)
        everything = torch.cat([all1, all2])  # (2N, D)
        logits = local @ everything.T / self.temperature  # (2B, 2N)
        rows = torch.arange(2 * b, device=z1.device)
        own = torch.cat([offset + rows[:b], n + offset + rows[:b]])  # column of each row itself
        positive = torch.cat([n + offset + rows[:b], offset + rows[:b]])
        logits = logits.masked_fill(
            F.one_hot(own, 2 * n).bool(), float("-inf")
        )  # a view is never its own negative
        return F.cross_entropy(logits, positive)
