"""Trainer: one DDP step (2 CPU processes, gloo) equals the single-process step; resume equality;
collapse detection. Tiny inputs, few steps."""
import csv
import json
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from cnn import trainer
from cnn.config import CnnConfig
from cnn.models import build_model
from cnn.trainer import make_optimizer, train, train_step


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _batch():
    g = torch.Generator().manual_seed(1)
    return torch.randn(4, 3, 32, 32, generator=g), torch.tensor([0, 3, 5, 9])


def _one_step(model, x, y, variant="nobn-stablegrad"):
    cfg = CnnConfig(lr=1e-3, weight_decay=0.05)
    opt = make_optimizer(model.module if hasattr(model, "module") else model, variant, cfg)
    train_step(model, opt, x, y)
    return opt


def _ddp_worker(rank: int, world: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    torch.manual_seed(0)
    model = build_model("resnet50", 10, batchnorm=False)
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    x, y = _batch()
    n = len(y) // world
    _one_step(ddp, x[rank * n:(rank + 1) * n], y[rank * n:(rank + 1) * n])
    if rank == 0:
        torch.save({"params": model.state_dict(),
                    "grads": {n: p.grad for n, p in model.named_parameters()}}, out)
    dist.barrier()
    dist.destroy_process_group()


def test_ddp_step_equals_single_process_step(tmp_path):
    out = str(tmp_path / "ddp.pt")
    mp.spawn(_ddp_worker, args=(2, _free_port(), out), nprocs=2, join=True)
    torch.manual_seed(0)
    model = build_model("resnet50", 10, batchnorm=False)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = _batch()
    _one_step(model, x, y)
    ddp = torch.load(out)
    for name, p in model.named_parameters():
        # the gradient AdamW received (DDP-averaged, then rescaled by StableGrad) is the single-process one
        torch.testing.assert_close(ddp["grads"][name], p.grad, rtol=1e-3, atol=1e-3 * float(p.grad.abs().max()),
                                   msg=name)
    moved = 0
    for name, p in model.state_dict().items():
        # Adam's first step is ~ lr * sign(g): elements whose gradient is ~0 may step either way, so compare
        # elementwise within 1 % of lr and allow a tiny fraction of such near-zero-gradient elements
        close = (ddp["params"][name] - p).abs() <= 1e-5
        assert close.float().mean() > 0.999, name
        moved += int((p - init[name]).abs().max() > 5e-4)
    assert moved == len(init)                           # the step moved every layer


def trainer_history(run):
    with open(run / "history.csv") as f:
        return list(csv.DictReader(f))


def _tiny_cfg(**kw) -> CnnConfig:
    base = {"dataset": "digits", "image_size": 8, "train_subset": 64, "epochs": 3, "batch_size": 32,
            "lr": 1e-3, "warmup_epochs": 1, "record_every": 1, "device": "cpu"}
    base.update(kw)
    return CnnConfig(**base)


def test_resume_after_interruption_equals_uninterrupted_run(tmp_path):
    cfg = _tiny_cfg(epochs=2)
    full = train(cfg, "resnet50", "nobn-stablegrad", tmp_path / "full", progress=False)
    ckpt = tmp_path / "checkpoints" / "resumed.pt"      # as the DVC stage does: outside the run folder
    part = train(cfg, "resnet50", "nobn-stablegrad", tmp_path / "resumed", checkpoint=ckpt, stop_after_epoch=1,
                 progress=False)
    assert part["epochs"] == 1 and ckpt.is_file() and not (tmp_path / "resumed" / "checkpoint.pt").exists()
    resumed = train(cfg, "resnet50", "nobn-stablegrad", tmp_path / "resumed", checkpoint=ckpt, progress=False)
    for key in ("test_acc", "train_acc", "final_loss", "epochs", "diverged"):
        assert resumed[key] == full[key], key
    a = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=False)
    b = torch.load(ckpt, weights_only=False)
    for name, p in a["model"].items():
        assert torch.equal(p, b["model"][name]), name
    ha = trainer_history(tmp_path / "full")
    hb = trainer_history(tmp_path / "resumed")
    assert [{k: v for k, v in r.items() if k != "time_s"} for r in ha] == \
        [{k: v for k, v in r.items() if k != "time_s"} for r in hb]
    ga = json.loads((tmp_path / "full" / "grad_scales.json").read_text())
    gb = json.loads((tmp_path / "resumed" / "grad_scales.json").read_text())
    assert ga["before"] == gb["before"] and ga["steps"] == gb["steps"] and len(ga["steps"]) == 4
    m = json.loads((tmp_path / "full" / "metrics.json").read_text())
    assert {"test_acc", "train_acc", "final_loss", "diverged", "diverged_epoch", "epochs", "wall_time_s",
            "stem", "dataset"} <= set(m)


def test_nan_loss_is_recorded_as_collapse_and_stops(tmp_path, monkeypatch):
    real_step = trainer.train_step

    def nan_step(*args, **kwargs):
        loss, logits = real_step(*args, **kwargs)
        return loss * float("nan"), logits

    monkeypatch.setattr(trainer, "train_step", nan_step)
    m = train(_tiny_cfg(epochs=3), "resnet50", "nobn-adamw", tmp_path / "run", progress=False)
    assert m["diverged"] is True and m["diverged_epoch"] == 1 and m["epochs"] == 1
    assert m["final_loss"] is None
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["diverged"] is True


@pytest.mark.parametrize("accs, expected", [
    ([0.1, 0.12, 0.1], 1), ([0.5, 0.1, 0.1, 0.1], 2), ([0.1, 0.5, 0.1], None), ([0.1, 0.1], None)])
def test_stuck_at_chance_detection(accs, expected):
    cfg = CnnConfig()
    hist = [{"epoch": i + 1, "train_acc": a} for i, a in enumerate(accs)]
    assert trainer._stuck_since(hist, cfg) == expected


def test_validation_split_is_evaluated_and_recorded(tmp_path):
    m = train(_tiny_cfg(epochs=1, val_fraction=0.2), "resnet50", "bn-adamw", tmp_path / "run", progress=False)
    assert m["val_fraction"] == 0.2 and 0.0 <= m["val_acc"] <= 1.0
    rows = trainer_history(tmp_path / "run")
    assert float(rows[0]["val_acc"]) == pytest.approx(m["val_acc"], rel=1e-5)
    plain = train(_tiny_cfg(epochs=1), "resnet50", "bn-adamw", tmp_path / "plain", progress=False)
    assert plain["val_acc"] is None and trainer_history(tmp_path / "plain")[0]["val_acc"] == "nan"


def test_stage_trains_every_seed_and_summarizes_them(tmp_path):
    """The DVC stage over cnn.seeds: one output folder and one checkpoint per seed, the median in metrics.json,
    and the first seed's history and gradient scales at the top (what the figures read)."""
    import yaml

    from cnn.stages import train as stage
    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    params["cnn"].update(image_size=8, train_subset=64, epochs=1, warmup_epochs=0, batch_size=32,
                         val_fraction=0.0, record_every=1, device="cpu", seeds=[3, 1])
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    out, ckpt = tmp_path / "run", tmp_path / "ckpt"
    assert stage.main(["--arch", "resnet50", "--variant", "nobn-stablegrad", "--params", str(path),
                       "--out", str(out), "--ckpt", str(ckpt), "--quiet"]) == 0
    per_seed = [json.loads((out / "seeds" / f"seed{s}" / "metrics.json").read_text()) for s in (3, 1)]
    assert [m["seed"] for m in per_seed] == [3, 1]
    assert (ckpt / "seed3.pt").is_file() and (ckpt / "seed1.pt").is_file()
    assert per_seed[0]["final_loss"] != per_seed[1]["final_loss"]           # the seeds are different runs
    m = json.loads((out / "metrics.json").read_text())
    assert m["seeds"] == [3, 1] and m["test_acc_seeds"] == [p["test_acc"] for p in per_seed]
    assert m["test_acc"] == pytest.approx(sum(m["test_acc_seeds"]) / 2)     # median of two
    assert m["diverged_seeds"] == sum(p["diverged"] for p in per_seed)
    assert (out / "history.csv").read_text() == (out / "seeds" / "seed3" / "history.csv").read_text()


def test_summarize_seeds_median_and_collapse_count():
    from cnn.stages.train import summarize_seeds
    base = {"arch": "resnet50", "variant": "nobn-adamw", "epochs": 5, "wall_time_s": 1.0, "val_acc": None,
            "train_acc": 0.5, "final_loss": 1.0, "diverged": False, "diverged_epoch": None}
    runs = [{**base, "seed": 0, "test_acc": 0.8},
            {**base, "seed": 1, "test_acc": 0.1, "diverged": True, "diverged_epoch": 1, "epochs": 3},
            {**base, "seed": 2, "test_acc": 0.6}]
    m = summarize_seeds(runs)
    assert m["test_acc"] == 0.6 and (m["test_acc_min"], m["test_acc_max"]) == (0.1, 0.8)
    assert m["diverged"] is True and m["diverged_seeds"] == 1 and m["diverged_epoch"] == 1
    assert m["epochs"] == 3 and m["wall_time_s"] == 3.0 and m["val_acc"] is None and m["seeds"] == [0, 1, 2]
