"""SynFlow read from the layers' output gradients equals SynFlow read from the weights' gradients."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from diswot.pipeline.init import initialise
from diswot.proxies._synflow import _flow, _flow_by_outputs, absolute_network, synaptic_flow
from diswot.spaces import get_space

IMAGES = torch.zeros(2, 3, 16, 16)  # only the shape is read: SynFlow's input is all ones


class Depthwise(nn.Module):
    """A depthwise-separable block with biases, an in-place ReLU6 and a residual add."""

    def __init__(self, norm: bool = False, shift: str = "") -> None:
        super().__init__()
        self.shift = shift
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.pw = nn.Conv2d(8, 8, 1)
        self.act = nn.ReLU6(inplace=True)
        self.norm = nn.LayerNorm(8) if norm else nn.Identity()
        self.head = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.stem(x))
        x = x + self.act(self.pw(self.act(self.dw(x))))
        pooled = x.mean((2, 3))
        if self.shift == "mean":  # signs the module types do not show: negative inputs and gradients
            pooled = pooled - pooled.mean(1, keepdim=True)
        elif self.shift == "constant":  # negative inputs to the head, every gradient still positive
            pooled = pooled - 1e6
        logits = self.head(self.norm(pooled))
        return -logits if self.shift == "negate" else logits  # every input positive, every gradient negative


def _both(net: nn.Module, dtype: torch.dtype) -> tuple[float | None, float]:
    by_outputs = _flow_by_outputs(absolute_network(copy.deepcopy(net)).to(dtype), IMAGES, dtype)
    by_weights = _flow(absolute_network(copy.deepcopy(net)).to(dtype), IMAGES, dtype)
    return by_outputs, by_weights


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_output_gradients_give_the_weight_gradients_sum(dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    net = Depthwise()  # PyTorch's init: non-zero biases, which the output form takes out
    by_outputs, by_weights = _both(net, dtype)
    assert by_outputs is not None and by_weights > 0
    assert by_outputs == pytest.approx(by_weights, rel=1e-5 if dtype == torch.float32 else 1e-12)


def test_the_in_place_activation_does_not_change_the_captured_outputs() -> None:
    """The ReLU6 clips this network's |theta| activations: reading them after it would differ."""
    torch.manual_seed(0)
    net = initialise(Depthwise(), "normal")
    with torch.no_grad():
        assert float(absolute_network(copy.deepcopy(net)).stem(torch.ones(1, 3, 16, 16)).max()) > 6
    by_outputs, by_weights = _both(net, torch.float64)
    assert by_outputs == pytest.approx(by_weights, rel=1e-12)


def test_a_negative_input_falls_back_to_the_weight_gradients() -> None:
    torch.manual_seed(0)
    net = Depthwise(norm=True)  # LayerNorm makes the head's input negative
    by_outputs, by_weights = _both(net, torch.float32)
    assert by_outputs is None
    assert synaptic_flow(copy.deepcopy(net), IMAGES) == pytest.approx(by_weights, rel=1e-6)


@pytest.mark.parametrize("digits", ["22222222", "01201021", "10000002"])
def test_macro_students_score_as_by_the_weight_gradients(digits: str) -> None:
    """NAS-Bench-Macro's MobileNetV2 students (depthwise): the output form, to float32's precision."""
    space = get_space("macro")
    torch.manual_seed(0)
    net = initialise(space.build(space.decode(digits), num_classes=10))
    images = torch.zeros(1, 3, 32, 32)
    expected = _flow(absolute_network(copy.deepcopy(net)), images, torch.float32)
    assert math.isfinite(expected)
    assert synaptic_flow(net, images) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("shift", ["mean", "constant", "negate"])
def test_a_negative_input_no_module_shows_is_found_by_the_sign_check(shift: str) -> None:
    """No LayerNorm to rule the output form out beforehand: the pass's own sign checks do."""
    torch.manual_seed(0)
    net = Depthwise(shift=shift)
    by_outputs, by_weights = _both(net, torch.float32)
    assert by_outputs is None
    assert synaptic_flow(copy.deepcopy(net), IMAGES) == pytest.approx(by_weights, rel=1e-6)
