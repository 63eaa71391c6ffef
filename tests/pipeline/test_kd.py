"""The KD loss of the paper's Eq. 1 against values computed by hand, and the recipe presets."""

from __future__ import annotations

import math

import pytest
import torch

from diswot.pipeline.kd import KDLoss, kd_loss
from diswot.pipeline.presets import PRESETS, preset_for


def test_kd_loss_matches_hand_computation() -> None:
    # z_S = (1, 2, 3), z_T = (3, 2, 1), label 0, rho = 2, gamma = 0.1, alpha = 0.9.
    # z/rho: teacher (1.5, 1, 0.5), student (0.5, 1, 1.5): the student's softened distribution is
    # the teacher's reversed, p_T = (a, b, c), p_S = (c, b, a) with a = e^1.5 / Z, c = e^0.5 / Z,
    # Z = e^1.5 + e^1 + e^0.5 = 8.848692. So KL(p_T || p_S) = a ln(a/c) + c ln(c/a) = (a - c) * 1
    # = (4.481689 - 1.648721) / 8.848692 = 0.320157.
    # CE = ln(e + e^2 + e^3) - 1 = ln(30.192875) - 1 = 2.407606.
    # L = 0.1 * 2.407606 + 0.9 * 2^2 * 0.320157 = 0.240761 + 1.152564 = 1.393325.
    terms = kd_loss(
        torch.tensor([[1.0, 2.0, 3.0]]),
        torch.tensor([[3.0, 2.0, 1.0]]),
        torch.tensor([0]),
        gamma=0.1,
        alpha=0.9,
        rho=2.0,
    )
    assert terms.kl.item() == pytest.approx(0.320157, abs=1e-6)
    assert terms.ce.item() == pytest.approx(2.407606, abs=1e-6)
    assert terms.total.item() == pytest.approx(1.393325, abs=1e-6)


def test_kd_loss_is_a_batch_mean_and_zero_for_a_perfect_student() -> None:
    zs = torch.tensor([[1.0, 2.0, 3.0], [0.3, -1.0, 2.0]])
    zt = torch.tensor([[3.0, 2.0, 1.0], [0.3, -1.0, 2.0]])  # second row: student == teacher
    y = torch.tensor([0, 2])
    both = kd_loss(zs, zt, y, gamma=0.0, alpha=1.0, rho=2.0)
    first = kd_loss(zs[:1], zt[:1], y[:1], gamma=0.0, alpha=1.0, rho=2.0)
    assert both.total.item() == pytest.approx(first.total.item() / 2, rel=1e-6)  # KL of row 2 is 0
    same = kd_loss(zt, zt, y, gamma=0.0, alpha=0.9, rho=4.0)
    assert same.total.item() == pytest.approx(0.0, abs=1e-7)


def test_kd_gradient_is_rho_independent_at_high_temperature() -> None:
    # Hinton et al.: with the rho^2 factor the soft-target gradient ~ (z_S - z_T) / C for large rho.
    zt = torch.tensor([[0.5, -0.2, 0.1, 0.0]])
    grads = []
    for rho in (50.0, 100.0):
        zs = torch.tensor([[0.1, 0.3, -0.4, 0.2]], requires_grad=True)
        kd_loss(zs, zt, torch.tensor([0]), gamma=0.0, alpha=1.0, rho=rho).total.backward()
        grads.append(zs.grad.clone())
    expected = ((torch.tensor([[0.1, 0.3, -0.4, 0.2]]) - zt) - (torch.tensor([[0.1, 0.3, -0.4, 0.2]]) - zt).mean()) / 4
    assert torch.allclose(grads[0], grads[1], atol=1e-3)
    assert torch.allclose(grads[1], expected, atol=1e-3)


def test_kd_loss_in_low_precision_is_computed_in_float32() -> None:
    zs = torch.randn(8, 10, generator=torch.Generator().manual_seed(0))
    zt = torch.randn(8, 10, generator=torch.Generator().manual_seed(1))
    y = torch.arange(8)
    full = kd_loss(zs, zt, y).total
    half = kd_loss(zs.bfloat16(), zt.bfloat16(), y).total
    assert half.dtype == torch.float32
    assert half.item() == pytest.approx(full.item(), rel=2e-2)


def test_kd_module_checks_its_arguments() -> None:
    assert "rho=4.0" in repr(KDLoss())
    with pytest.raises(ValueError, match="rho"):
        KDLoss(rho=0)
    with pytest.raises(ValueError, match="alpha"):
        KDLoss(alpha=-1)


def test_presets_follow_the_paper_and_torchvision() -> None:
    c = PRESETS["cifar"]
    assert (c.epochs, c.batch_size, c.lr, c.momentum, c.weight_decay) == (240, 64, 0.05, 0.9, 5e-4)
    assert c.milestones_for(240) == [150, 180, 210] and c.lr_decay == 0.1
    assert (c.kd_gamma, c.kd_alpha, c.kd_rho) == (0.1, 0.9, 4.0)  # supplementary B.1
    i = PRESETS["imagenet"]
    assert (i.epochs, i.batch_size, i.lr, i.momentum, i.weight_decay) == (90, 256, 0.1, 0.9, 1e-4)
    assert i.milestones_for(90) == [30, 60]
    assert (i.kd_alpha, i.kd_rho) == (3.0, 1.0)  # supplementary B.3: rho = 1, alpha = 3
    assert preset_for("auto", 32) is c and preset_for("auto", 224) is i
    assert math.isclose(c.lr * c.lr_decay**3, 5e-5)
