"""Trainer: one DDP step (2 CPU processes, gloo) equals the single-process step; resume equality;
collapse detection. Tiny inputs, few steps."""
import math
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import committed

from cnn import trainer
from cnn.config import validate
from cnn.models import build_model
from cnn.stages import train as stage
from cnn.trainer import make_optimizer, train, train_step
from pipeline import runs


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _batch():
    g = torch.Generator().manual_seed(1)
    return torch.randn(4, 3, 32, 32, generator=g), torch.tensor([0, 3, 5, 9])


def _cfg(**kw):
    return validate({**committed()["cnn"], **kw})


def _one_step(model, x, y, variant="nobn-stablegrad"):
    cfg = _cfg(lr=1e-3, weight_decay=0.05)
    opt = make_optimizer(model.module if hasattr(model, "module") else model, variant, cfg)
    train_step(model, opt, x, y)
    return opt


def _ddp_worker(rank: int, world: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    torch.manual_seed(0)
    model = build_model("resnet18", 10, batchnorm=False)
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
    model = build_model("resnet18", 10, batchnorm=False)
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


def _tiny_cfg(**kw):
    base = {"dataset": "digits", "image_size": 8, "train_subset": 64, "epochs": 3, "batch_size": 32,
            "lr": 1e-3, "warmup_epochs": 1, "record_every": 1, "device": "cpu", "val_fraction": 0.0,
            "variants": {"bn-adamw": {}, "nobn-adamw": {}, "nobn-agc": {"clipping": 0.01, "eps": 1e-3},
                         "nobn-stablegrad": {"reference": "last", "statistic": "std", "bias": "shared"}}}
    return _cfg(**{**base, **kw})


def _rows(history):
    """The history rows without wall time, NaN (no validation split) as None so that rows compare equal."""
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items() if k != "time_s"}
            for r in history]


@pytest.mark.parametrize("variant", ["nobn-stablegrad", "nobn-agc"])
def test_resume_after_interruption_equals_uninterrupted_run(tmp_path, variant):
    cfg = _tiny_cfg(epochs=2)
    full = train(cfg, "resnet18", variant, checkpoint=tmp_path / "full.pt", progress=False)
    ckpt = tmp_path / "checkpoints" / "resumed.pt"
    part = train(cfg, "resnet18", variant, checkpoint=ckpt, stop_after_epoch=1, progress=False)
    assert part.metrics["epochs"] == 1 and ckpt.is_file()
    resumed = train(cfg, "resnet18", variant, checkpoint=ckpt, progress=False)
    for key in ("test_acc", "train_acc", "final_loss", "epochs", "diverged"):
        assert resumed.metrics[key] == full.metrics[key], key
    a = torch.load(tmp_path / "full.pt", weights_only=True)
    b = torch.load(ckpt, weights_only=True)
    for name, p in a["model"].items():
        assert torch.equal(p, b["model"][name]), name
    assert _rows(full.history) == _rows(resumed.history)
    assert full.grad_scales["before"] == resumed.grad_scales["before"] and len(full.grad_scales["steps"]) == 4


def test_finished_checkpoint_is_not_reused_after_a_code_change(tmp_path, monkeypatch, capsys):
    """Defect: the CNN fingerprint hashed the settings only, so after an edit of stablegrad/ or cnn/ the stage
    found the finished checkpoint, skipped training and wrote the old numbers against the new code."""
    cfg = _tiny_cfg(epochs=1, warmup_epochs=0)
    ckpt = tmp_path / "seed0.pt"
    train(cfg, "resnet18", "nobn-stablegrad", checkpoint=ckpt, progress=False)
    again = train(cfg, "resnet18", "nobn-stablegrad", checkpoint=ckpt, progress=True)   # unchanged: resumes
    assert "resuming" in capsys.readouterr().out and again.metrics["epochs"] == 1
    edited = tmp_path / "rescale_edit.py"
    edited.write_text("# a one-line edit of the library\n")
    monkeypatch.setattr(trainer, "SOURCES", (*trainer.SOURCES, str(edited)))
    retrained = train(cfg, "resnet18", "nobn-stablegrad", checkpoint=ckpt, progress=True)
    out = capsys.readouterr().out
    assert "resuming" not in out and "other settings, data or code" in out
    assert retrained.metrics["wall_time_s"] > 0 and retrained.metrics["epochs"] == 1


def test_unreadable_checkpoint_is_set_aside(tmp_path, capsys):
    ckpt = tmp_path / "seed0.pt"
    ckpt.write_bytes(b"")
    res = train(_tiny_cfg(epochs=1, warmup_epochs=0), "resnet18", "nobn-adamw", checkpoint=ckpt, progress=False)
    assert res.metrics["epochs"] == 1 and (tmp_path / "seed0.pt.unreadable").exists()
    assert str(ckpt) in capsys.readouterr().out


def test_a_checkpoint_whose_contents_do_not_fit_is_set_aside(tmp_path, capsys):
    """Issue 22, defect 5: the right run key but a missing entry crashed every rerun with a KeyError."""
    cfg, ckpt = _tiny_cfg(epochs=1, warmup_epochs=0), tmp_path / "seed0.pt"
    train(cfg, "resnet18", "nobn-adamw", checkpoint=ckpt, progress=False)
    state = torch.load(ckpt, weights_only=True)
    del state["run"]
    torch.save(state, ckpt)
    res = train(cfg, "resnet18", "nobn-adamw", checkpoint=ckpt, progress=False)
    assert res.metrics["epochs"] == 1 and (tmp_path / "seed0.pt.unreadable").exists()
    assert "does not fit" in capsys.readouterr().out


def test_nan_loss_is_recorded_as_collapse_and_stops(monkeypatch):
    real_step = trainer.train_step

    def nan_step(*args, **kwargs):
        loss, logits = real_step(*args, **kwargs)
        return loss * float("nan"), logits

    monkeypatch.setattr(trainer, "train_step", nan_step)
    m = train(_tiny_cfg(epochs=3), "resnet18", "nobn-adamw", progress=False).metrics
    assert m["diverged"] is True and m["diverged_epoch"] == 1 and m["epochs"] == 1
    assert m["final_loss"] is None


@pytest.mark.parametrize("accs, expected", [
    ([0.1, 0.12, 0.1], 1), ([0.5, 0.1, 0.1, 0.1], 2), ([0.1, 0.5, 0.1], None), ([0.1, 0.1], None)])
def test_stuck_at_chance_detection(accs, expected):
    hist = [{"epoch": i + 1, "train_acc": a} for i, a in enumerate(accs)]
    assert trainer._stuck_since(hist, _cfg()) == expected


def test_validation_split_is_evaluated_and_recorded():
    res = train(_tiny_cfg(epochs=1, warmup_epochs=0, val_fraction=0.2), "resnet18", "bn-adamw", progress=False)
    assert res.metrics["val_fraction"] == 0.2 and 0.0 <= res.metrics["val_acc"] <= 1.0
    assert res.history[0]["val_acc"] == pytest.approx(res.metrics["val_acc"])
    plain = train(_tiny_cfg(epochs=1, warmup_epochs=0), "resnet18", "bn-adamw", progress=False)
    assert plain.metrics["val_acc"] is None


def test_stage_trains_every_seed_and_summarizes_them(tmp_path, params_file):
    """The DVC stage over cnn.seeds: per seed its own metrics and checkpoint, the median in metrics.json, every
    seed in history.csv."""
    path = params_file(cnn={"archs": ["resnet18"], "image_size": 8, "train_subset": 64, "epochs": 1, "warmup_epochs": 0, "batch_size": 32,
                            "val_fraction": 0.0, "record_every": 1, "device": "cpu", "seeds": [3, 1]})
    out, ckpt = tmp_path / "run", tmp_path / "ckpt"
    assert stage.main(["--arch", "resnet18", "--variant", "nobn-agc", "--params", str(path),
                       "--out", str(out), "--ckpt", str(ckpt), "--quiet"]) == 0
    per_seed = [runs.read_metrics(runs.seed_dir(out, s)) for s in (3, 1)]
    assert [m["seed"] for m in per_seed] == [3, 1]
    assert (ckpt / "seed3.pt").is_file() and (ckpt / "seed1.pt").is_file()
    assert per_seed[0]["final_loss"] != per_seed[1]["final_loss"]           # the seeds are different runs
    m = runs.read_metrics(out)
    assert m["seeds"] == [3, 1] and m["test_acc_seeds"] == [p["test_acc"] for p in per_seed]
    assert m["test_acc"] == pytest.approx(sum(m["test_acc_seeds"]) / 2)     # median of two
    assert m["diverged_seeds"] == sum(p["diverged"] for p in per_seed)
    assert set(runs.read_history(out)) == {3, 1} and runs.read_grad_scales(out)["statistic"] == "rms"


def test_a_finished_run_keeps_its_weights_not_its_optimizer_state_and_is_not_trained_again(tmp_path, monkeypatch):
    """The checkpoint of a finished run drops AdamW's moments and the schedule (ResNet-50: 282 -> 94 MB); a rerun
    with the same key (e.g. the stage with one more seed) reads its results back without a training step."""
    cfg = _tiny_cfg(epochs=1, warmup_epochs=0)
    first = train(cfg, "resnet18", "nobn-agc", checkpoint=tmp_path / "c.pt", progress=False)
    ck = torch.load(tmp_path / "c.pt", weights_only=True)
    assert ck["optimizer"] is None and ck["scheduler"] is None and ck["run"]["epoch"] == 1
    assert all(torch.isfinite(w).all() for w in ck["model"].values() if w.is_floating_point())
    monkeypatch.setattr(trainer, "train_step", lambda *a, **k: pytest.fail("a finished run was trained again"))
    again = train(cfg, "resnet18", "nobn-agc", checkpoint=tmp_path / "c.pt", progress=False)
    assert again.metrics == first.metrics
    assert _rows(again.history) == _rows(first.history) and again.grad_scales == first.grad_scales
