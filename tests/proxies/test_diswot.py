"""The DisWOT score against a literal, autograd implementation of the paper's listings."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from diswot.pipeline.errors import ProxyError
from diswot.proxies import Batch, get_proxy
from diswot.proxies._diswot import channel_similarity, class_similarity, fc_weight_grad
from diswot.spaces import FeatureNetwork


class Tiny(FeatureNetwork):
    def __init__(self, width: int, classes: int = 10, depth: int = 1) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
        for _ in range(depth - 1):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.classifier = nn.Linear(width, classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _literal_channel_similarity(f_t: torch.Tensor, f_s: torch.Tensor) -> torch.Tensor:
    # Listing 1, as printed in the paper.
    bsz, ch = f_s.shape[0], f_s.shape[1]
    f_s = f_s.view(bsz, ch, -1)
    f_t = f_t.view(bsz, ch, -1)
    emd_s = F.normalize(torch.bmm(f_s, f_s.permute(0, 2, 1)), dim=2)
    emd_t = F.normalize(torch.bmm(f_t, f_t.permute(0, 2, 1)), dim=2)
    g = emd_s - emd_t
    return (g * g).view(bsz, -1).sum() / (ch * bsz)


def _literal_batch_similarity(f_t: torch.Tensor, f_s: torch.Tensor) -> torch.Tensor:
    # Listing 2, as printed in the paper.
    bsz = f_s.shape[0]
    f_s = f_s.view(bsz, -1)
    f_t = f_t.view(bsz, -1)
    g_s = F.normalize(torch.mm(f_s, f_s.t()))
    g_t = F.normalize(torch.mm(f_t, f_t.t()))
    d = g_t - g_s
    return (d * d).view(-1, 1).sum() / (bsz * bsz)


def _autograd_fc_grad(net: FeatureNetwork, batch: Batch) -> torch.Tensor:
    net.zero_grad()
    F.cross_entropy(net(batch.images), batch.labels).backward()
    return net.classifier.weight.grad.detach().clone()


def _batch(n: int = 16, classes: int = 10, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(torch.randn(n, 3, 8, 8, generator=g), torch.randint(0, classes, (n,), generator=g), classes)


def test_closed_form_fc_gradient_equals_autograd() -> None:
    torch.manual_seed(0)
    net, batch = Tiny(12), _batch()
    out = net.forward_all(batch.images)
    closed = fc_weight_grad(out.logits.detach(), out.pooled.detach(), batch.labels)
    torch.testing.assert_close(closed, _autograd_fc_grad(net, batch), rtol=1e-5, atol=1e-7)


def test_channel_similarity_equals_listing_1() -> None:
    g = torch.Generator().manual_seed(1)
    g_t, g_s = torch.randn(10, 32, generator=g), torch.randn(10, 32, generator=g)
    g_s[3, 5] = 0.0  # a zero entry: F.normalize leaves a zero row
    torch.testing.assert_close(
        channel_similarity(g_t, g_s), _literal_channel_similarity(g_t, g_s), rtol=1e-5, atol=1e-7
    )


@pytest.mark.parametrize("name", ["diswot", "diswot-semantic", "diswot-relation"])
def test_proxy_equals_autograd_listings(name: str) -> None:
    torch.manual_seed(0)
    teacher, student, batch = Tiny(16, depth=3), Tiny(16, depth=1), _batch()
    proxy = get_proxy(name)
    got = proxy.evaluate(proxy.prepare(teacher, batch), student, batch)
    m_s = _literal_channel_similarity(_autograd_fc_grad(teacher, batch), _autograd_fc_grad(student, batch))
    with torch.no_grad():
        m_r = _literal_batch_similarity(teacher.forward_features(batch.images), student.forward_features(batch.images))
    want = {"diswot": m_s + m_r, "diswot-semantic": m_s, "diswot-relation": m_r}[name]
    assert got["score"] == pytest.approx(-float(want), rel=1e-5)
    if name == "diswot":
        assert got["semantic"] == pytest.approx(float(m_s), rel=1e-5)
        assert got["relation"] == pytest.approx(float(m_r), rel=1e-5)


def test_unequal_widths_need_class_mode() -> None:
    torch.manual_seed(0)
    teacher, student, batch = Tiny(16), Tiny(24), _batch()
    proxy = get_proxy("diswot", semantic="auto")
    with pytest.raises(ProxyError, match="semantic='class'"):
        proxy.evaluate(proxy.prepare(teacher, batch), student, batch)
    cls = get_proxy("diswot", semantic="class")
    terms = cls.evaluate(cls.prepare(teacher, batch), student, batch)
    assert all(math.isfinite(v) for v in terms.values())
    # the class-wise form is the row-normalised class Gram distance
    g_t, g_s = _autograd_fc_grad(teacher, batch), _autograd_fc_grad(student, batch)
    gram = lambda g: F.normalize(g @ g.t(), dim=1)  # noqa: E731
    want = ((gram(g_t) - gram(g_s)) ** 2).sum() / 100
    assert terms["semantic"] == pytest.approx(float(want), rel=1e-5)
    assert float(class_similarity(g_t, g_t)) == pytest.approx(0.0, abs=1e-12)


def test_identical_student_scores_best() -> None:
    torch.manual_seed(0)
    teacher, batch = Tiny(16, depth=2), _batch()
    proxy = get_proxy("diswot")
    ctx = proxy.prepare(teacher, batch)
    same = proxy.evaluate(ctx, teacher, batch)["score"]
    other = proxy.evaluate(ctx, Tiny(16, depth=3), batch)["score"]
    assert same == pytest.approx(0.0, abs=1e-6) and other < same


def test_non_finite_score_is_an_error() -> None:
    teacher, batch = Tiny(8), _batch()
    student = Tiny(8)
    with torch.no_grad():
        student.classifier.weight.fill_(float("nan"))
    proxy = get_proxy("diswot")
    with pytest.raises(ProxyError, match="non-finite"):
        proxy.score(proxy.prepare(teacher, batch), student, batch)


def test_scorer_equals_naive_autograd_on_real_s0_students() -> None:
    """The fast path (teacher once, inference mode, closed form) equals the naive pattern."""
    from diswot.proxies._diswot import naive_diswot
    from diswot.pipeline.scoring import Scorer
    from diswot.spaces import get_space

    space = get_space("s0")
    g = torch.Generator().manual_seed(0)
    batch = Batch(torch.randn(16, 3, 32, 32, generator=g), torch.randint(0, 100, (16,), generator=g), 100)
    teacher = space.build(space.decode("ResNet[5,5,5]"), num_classes=100)
    scorer = Scorer(space=space, proxy=get_proxy("diswot"), batches=[batch], teacher=teacher, num_classes=100, seed=3)
    for arch in ("ResNet[1,1,1]", "ResNet[3,3,3]", "ResNet[7,1,3]"):
        a = space.decode(arch)
        fast = scorer.score(a)
        naive = naive_diswot(teacher, scorer.build(a), batch)
        assert fast.score == pytest.approx(naive["score"], rel=1e-5)
        assert fast.terms["semantic"] == pytest.approx(naive["semantic"], rel=1e-5)
        assert fast.terms["relation"] == pytest.approx(naive["relation"], rel=1e-5)
