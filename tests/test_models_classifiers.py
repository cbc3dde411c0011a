"""Classifiers of the EoS stage: layer sizes by hand, shapes from the data, clear misfit errors."""

from __future__ import annotations

import pytest
import torch

from otgap.models.classifiers import CLASSIFIERS
from otgap.models.cnn import SmallCNN
from otgap.models.mlp import MLP

SHAPES = [(1, 8, 8), (3, 28, 28)]


def test_paper_mlp_has_the_papers_layer_sizes():
    model = MLP((3, 28, 28), 9)  # defaults: 2352-256-128-9, ReLU
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(2352, 256), (256, 128), (128, 9)]
    assert (
        sum(p.numel() for p in model.parameters())
        == 2352 * 256 + 256 + 256 * 128 + 128 + 128 * 9 + 9
    )
    assert sum(isinstance(m, torch.nn.ReLU) for m in model.modules()) == 2


def test_digits_eos_mlp():
    model = MLP((1, 8, 8), 10, hidden=(200, 200), activation="tanh")
    assert sum(p.numel() for p in model.parameters()) == 64 * 200 + 200 + 200 * 200 + 200 + 2010
    assert sum(isinstance(m, torch.nn.Tanh) for m in model.modules()) == 2


@pytest.mark.parametrize("name", list(CLASSIFIERS))
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_shape_and_gradients(name, shape):
    torch.manual_seed(0)
    model = CLASSIFIERS[name](shape, 7)
    x = torch.randn(5, *shape)
    out = model(x)
    assert out.shape == (5, 7)
    out.square().sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("name", list(CLASSIFIERS))
def test_wrong_input_shape_is_a_clear_error(name):
    model = CLASSIFIERS[name]((1, 8, 8), 10)
    with pytest.raises(ValueError, match="built for inputs"):
        model(torch.zeros(2, 3, 28, 28))


def test_cnn_too_deep_for_digits_fails_at_build_time():
    SmallCNN((1, 8, 8), 10, channels=(4, 4, 4))  # 8 -> 4 -> 2 -> 1 fits
    with pytest.raises(ValueError, match="vanishes after block 4"):
        SmallCNN((1, 8, 8), 10, channels=(4, 4, 4, 4))


def test_cnn_sizes_by_hand():
    model = SmallCNN((3, 28, 28), 9, channels=(16, 32))
    head = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][0]
    assert head.in_features == 32 * 7 * 7


def test_bad_activation_lists_known_ones():
    with pytest.raises(ValueError, match="tanh"):
        MLP((4,), 2, activation="swishy")
