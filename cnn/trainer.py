"""Training loop for every variant `<bn|nobn>-<control>` (bn-adamw, nobn-adamw, nobn-stablegrad, nobn-agc, ...).

Everything but the variant is identical between runs: the base optimizer settings (lr, weight decay), the
warm-up + cosine schedule (per step), batch size, data order, augmentation, seed and initial weights; the
gradient control comes from the registry in pipeline/controls.py.

- CUDA: bf16 autocast (or fp16 with GradScaler: scale(loss).backward -> unscale_ -> step, where
  StableGrad rescales the unscaled gradients inside its step and non-finite steps are skipped by the
  scaler before StableGrad sees them -> update), channels_last.
- DDP when started by `torchrun` (gloo on CPU, nccl on CUDA). StableGrad wraps the DDP model's
  `.module`; gradients are already averaged when `backward()` returns, so it needs no communication.
- A checkpoint after every epoch (pipeline/runs.py); a run restarted with the same settings, data and code
  resumes from it and reaches the same result as an uninterrupted run (the data order and augmentation of
  epoch e depend only on (seed, e), and the optimizer, scheduler, scaler and recorder states are restored).
- Collapse: a non-finite loss, or a training accuracy below `chance_factor` x chance for `patience`
  consecutive epochs from the start, marks the run `diverged` (with the epoch) and stops it early.
"""
from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, Subset
from tqdm import tqdm

from cnn.config import CnnConfig
from cnn.data import build_splits, data_fingerprint
from cnn.models import build_model
from pipeline import controls, runs
from pipeline.names import parse_variant
from stablegrad import GradScaleRecorder

# What a run executes: part of its run key, and the deps of the cnn_train stages in dvc.yaml (a test keeps the
# two the same).
SOURCES = ("cnn/stages/train.py", "cnn/config.py", "cnn/trainer.py", "cnn/models.py", "cnn/data.py",
           *runs.SHARED_SOURCES)

NAN_CHECK_EVERY = 10  # steps between loss finiteness checks (one host sync each)


# --------------------------------------------------------------------------------------------------
# set-up
# --------------------------------------------------------------------------------------------------
@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device_kind: str) -> Dist:
    """Join the process group when started by torchrun (WORLD_SIZE > 1); else a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_kind == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def pick_device(cfg: CnnConfig, d: Dist) -> torch.device:
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("`cnn.device` is 'cuda' but CUDA is not available; use 'auto' or 'cpu'")
    if cfg.device == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    torch.cuda.set_device(d.local_rank)
    return torch.device("cuda", d.local_rank)


def make_optimizer(model: nn.Module, variant: str, cfg: CnnConfig,
                   recorder: GradScaleRecorder | None = None) -> torch.optim.Optimizer:
    """The variant's gradient control (pipeline/controls.py) on the base settings of `cfg`, with the
    variant's options. `model`: the unwrapped module."""
    control = parse_variant(variant)[1]
    return controls.make_optimizer(control, model, cfg.base(), cfg.variants[variant], recorder)


def lr_factor(step: int, steps_per_epoch: int, cfg: CnnConfig) -> float:
    """Linear warm-up over `warmup_epochs`, then cosine decay to zero at the end of `epochs`."""
    warm = cfg.warmup_epochs * steps_per_epoch
    total = cfg.epochs * steps_per_epoch
    if step < warm:
        return (step + 1) / warm
    t = (step - warm) / max(1, total - warm)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))


def amp_setup(cfg: CnnConfig, device: torch.device):
    """(autocast context factory, GradScaler or None, amp name actually used)."""
    if device.type != "cuda" or cfg.amp == "none":
        return contextlib.nullcontext, None, "none"
    dtype = torch.bfloat16 if cfg.amp == "bf16" else torch.float16
    scaler = torch.amp.GradScaler("cuda") if cfg.amp == "fp16" else None
    return (lambda: torch.autocast("cuda", dtype=dtype)), scaler, cfg.amp


# --------------------------------------------------------------------------------------------------
# one step
# --------------------------------------------------------------------------------------------------
def train_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, *,
               autocast=contextlib.nullcontext, scaler=None, capture: GradScaleRecorder | None = None,
               unwrapped: nn.Module | None = None, label_smoothing: float = 0.0):
    """Forward, backward, (unscale,) optimizer step. Returns (loss, logits) detached.

    `capture`: a recorder to call `.capture(unwrapped)` on for a plain optimizer (StableGrad records
    through its own `recorder`)."""
    opt.zero_grad(set_to_none=True)
    with autocast():
        logits = model(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=label_smoothing)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        if capture is not None:
            capture.capture(unwrapped if unwrapped is not None else model)
        scaler.step(opt)
        scaler.update()
    else:
        loss.backward()
        if capture is not None:
            capture.capture(unwrapped if unwrapped is not None else model)
        opt.step()
    return loss.detach(), logits.detach()


@torch.no_grad()
def evaluate(model: nn.Module, dataset, cfg: CnnConfig, device: torch.device, d: Dist, autocast,
             channels_last: bool) -> float:
    """Top-1 accuracy on the whole `dataset` (each rank a disjoint shard, counts summed). `model`: the
    unwrapped module (ranks may see different numbers of batches, so no DDP forward here)."""
    model.eval()
    shard = Subset(dataset, list(range(d.rank, len(dataset), d.world)))
    loader = DataLoader(shard, batch_size=cfg.batch_size, shuffle=False, num_workers=cfg.num_workers,
                        pin_memory=device.type == "cuda")
    counts = torch.zeros(2, dtype=torch.float64, device=device)
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast():
            pred = model(x).argmax(1)
        counts += torch.stack([(pred == y).sum().double(), torch.tensor(float(len(y)), device=device,
                                                                        dtype=torch.float64)])
    if d.world > 1:
        dist.all_reduce(counts)
    model.train()
    return float(counts[0] / counts[1])


# --------------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------------
@dataclass
class RunState:
    epoch: int = 0                       # epochs completed
    wall_time_s: float = 0.0
    history: list[dict] = field(default_factory=list)
    diverged: bool = False
    diverged_epoch: int | None = None
    diverged_reason: str | None = None
    epoch_end_steps: list[int] = field(default_factory=list)


def run_key(cfg: CnnConfig, arch: str, variant: str, world: int, train_set) -> str:
    """What a checkpoint must match to be resumed: the settings the run reads, the training data, the
    number of processes and the sources the run executes (a code change retrains)."""
    return runs.run_key({**cfg.run_settings(arch, variant), "world": world}, data_fingerprint(train_set),
                        runs.source_files(SOURCES))


# A finished run's checkpoint keeps its weights, history and gradient scales (what a rerun with more seeds reads
# back instead of retraining), not these: ResNet-50's AdamW moments are twice its weights (282 MB -> 94 MB).
FINISHED_WITHOUT = ("optimizer", "scheduler")


def _finished(st: RunState, cfg: CnnConfig) -> bool:
    return st.diverged or st.epoch >= cfg.epochs


def _stuck_since(history: list[dict], cfg: CnnConfig) -> int | None:
    """First epoch of a stretch of `patience` epochs (ending now) with training accuracy at chance."""
    chance = cfg.collapse.chance_factor / cfg.num_classes
    p = cfg.collapse.patience
    if len(history) >= p and all(h["train_acc"] < chance for h in history[-p:]):
        return history[-p]["epoch"]
    return None


@dataclass
class SeedResult:
    metrics: dict            # this seed's metrics (test_acc, diverged, ...)
    history: list[dict]      # one row per epoch
    grad_scales: dict        # GradScaleRecorder.to_dict() plus per-epoch medians


def train(cfg: CnnConfig, arch: str, variant: str, *, checkpoint: str | Path | None = None,
          stop_after_epoch: int | None = None, progress: bool = True) -> SeedResult:
    """Train one (arch, variant) run for the seed `cfg.seed`; resume from `checkpoint` if its run key matches,
    and save it after every epoch. `stop_after_epoch` ends the run early as an interruption would (for
    tests)."""
    device_kind = "cuda" if (cfg.device != "cpu" and torch.cuda.is_available()) else "cpu"
    d = init_distributed(device_kind)
    device = pick_device(cfg, d)
    if cfg.batch_size % d.world:
        raise ValueError(f"`cnn.batch_size` = {cfg.batch_size} must be divisible by the {d.world} processes")
    train_set, val_set, test_set = build_splits(cfg)
    batchnorm, control = parse_variant(variant)

    torch.manual_seed(cfg.seed)                       # identical initial weights for every variant
    model = build_model(arch, cfg.num_classes, batchnorm=batchnorm, stem=cfg.stem)
    channels_last = cfg.channels_last and device.type == "cuda"
    model = model.to(device, memory_format=torch.channels_last if channels_last else torch.preserve_format)
    recorder = GradScaleRecorder(every=cfg.record_every)
    opt = make_optimizer(model, variant, cfg, recorder)
    capture = None if controls.record(control).records_itself else recorder
    net = model
    if d.world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                                  else None)
    autocast, scaler, amp_name = amp_setup(cfg, device)

    sampler = DistributedSampler(train_set, num_replicas=d.world, rank=d.rank, shuffle=True, seed=cfg.seed,
                                 drop_last=True)
    loader = DataLoader(train_set, batch_size=cfg.batch_size // d.world, sampler=sampler, drop_last=True,
                        num_workers=cfg.num_workers, pin_memory=device.type == "cuda",
                        persistent_workers=cfg.num_workers > 0)
    steps_per_epoch = len(loader)
    if steps_per_epoch == 0:
        raise ValueError(f"`cnn.batch_size` = {cfg.batch_size} is larger than the training set")
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, steps_per_epoch, cfg))

    st = RunState()
    key = run_key(cfg, arch, variant, d.world, train_set)
    parts = [model, opt, sched, recorder]

    def restore(ck):
        nonlocal st
        run = RunState(**ck["run"])
        for part, name in zip(parts, ("model", "optimizer", "scheduler", "recorder")):
            if ck[name] is None and name in FINISHED_WITHOUT and _finished(run, cfg):
                continue
            part.load_state_dict(ck[name])
        if scaler is not None and ck.get("scaler"):
            scaler.load_state_dict(ck["scaler"])
        st = run

    log = (lambda msg: print(f"[cnn] {msg}", flush=True)) if d.main else (lambda msg: None)
    resumed = runs.resume(checkpoint, key, restore, parts, map_location=device, log=log)
    if resumed and d.main and progress:
        print(f"[cnn] resuming {arch}/{variant} seed {cfg.seed} from epoch {st.epoch} ({checkpoint})", flush=True)

    chance = 1.0 / cfg.num_classes
    while not _finished(st, cfg):
        if stop_after_epoch is not None and st.epoch >= stop_after_epoch:
            break
        epoch = st.epoch + 1
        t0 = time.perf_counter()
        torch.manual_seed(cfg.seed * 100_003 + epoch * 1009 + d.rank)   # augmentation of this epoch
        sampler.set_epoch(epoch)
        net.train()
        sums = torch.zeros(3, dtype=torch.float64, device=device)       # loss*n, correct, n
        nonfinite = False
        bar = tqdm(loader, desc=f"{arch}/{variant} epoch {epoch}/{cfg.epochs}", disable=not (d.main and progress),
                   mininterval=5.0, leave=False)
        for i, (x, y) in enumerate(bar):
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            loss, logits = train_step(net, opt, x, y, autocast=autocast, scaler=scaler, capture=capture,
                                      unwrapped=model, label_smoothing=cfg.label_smoothing)
            sched.step()
            n = float(len(y))
            sums += torch.stack([loss.double() * n, (logits.argmax(1) == y).sum().double(),
                                 torch.tensor(n, dtype=torch.float64, device=device)])
            if (i + 1) % NAN_CHECK_EVERY == 0 or i + 1 == steps_per_epoch:
                finite = torch.isfinite(loss).to(torch.float32)
                if d.world > 1:
                    dist.all_reduce(finite, op=dist.ReduceOp.MIN)
                if not bool(finite):
                    nonfinite = True
                    break
        bar.close()
        if d.world > 1:
            dist.all_reduce(sums)
        train_loss = float(sums[0] / sums[2])
        train_acc = float(sums[1] / sums[2])
        test_acc = evaluate(model, test_set, cfg, device, d, autocast, channels_last)
        val_acc = (evaluate(model, val_set, cfg, device, d, autocast, channels_last) if val_set is not None
                   else float("nan"))
        scales = recorder.to_dict()
        st.epoch_end_steps.append(len(scales["steps"]))
        last = [v for v in (scales["before"][-1] if scales["before"] else []) if math.isfinite(v)]
        st.wall_time_s += time.perf_counter() - t0
        row = {"epoch": epoch, "loss": train_loss, "train_acc": train_acc, "val_acc": val_acc,
               "test_acc": test_acc,
               "lr": sched.get_last_lr()[0], "time_s": round(st.wall_time_s, 2),
               "grad_scale_min": min(last) if last else float("nan"),
               "grad_scale_max": max(last) if last else float("nan")}
        st.history.append(row)
        if nonfinite or not math.isfinite(train_loss):
            st.diverged, st.diverged_epoch, st.diverged_reason = True, epoch, "non-finite loss"
        elif (since := _stuck_since(st.history, cfg)) is not None:
            st.diverged, st.diverged_epoch = True, since
            st.diverged_reason = (f"training accuracy below {cfg.collapse.chance_factor} x chance "
                                  f"({chance:.3f}) for epochs {since}..{epoch}")
        st.epoch = epoch
        if d.main:
            if progress:
                print(f"[cnn] {arch}/{variant} seed {cfg.seed} epoch {epoch}: loss {train_loss:.4f} "
                      f"train {train_acc:.3f} "
                      + (f"val {val_acc:.3f} " if val_set is not None else "") + f"test {test_acc:.3f}"
                      + (" DIVERGED" if st.diverged else ""), flush=True)
            done = _finished(st, cfg)
            runs.save_checkpoint(checkpoint, key, {
                "model": model.state_dict(), "optimizer": None if done else opt.state_dict(),
                "scheduler": None if done else sched.state_dict(),
                "scaler": scaler.state_dict() if scaler is not None and not done else None,
                "recorder": recorder.state_dict(), "run": asdict(st)})
        if d.world > 1:
            dist.barrier()

    if d.world > 1:
        dist.barrier()  # the process group stays up for the next seed; the stage script ends it
    return SeedResult(_metrics(cfg, arch, variant, st, amp_name, device, d), st.history,
                      _grad_scales(recorder, st))


def _metrics(cfg, arch, variant, st: RunState, amp_name, device, d: Dist) -> dict:
    last = st.history[-1] if st.history else {}
    return {
        "arch": arch, "variant": variant, "dataset": cfg.dataset, "stem": cfg.stem,
        "image_size": cfg.image_size,
        "test_acc": last.get("test_acc"), "train_acc": last.get("train_acc"),
        "val_acc": runs.finite_or_none(last.get("val_acc")), "val_fraction": cfg.val_fraction,
        "final_loss": runs.finite_or_none(last.get("loss")),
        "diverged": st.diverged, "diverged_epoch": st.diverged_epoch, "diverged_reason": st.diverged_reason,
        "epochs": st.epoch, "epochs_planned": cfg.epochs, "wall_time_s": round(st.wall_time_s, 2),
        "lr": cfg.lr, "batch_size": cfg.batch_size, "weight_decay": cfg.weight_decay, "seed": cfg.seed,
        "amp": amp_name, "device": device.type, "world_size": d.world,
    }


def _grad_scales(recorder: GradScaleRecorder, st: RunState) -> dict:
    scales = recorder.to_dict()
    scales["epoch_end_records"] = st.epoch_end_steps   # records [0, n_1) belong to epoch 1, etc.
    scales["per_epoch_median_before"] = _per_epoch_median(scales["before"], st.epoch_end_steps)
    scales["per_epoch_median_after"] = _per_epoch_median(scales["after"], st.epoch_end_steps)
    return scales


def _per_epoch_median(rows: list[list[float]], ends: list[int]) -> list[list[float]]:
    """Per epoch, the per-layer median over that epoch's records (non-finite values dropped)."""
    result, start = [], 0
    for end in ends:
        chunk = torch.tensor([[math.nan if v is None else v for v in r] for r in rows[start:end]],
                             dtype=torch.float64) if end > start else None
        if chunk is None:
            result.append([])
        else:
            chunk = torch.where(torch.isfinite(chunk), chunk, torch.nan)
            med = chunk.nanmedian(0).values
            result.append([v if math.isfinite(v) else None for v in med.tolist()])
        start = end
    return result
