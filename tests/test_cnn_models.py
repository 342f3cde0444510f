"""BN removal and tiny forward/backward passes of both architectures."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnn.models import batchnorm_params, build_model, count_params, remove_batchnorm_

ARCHS = ["resnet50", "efficientnet_v2_s"]


def _bn_modules(model):
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("stem", ["imagenet", "cifar"])
def test_bn_removal_removes_exactly_the_bn_parameters(arch, stem):
    torch.manual_seed(0)
    bn = build_model(arch, 10, batchnorm=True, stem=stem)
    torch.manual_seed(0)
    nobn = build_model(arch, 10, batchnorm=False, stem=stem)
    n_bn = len(_bn_modules(bn))
    assert n_bn > 40                              # ResNet-50: 53, EfficientNetV2-S: many more
    assert _bn_modules(nobn) == []
    bn_count = batchnorm_params(bn)
    assert bn_count == sum(2 * m.num_features for m in _bn_modules(bn))   # weight + bias each
    assert count_params(bn) - count_params(nobn) == bn_count
    # nothing else changed: same names (minus BN) and the same initial values
    kept = dict(nobn.named_parameters())
    for name, p in bn.named_parameters():
        if name in kept:
            assert torch.equal(p, kept[name]), name
    assert len(kept) == len(list(bn.parameters())) - 2 * n_bn
    assert sum(isinstance(m, nn.Identity) for m in nobn.modules()) >= n_bn


def test_remove_batchnorm_handles_nested_and_returns_model():
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Sequential(nn.BatchNorm1d(4), nn.ReLU()))
    assert remove_batchnorm_(m) is m
    assert isinstance(m[1], nn.Identity) and isinstance(m[2][0], nn.Identity)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("batchnorm", [True, False])
def test_forward_backward_tiny_batch(arch, batchnorm):
    torch.manual_seed(0)
    model = build_model(arch, 10, batchnorm=batchnorm)
    x, y = torch.randn(2, 3, 32, 32), torch.tensor([1, 7])
    logits = model(x)
    assert logits.shape == (2, 10) and torch.isfinite(logits).all()
    F.cross_entropy(logits, y).backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_unknown_arch_and_stem():
    with pytest.raises(ValueError, match="torchvision classification model builder"):
        build_model("vgg_unknown", 10)
    with pytest.raises(ValueError, match="stem"):
        build_model("resnet50", 10, stem="tiny")
    with pytest.raises(ValueError, match="ResNets and EfficientNets only"):
        build_model("vgg11", 10, stem="cifar")


def test_a_new_torchvision_model_is_one_params_line(params_file, tmp_path):
    """Adding a model the documented way (its torchvision builder name in cnn.archs) trains it, BN removed."""
    from cnn.config import load
    from cnn.trainer import make_optimizer, train_step

    cfg = load(params_file(cnn={"archs": ["resnet50", "mobilenet_v3_small"]}))
    model = build_model("mobilenet_v3_small", cfg.num_classes, batchnorm=False, stem=cfg.stem)
    assert _bn_modules(model) == [] and any(isinstance(m, nn.Identity) for m in model.modules())
    opt = make_optimizer(model, "nobn-stablegrad", cfg)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    loss, _ = train_step(model, opt, x, y)
    assert torch.isfinite(loss)
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
