"""DDP: 2 processes (gloo, CPU) with StableGrad equal a single-process run on the same global batch."""
from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from stablegrad import StableGrad

STEPS = 3


def make_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 2))


def global_batch(step: int):
    gen = torch.Generator().manual_seed(100 + step)
    x = torch.randn(16, 4, generator=gen)
    return x, torch.randn(16, 2, generator=gen) + 0.3


def run(model, opt, rank: int = 0, world: int = 1):
    for step in range(STEPS):
        x, y = global_batch(step)
        x, y = x.chunk(world)[rank], y.chunk(world)[rank]  # mean loss over the local batch (DDP convention)
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()


def _worker(rank: int, world: int, init_file: str, reference: str, out_file: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        model = DDP(make_model())
        opt = StableGrad(torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9), model, reference=reference)
        run(model, opt, rank, world)
        params = [p.detach().clone() for p in model.module.parameters()]
        gathered = [None] * world
        dist.all_gather_object(gathered, params)
        if rank == 0:
            torch.save(gathered, out_file)
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("reference", ["last", "output"])
def test_ddp_two_processes_match_single_process(tmp_path, reference):
    """reference="output" all-reduces its statistic inside the step; "last" uses the averaged gradients.
    SGD base: unlike Adam it passes any error in the factors straight into the parameters."""
    out = tmp_path / "params.pt"
    mp.spawn(_worker, args=(2, str(tmp_path / "store"), reference, str(out)), nprocs=2, join=True)
    rank0, rank1 = torch.load(out)
    single = make_model()
    run(single, StableGrad(torch.optim.SGD(single.parameters(), lr=0.05, momentum=0.9), single,
                       reference=reference))
    for p, q, r in zip(rank0, rank1, single.parameters()):
        assert torch.equal(p, q)  # every rank applies the same update
        torch.testing.assert_close(p, r.detach(), rtol=1e-6, atol=1e-6)
