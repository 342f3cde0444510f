"""The offline data set (scikit-learn digits) and the CIFAR-100 availability check."""
import socket

import pytest
import torch
import torch.nn.functional as F
from conftest import committed

from cnn.config import validate
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


def CnnConfig(**kw):
    return validate({**committed()["cnn"], "val_fraction": 0.0, **kw})


def test_digits_datasets_augment_train_only():
    cfg = CnnConfig(dataset="digits", image_size=16, train_subset=100)
    train, test = build_datasets(cfg)
    assert len(train) == 100 and len(test) == 360
    x, y = train[0]
    assert x.shape == (3, 16, 16) and 0 <= int(y) < 10
    xt1, _ = test[5]
    xt2, _ = test[5]
    assert torch.equal(xt1, xt2)                              # test images: never augmented
    reads = torch.stack([train[0][0] for _ in range(8)])      # training images: random crops of one image
    assert any(not torch.equal(reads[0], r) for r in reads[1:])
    pad = 16 // 8
    padded = F.pad(train.dataset.images[train.indices[0]], (pad, pad, pad, pad))
    crops = [padded[:, dy:dy + 16, dx:dx + 16] for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)]
    assert all(any(torch.equal(r, c) for c in crops) for r in reads)   # each read is a shifted copy


def test_cifar_missing_offline_is_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match=r"cnn.download.*true"):
        check_cifar_available(str(tmp_path), download=False)

    def no_network(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(socket, "create_connection", no_network)
    with pytest.raises(ValueError, match="cannot be downloaded"):
        check_cifar_available(str(tmp_path), download=True)


def test_digits_validation_split_is_stratified_disjoint_and_fixed():
    _, ytr, _, yte, xva, yva = load_digits_split(8, seed=0, val_fraction=0.2)
    assert len(yva) == 288 and len(ytr) == 1437 - 288 and len(yte) == 360   # test split unchanged
    assert torch.equal(load_digits_split(8, seed=0)[3], yte)
    counts = torch.bincount(yva, minlength=10)
    assert counts.min() >= 27 and counts.max() <= 30                        # stratified
    tr, va, te = _digits_indices(0.2)
    assert not set(tr) & set(va) and not set(va) & set(te) and len(set(tr) | set(va) | set(te)) == 1797
    from sklearn.datasets import load_digits
    target = torch.tensor(load_digits().target)
    assert torch.equal(target[va], yva) and torch.equal(target[tr], ytr)     # the images behind each part
    assert torch.equal(load_digits_split(8, seed=0, val_fraction=0.2)[4], xva)  # fixed across calls


def _digits_indices(vf):
    """The original indices behind the digits train / validation parts (same calls as load_digits_split)."""
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from cnn.data import VAL_SEED
    d = load_digits()
    tr, te = train_test_split(np.arange(len(d.target)), test_size=0.2, random_state=0, stratify=d.target)
    tr, va = train_test_split(tr, test_size=vf, random_state=VAL_SEED, stratify=d.target[tr])
    return tr, va, te


def test_build_splits_validation_is_unaugmented_and_subset_applies_to_train():
    from cnn.data import build_splits
    cfg = CnnConfig(dataset="digits", image_size=16, val_fraction=0.25, train_subset=100)
    train, val, test = build_splits(cfg)
    assert len(train) == 100 and len(val) == 360 and len(test) == 360
    assert torch.equal(val[3][0], val[3][0])                                  # no random crop
    assert build_splits(CnnConfig(dataset="digits", image_size=16))[1] is None


def test_split_indices_disjoint_cover_and_errors():
    from cnn.data import split_indices
    tr, va = split_indices(1000, 0.1)
    assert len(va) == 100 and len(tr) == 900 and not set(tr) & set(va) and set(tr) | set(va) == set(range(1000))
    assert split_indices(1000, 0.1) == (tr, va)
    assert split_indices(10, 0.0) == (list(range(10)), [])
    with pytest.raises(ValueError, match=r"cnn\.val_fraction"):
        split_indices(3, 0.1)
    with pytest.raises(ValueError, match=r"cnn\.val_fraction"):
        load_digits_split(8, val_fraction=0.001)
