"""KD-based proxies (kd, cc, nst, sp): teacher side once, formulas, and a teacher copy scores best."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from diswot.pipeline.errors import ProxyError
from diswot.proxies import Batch, finite, get_proxy
from diswot.proxies._kd import correlation_congruence, hinton_kd, nst_mmd, similarity_preserving
from diswot.spaces import FeatureNetwork, get_space

from .conftest import TinyNet

KD = ["kd", "cc", "nst", "sp"]
NUM_CLASSES = 5


def net(seed: int, **kw: object) -> TinyNet:
    torch.manual_seed(seed)
    return TinyNet(**kw).train()  # type: ignore[arg-type]


@pytest.fixture()
def batch() -> Batch:
    g = torch.Generator().manual_seed(7)
    return Batch(torch.randn(10, 3, 8, 8, generator=g), torch.randint(0, NUM_CLASSES, (10,), generator=g), NUM_CLASSES)


def score(name: str, teacher: FeatureNetwork, student: FeatureNetwork, batch: Batch) -> dict[str, float]:
    proxy = get_proxy(name)
    ctx = proxy.prepare(teacher, batch)
    return finite(name, proxy.evaluate(ctx, student, batch))


@pytest.mark.parametrize("name", KD)
def test_teacher_copy_scores_best(name: str, batch: Batch) -> None:
    teacher = net(0, width=8)
    same = score(name, teacher, copy.deepcopy(teacher), batch)
    assert same["score"] == pytest.approx(0.0, abs=1e-9)
    for other in (net(1, width=8), net(2, width=12, depth=1)):
        assert score(name, teacher, other, batch)["score"] < same["score"] - 1e-9
    assert same["score"] == -same["loss"]


@pytest.mark.parametrize("name", KD)
def test_prepare_caches_teacher_once_and_leaves_it_untouched(name: str, batch: Batch) -> None:
    teacher = net(0)
    buffers = {k: v.clone() for k, v in teacher.named_buffers()}
    proxy = get_proxy(name)
    ctx = proxy.prepare(teacher, batch)
    assert {"features", "pooled", "logits"} <= set(ctx.cache)
    assert all(torch.equal(v, buffers[k]) for k, v in teacher.named_buffers())
    assert teacher.training
    calls = []
    teacher.register_forward_hook(lambda *_: calls.append(1))
    student = net(3)
    first = proxy.evaluate(ctx, student, batch)["score"]
    assert not calls  # the teacher is not run again per candidate
    assert proxy.evaluate(ctx, net(3), batch)["score"] == pytest.approx(first, rel=1e-9)
    assert all(p.grad is None for p in student.parameters())
    assert math.isfinite(first)


@pytest.mark.parametrize("name", KD)
def test_needs_a_teacher(name: str, batch: Batch) -> None:
    with pytest.raises(ProxyError, match="teacher"):
        get_proxy(name).prepare(None, batch)


@pytest.mark.parametrize("name", ["cc", "nst", "sp"])
def test_different_widths_and_map_sizes(name: str, batch: Batch) -> None:
    teacher = net(0, width=16)
    for student in (net(1, width=4), net(1, width=4, pool=True)):
        assert math.isfinite(score(name, teacher, student, batch)["score"])


def test_kd_needs_equal_class_counts(batch: Batch) -> None:
    with pytest.raises(ProxyError, match="same number of classes"):
        score("kd", net(0), net(1, num_classes=NUM_CLASSES + 1), batch)


def test_hinton_kd_formula() -> None:
    g = torch.Generator().manual_seed(0)
    zt, zs = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    rho = 4.0
    expected = F.kl_div(F.log_softmax(zs / rho, 1), F.softmax(zt / rho, 1), reduction="batchmean") * rho**2
    assert float(hinton_kd(zt, zs, rho)) == pytest.approx(float(expected), rel=1e-6)
    with pytest.raises(ValueError, match="temperature"):
        get_proxy("kd", temperature=0)
    assert get_proxy("kd").temperature == 4.0


def test_sp_formula() -> None:
    g = torch.Generator().manual_seed(0)
    ft, fs = torch.randn(4, 3, 2, 2, generator=g), torch.randn(4, 6, 1, 1, generator=g)
    gt = F.normalize(ft.flatten(1) @ ft.flatten(1).t(), dim=1)
    gs = F.normalize(fs.flatten(1) @ fs.flatten(1).t(), dim=1)
    assert float(similarity_preserving(ft, fs)) == pytest.approx(float(((gt - gs) ** 2).sum() / 16), rel=1e-6)


def test_cc_taylor_kernel_approximates_the_gaussian_rbf() -> None:
    g = torch.Generator().manual_seed(0)
    et, es = torch.randn(5, 8, generator=g), torch.randn(5, 3, generator=g)
    gamma = 0.4

    def rbf(e: torch.Tensor) -> torch.Tensor:
        e = F.normalize(e.double(), dim=1)
        return torch.exp(-gamma * torch.cdist(e, e) ** 2)

    exact = float(((rbf(et) - rbf(es)) ** 2).sum() / 25)
    assert float(correlation_congruence(et, es, gamma=gamma, order=8)) == pytest.approx(exact, rel=1e-6)
    assert float(correlation_congruence(et, es, gamma=gamma, order=2)) == pytest.approx(exact, rel=0.1)


def test_nst_formula_and_permutation_invariance() -> None:
    g = torch.Generator().manual_seed(0)
    ft, fs = torch.randn(2, 4, 3, 3, generator=g), torch.randn(2, 6, 3, 3, generator=g)
    # MMD^2 of the normalised channel maps with k(x, y) = (x.y)^2, by explicit double sums
    expected = 0.0
    for b in range(2):
        t = F.normalize(ft[b].reshape(4, -1).double(), dim=1)
        s = F.normalize(fs[b].reshape(6, -1).double(), dim=1)
        expected += float((t @ t.t()).pow(2).mean() + (s @ s.t()).pow(2).mean() - 2 * (t @ s.t()).pow(2).mean())
    assert float(nst_mmd(ft, fs)) == pytest.approx(expected / 2, rel=1e-9)
    # channels are samples of a distribution: their order does not matter
    assert float(nst_mmd(ft, fs[:, torch.randperm(6, generator=g)])) == pytest.approx(expected / 2, rel=1e-9)


def test_kd_proxies_on_s0_against_a_resnet_teacher() -> None:
    """An S0 student against the CIFAR ResNet-20 teacher: ResNet[3,3,3] *is* ResNet-20."""
    s0 = get_space("s0")
    g = torch.Generator().manual_seed(0)
    b = Batch(torch.randn(8, 3, 32, 32, generator=g), torch.randint(0, 10, (8,), generator=g), 10)
    torch.manual_seed(0)
    teacher = s0.build(s0.decode("ResNet[3,3,3]"), num_classes=10).train()
    torch.manual_seed(1)
    student = s0.build(s0.decode("ResNet[1,1,1]"), num_classes=10).train()
    for name in KD:
        assert score(name, teacher, copy.deepcopy(teacher), b)["score"] > score(name, teacher, student, b)["score"]


def test_kd_snip_is_snips_saliency_of_the_soft_target_loss(batch: Batch) -> None:
    teacher, student = net(0, width=8), net(1, width=8)
    proxy = get_proxy("kd-snip")
    ctx = proxy.prepare(teacher, batch)
    flags = {k: p.requires_grad for k, p in student.named_parameters()}
    got = finite("kd-snip", proxy.evaluate(ctx, student, batch))
    # by hand: |W * dL/dW| summed over the Conv2d/Linear weights, L Hinton's KL at rho = 4
    ref = copy.deepcopy(student)
    weights = [m.weight for m in ref.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        t_logits = teacher(batch.images)
    grads = torch.autograd.grad(hinton_kd(t_logits, ref(batch.images), 4.0), weights)
    expected = sum(float((w.detach() * g).abs().sum()) for w, g in zip(weights, grads))
    assert got["saliency"] == pytest.approx(expected, rel=1e-6)
    assert got["score"] == pytest.approx(math.log1p(got["saliency"]), rel=1e-12)
    assert all(p.grad is None and p.requires_grad == flags[k] for k, p in student.named_parameters())
    # a copy of the teacher is where the soft targets pull least: the loss is at its minimum
    assert proxy.evaluate(ctx, copy.deepcopy(teacher), batch)["saliency"] < 1e-6 * expected
    with pytest.raises(ProxyError, match="teacher"):
        proxy.prepare(None, batch)
    with pytest.raises(ValueError, match="kd-snip: temperature"):
        get_proxy("kd-snip", temperature=0)
    assert get_proxy("kd-snip", temperature=2.0).temperature == 2.0
