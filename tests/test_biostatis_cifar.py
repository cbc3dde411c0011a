"""ResNet-18 (torchvision's layout, written here) and the CIFAR-10 augmentation of seed 003's
benchmark."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from otgap.models.resnet import resnet18
from otgap.train.cifar import augment


def test_resnet18_parameter_count_and_keys():
    model = resnet18(10)
    assert sum(p.numel() for p in model.parameters()) == 11_181_642
    keys = list(model.state_dict())
    # torchvision's resnet18 state dict: 20 convolutions, 20 batch norms (5 entries each), fc
    assert len(keys) == 122
    for key in ("conv1.weight", "layer2.0.downsample.0.weight", "layer4.1.bn2.running_var"):
        assert key in keys
    assert tuple(model.state_dict()["fc.weight"].shape) == (10, 512)
    assert tuple(model.conv1.weight.shape) == (64, 3, 7, 7) and model.conv1.stride == (2, 2)


def test_resnet18_forward_shape():
    model = resnet18(10).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_resnet_rejects_bad_arguments():
    with pytest.raises(ValueError, match="classes"):
        resnet18(1)


def test_augment_matches_a_per_image_crop_and_flip():
    x = torch.rand(6, 3, 32, 32)
    got = augment(x, torch.Generator().manual_seed(5))
    gen = torch.Generator().manual_seed(5)  # the same draws, in augment's order
    top = torch.randint(0, 9, (6,), generator=gen)
    left = torch.randint(0, 9, (6,), generator=gen)
    flip = torch.rand(6, generator=gen) < 0.5
    for k in range(6):
        padded = F.pad(x[k], (4, 4, 4, 4))
        crop = padded[:, top[k] : top[k] + 32, left[k] : left[k] + 32]
        if flip[k]:
            crop = crop.flip(-1)
        assert torch.equal(got[k], crop)
    assert flip.any() and not flip.all()
