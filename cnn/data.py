"""Data sets through their real loaders.

- "digits": scikit-learn's bundled handwritten digits (1797 8x8 grey images, 10 classes, no network),
  upsampled to `image_size` x `image_size`, 3 channels, fixed seeded stratified 80/20 train/test split,
  normalized with the training-set mean/std (computed without the validation images). Augmentation: random crop with padding (no flip: digits
  are not mirror-symmetric). Used by the quick defaults and the tests.
- "cifar100": torchvision CIFAR100 in `data_root` (downloaded when `download: true` and online),
  RandomCrop(32, padding=4) + RandomHorizontalFlip + Normalize.
- "imagenet": ImageFolder `imagenet_path`/train and /val, RandomResizedCrop + flip + Normalize;
  evaluation Resize + CenterCrop.

Validation split (`val_fraction` > 0): a seeded part of the *training* set (stratified for digits),
disjoint from the images trained on, with the evaluation transform (no augmentation). The test set is
never used for choices. `train_subset` then applies to the remaining training images.
"""
from __future__ import annotations

import math
import socket
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms as T
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch.utils.data import Dataset, Subset
from torchvision.datasets import CIFAR100, ImageFolder

from pipeline.validate import BadInput

CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class DigitsDataset(Dataset):
    """Tensor images (N, 3, S, S), int64 labels; optional random-crop augmentation on tensors."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, augment: bool, padding: int):
        self.images, self.labels, self.augment, self.padding = images, labels, augment, padding

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        x = self.images[i]
        if self.augment and self.padding > 0:
            p, s = self.padding, x.shape[-1]
            x = F.pad(x, (p, p, p, p))  # zero padding = the (normalized) background value's neighbourhood
            dy, dx = torch.randint(0, 2 * p + 1, (2,)).tolist()
            x = x[:, dy:dy + s, dx:dx + s]
        return x, self.labels[i]


VAL_SEED = 12345  # the validation split is fixed (independent of `seed`, the same for every variant)
DIGITS_IMAGES, DIGITS_TEST_FRACTION = 1797, 0.2
TRAIN_IMAGES = {"digits": DIGITS_IMAGES - math.ceil(DIGITS_TEST_FRACTION * DIGITS_IMAGES), "cifar100": 50_000}
MIN_DIGITS_VAL = 10  # one validation image per class at least


def digits_val_size(n_train: int, val_fraction: float, key: str = "cnn.val_fraction") -> int:
    """The validation images taken out of `n_train` digits training images (scikit-learn rounds up)."""
    if round(n_train * val_fraction) < MIN_DIGITS_VAL:
        raise BadInput(f"params: `{key}` = {val_fraction} is not valid; allowed: 0, or a fraction that leaves at "
                       f"least {MIN_DIGITS_VAL} validation images (one per class) out of {n_train}")
    return math.ceil(n_train * val_fraction)


def val_size(n: int, val_fraction: float, key: str = "cnn.val_fraction") -> int:
    """The validation images taken out of a file-backed training set of `n` images (split_indices)."""
    n_val = round(n * val_fraction)
    if not 0 < n_val < n:
        raise BadInput(f"params: `{key}` = {val_fraction} is not valid; allowed: 0, or a fraction that leaves at "
                       f"least one training and one validation image out of {n}")
    return n_val


def training_images(dataset: str, val_fraction: float, train_subset: int, key: str = "cnn.val_fraction"):
    """How many images a run trains on, known from the params alone (digits, cifar100; None for imagenet,
    whose size is only known from its folder). BadInput naming `key` if the validation part is too small."""
    if dataset not in TRAIN_IMAGES:
        return None
    n = TRAIN_IMAGES[dataset]
    if val_fraction > 0:
        n -= (digits_val_size if dataset == "digits" else val_size)(n, val_fraction, key)
    return min(n, train_subset) if train_subset else n


def load_digits_split(image_size: int = 32, seed: int = 0, test_fraction: float = DIGITS_TEST_FRACTION,
                      val_fraction: float = 0.0):
    """Return (train_images, train_labels, test_images, test_labels) as float/int64 tensors; with
    `val_fraction` > 0 also (val_images, val_labels) appended, a stratified part of the training split."""
    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0       # (N, 1, 8, 8) in [0, 1]
    x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False)
    x = x.repeat(1, 3, 1, 1)
    y = torch.tensor(d.target, dtype=torch.int64)
    idx = np.arange(len(y))
    tr, te = train_test_split(idx, test_size=test_fraction, random_state=seed, stratify=d.target)
    va = None
    if val_fraction > 0:
        digits_val_size(len(tr), val_fraction)
        tr, va = train_test_split(tr, test_size=val_fraction, random_state=VAL_SEED, stratify=d.target[tr])
    mean, std = x[tr].mean(), x[tr].std()
    x = (x - mean) / std
    if va is None:
        return x[tr], y[tr], x[te], y[te]
    return x[tr], y[tr], x[te], y[te], x[va], y[va]


def split_indices(n: int, val_fraction: float) -> tuple[list[int], list[int]]:
    """(train indices, validation indices) of a data set of size n: a fixed seeded permutation."""
    n_val = val_size(n, val_fraction) if val_fraction > 0 else 0
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(VAL_SEED)).tolist()
    return sorted(perm[n_val:]), sorted(perm[:n_val])


def check_cifar_available(root: str, download: bool, key: str = "cnn.download") -> None:
    """Raise BadInput (one line) before training if CIFAR-100 is neither in `root` nor downloadable."""
    folder = Path(root) / "cifar-100-python"
    if (folder / "train").is_file() and (folder / "test").is_file():
        return
    if not download:
        raise BadInput(
            f"CIFAR-100 is not in {str(folder)!r} and `{key}` is false; set `{key}: true` (needs "
            f"internet) or place the extracted cifar-100-python folder in {root!r}")
    try:
        socket.create_connection(("www.cs.toronto.edu", 443), timeout=5).close()
    except OSError as e:
        raise BadInput(
            f"CIFAR-100 is not in {str(folder)!r} and cannot be downloaded (no network: {e}); download "
            f"cifar-100-python.tar.gz on a machine with internet and extract it into {root!r}") from e


def build_datasets(cfg):
    """(train_set, test_set) for `cfg.dataset` (a validated CnnConfig); see `build_splits`."""
    train, _, test = build_splits(cfg)
    return train, test


def build_splits(cfg):
    """(train_set, val_set or None, test_set) for `cfg.dataset` (a validated CnnConfig)."""
    vf = cfg.val_fraction
    val = None
    if cfg.dataset == "digits":
        parts = load_digits_split(cfg.image_size, seed=0, val_fraction=vf)
        xtr, ytr, xte, yte = parts[:4]
        pad = max(1, cfg.image_size // 8)
        train, test = DigitsDataset(xtr, ytr, True, pad), DigitsDataset(xte, yte, False, 0)
        if vf > 0:
            val = DigitsDataset(parts[4], parts[5], False, 0)
    elif cfg.dataset == "cifar100":
        check_cifar_available(cfg.data_root, cfg.download)
        norm = T.Normalize(CIFAR100_MEAN, CIFAR100_STD)
        resize = [] if cfg.image_size == 32 else [T.Resize(cfg.image_size)]
        train_tf = T.Compose(resize + [T.RandomCrop(cfg.image_size, padding=cfg.image_size // 8),
                                       T.RandomHorizontalFlip(), T.ToTensor(), norm])
        test_tf = T.Compose(resize + [T.ToTensor(), norm])
        train = CIFAR100(cfg.data_root, train=True, download=cfg.download, transform=train_tf)
        test = CIFAR100(cfg.data_root, train=False, download=False, transform=test_tf)
        if vf > 0:
            tr_idx, va_idx = split_indices(len(train), vf)
            val = Subset(CIFAR100(cfg.data_root, train=True, download=False, transform=test_tf), va_idx)
            train = Subset(train, tr_idx)
    elif cfg.dataset == "imagenet":
        norm = T.Normalize(IMAGENET_MEAN, IMAGENET_STD)
        s = cfg.image_size
        train_tf = T.Compose([T.RandomResizedCrop(s), T.RandomHorizontalFlip(), T.ToTensor(), norm])
        test_tf = T.Compose([T.Resize(round(s / 0.875)), T.CenterCrop(s), T.ToTensor(), norm])
        root = Path(cfg.imagenet_path)
        for split in ("train", "val"):
            if not (root / split).is_dir():
                raise BadInput(f"`cnn.imagenet_path`: {str(root / split)!r} does not exist; point it to "
                                 "the ImageNet-1k root with train/ and val/ class folders")
        train, test = ImageFolder(root / "train", train_tf), ImageFolder(root / "val", test_tf)
        if vf > 0:  # ImageNet's own val/ folder is our test set; validation comes out of train/
            tr_idx, va_idx = split_indices(len(train), vf)
            val = Subset(ImageFolder(root / "train", test_tf), va_idx)
            train = Subset(train, tr_idx)
    else:
        raise BadInput(f"unknown dataset {cfg.dataset!r}")
    if cfg.train_subset and cfg.train_subset < len(train):
        g = torch.Generator().manual_seed(cfg.seed)
        train = Subset(train, torch.randperm(len(train), generator=g)[: cfg.train_subset].tolist())
    return train, val, test


def data_fingerprint(dataset) -> list:
    """Arrays that identify the training data of a run (for its run key): its size, the indices a Subset
    takes, and the images themselves for digits (in memory) or the labels for the file-backed data sets."""
    base = dataset.dataset if isinstance(dataset, Subset) else dataset
    out = [np.array([len(dataset)]), np.asarray(getattr(dataset, "indices", []), dtype=np.int64)]
    if isinstance(base, DigitsDataset):
        out += [base.images.numpy(), base.labels.numpy()]
    elif hasattr(base, "targets"):
        out.append(np.asarray(base.targets, dtype=np.int64))
    return out
