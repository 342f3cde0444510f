"""Data sets through their real loaders.

- "digits": scikit-learn's bundled handwritten digits (1797 8x8 grey images, 10 classes, no network),
  upsampled to `image_size` x `image_size`, 3 channels, fixed seeded stratified 80/20 train/test split,
  normalized with the training-set mean/std. Augmentation: random crop with padding (no flip: digits
  are not mirror-symmetric). Used by the quick defaults and the tests.
- "cifar100": torchvision CIFAR100 in `data_root` (downloaded when `download: true` and online),
  RandomCrop(32, padding=4) + RandomHorizontalFlip + Normalize.
- "imagenet": ImageFolder `imagenet_path`/train and /val, RandomResizedCrop + flip + Normalize;
  evaluation Resize + CenterCrop.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, Subset

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


def load_digits_split(image_size: int = 32, seed: int = 0, test_fraction: float = 0.2):
    """Return (train_images, train_labels, test_images, test_labels) as float/int64 tensors."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0       # (N, 1, 8, 8) in [0, 1]
    x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False)
    x = x.repeat(1, 3, 1, 1)
    y = torch.tensor(d.target, dtype=torch.int64)
    idx = np.arange(len(y))
    tr, te = train_test_split(idx, test_size=test_fraction, random_state=seed, stratify=d.target)
    mean, std = x[tr].mean(), x[tr].std()
    x = (x - mean) / std
    return x[tr], y[tr], x[te], y[te]


def check_cifar_available(root: str, download: bool, key: str = "cnn.download") -> None:
    """Raise a clear ValueError, before training, if CIFAR-100 is neither in `root` nor downloadable."""
    folder = Path(root) / "cifar-100-python"
    if (folder / "train").is_file() and (folder / "test").is_file():
        return
    if not download:
        raise ValueError(
            f"CIFAR-100 is not in {str(folder)!r} and `{key}` is false; set `{key}: true` (needs "
            f"internet) or place the extracted cifar-100-python folder in {root!r}")
    import socket

    try:
        socket.create_connection(("www.cs.toronto.edu", 443), timeout=5).close()
    except OSError as e:
        raise ValueError(
            f"CIFAR-100 is not in {str(folder)!r} and cannot be downloaded (no network: {e}); download "
            f"cifar-100-python.tar.gz on a machine with internet and extract it into {root!r}") from e


def build_datasets(cfg):
    """(train_set, test_set) for `cfg.dataset` (a validated CnnConfig)."""
    if cfg.dataset == "digits":
        xtr, ytr, xte, yte = load_digits_split(cfg.image_size, seed=0)
        pad = max(1, cfg.image_size // 8)
        train, test = DigitsDataset(xtr, ytr, True, pad), DigitsDataset(xte, yte, False, 0)
    elif cfg.dataset == "cifar100":
        import torchvision.transforms as T
        from torchvision.datasets import CIFAR100

        check_cifar_available(cfg.data_root, cfg.download)
        norm = T.Normalize(CIFAR100_MEAN, CIFAR100_STD)
        resize = [] if cfg.image_size == 32 else [T.Resize(cfg.image_size)]
        train_tf = T.Compose(resize + [T.RandomCrop(cfg.image_size, padding=cfg.image_size // 8),
                                       T.RandomHorizontalFlip(), T.ToTensor(), norm])
        test_tf = T.Compose(resize + [T.ToTensor(), norm])
        train = CIFAR100(cfg.data_root, train=True, download=cfg.download, transform=train_tf)
        test = CIFAR100(cfg.data_root, train=False, download=False, transform=test_tf)
    elif cfg.dataset == "imagenet":
        import torchvision.transforms as T
        from torchvision.datasets import ImageFolder

        norm = T.Normalize(IMAGENET_MEAN, IMAGENET_STD)
        s = cfg.image_size
        train_tf = T.Compose([T.RandomResizedCrop(s), T.RandomHorizontalFlip(), T.ToTensor(), norm])
        test_tf = T.Compose([T.Resize(round(s / 0.875)), T.CenterCrop(s), T.ToTensor(), norm])
        root = Path(cfg.imagenet_path)
        for split in ("train", "val"):
            if not (root / split).is_dir():
                raise ValueError(f"`cnn.imagenet_path`: {str(root / split)!r} does not exist; point it to "
                                 "the ImageNet-1k root with train/ and val/ class folders")
        train, test = ImageFolder(root / "train", train_tf), ImageFolder(root / "val", test_tf)
    else:
        raise ValueError(f"unknown dataset {cfg.dataset!r}")
    if cfg.train_subset and cfg.train_subset < len(train):
        g = torch.Generator().manual_seed(cfg.seed)
        train = Subset(train, torch.randperm(len(train), generator=g)[: cfg.train_subset].tolist())
    return train, test
