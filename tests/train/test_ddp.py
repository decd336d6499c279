"""DDP on 2 CPU processes (gloo): gathered NT-Xent equals the single-process loss."""

import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from core.model.loss import NTXentLoss


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, z1: torch.Tensor, z2: torch.Tensor, out: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        b = z1.shape[0] // world
        a1 = z1[rank * b:(rank + 1) * b].clone().requires_grad_(True)
        a2 = z2[rank * b:(rank + 1) * b].clone().requires_grad_(True)
        loss = NTXentLoss(0.5)(a1, a2)
        # DDP averages gradients over processes; mimic that on the inputs.
        (loss / world).backward()
        out[rank] = (loss.item(), a1.grad.clone(), a2.grad.clone())
    finally:
        dist.destroy_process_group()


def test_two_process_loss_and_gradients_equal_single_process():
    torch.manual_seed(0)
    z1, z2 = torch.randn(8, 16), torch.randn(8, 16)
    manager = mp.Manager()
    out = manager.dict()
    mp.spawn(_worker, args=(2, _free_port(), z1, z2, out), nprocs=2, join=True)

    s1, s2 = z1.clone().requires_grad_(True), z2.clone().requires_grad_(True)
    single = NTXentLoss(0.5, gather_distributed=False)(s1, s2)
    single.backward()
    mean_loss = (out[0][0] + out[1][0]) / 2
    assert abs(mean_loss - single.item()) < 1e-5
    g1 = torch.cat([out[0][1], out[1][1]])
    g2 = torch.cat([out[0][2], out[1][2]])
    assert torch.allclose(g1, s1.grad, atol=1e-5) and torch.allclose(g2, s2.grad, atol=1e-5)


def test_without_gathering_the_loss_differs():
    """The bug users hit (negatives not gathered) is visible: local-only loss is not the global one."""
    torch.manual_seed(0)
    z1, z2 = torch.randn(8, 16), torch.randn(8, 16)
    full = NTXentLoss(0.5, False)(z1, z2).item()
    halves = (NTXentLoss(0.5, False)(z1[:4], z2[:4]).item() + NTXentLoss(0.5, False)(z1[4:], z2[4:]).item()) / 2
    assert abs(full - halves) > 1e-3
