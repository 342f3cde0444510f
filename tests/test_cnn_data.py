"""The offline data set (scikit-learn digits) and the CIFAR-100 availability check."""
import socket

import pytest
import torch

from cnn.config import CnnConfig
from cnn.data import build_datasets, check_cifar_available, load_digits_split


def test_digits_split_shapes_labels_and_determinism():
    xtr, ytr, xte, yte = load_digits_split(32, seed=0)
    assert xtr.shape == (1437, 3, 32, 32) and xte.shape == (360, 3, 32, 32)
    assert ytr.dtype == torch.int64 and set(ytr.tolist()) == set(range(10)) == set(yte.tolist())
    counts = torch.bincount(yte, minlength=10)
    assert counts.min() >= 34 and counts.max() <= 38          # stratified
    assert abs(xtr.mean().item()) < 1e-4 and abs(xtr.std().item() - 1) < 1e-3
    assert torch.equal(xtr[:, 0], xtr[:, 2])                  # grey replicated to 3 channels
    again = load_digits_split(32, seed=0)
    assert torch.equal(again[0], xtr) and torch.equal(again[3], yte)


def test_digits_datasets_augment_train_only():
    cfg = CnnConfig(dataset="digits", image_size=16, train_subset=100)
    train, test = build_datasets(cfg)
    assert len(train) == 100 and len(test) == 360
    x, y = train[0]
    assert x.shape == (3, 16, 16) and 0 <= int(y) < 10
    xt1, _ = test[5]
    xt2, _ = test[5]
    assert torch.equal(xt1, xt2)


def test_cifar_missing_offline_is_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match=r"cnn.download.*true"):
        check_cifar_available(str(tmp_path), download=False)

    def no_network(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(socket, "create_connection", no_network)
    with pytest.raises(ValueError, match="cannot be downloaded"):
        check_cifar_available(str(tmp_path), download=True)
