"""The scorer gives each proxy what it declares it needs: teacher, images, labels, autograd, BN mode."""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch
from torch import nn

from diswot.pipeline.errors import ProxyError
from diswot.proxies import PROXIES, Batch, Proxy, TeacherContext, finite, get_proxy
from diswot.pipeline.scoring import Scorer
from diswot.pipeline.teachers import build_teacher
from diswot.spaces import FeatureNetwork, get_space

ARCH = "ResNet[1,1,1]"
CLASSES = 10


@pytest.fixture(scope="module")
def batch() -> Batch:
    g = torch.Generator().manual_seed(7)
    return Batch(torch.randn(8, 3, 32, 32, generator=g), torch.randint(0, CLASSES, (8,), generator=g), CLASSES)


@pytest.fixture(scope="module")
def teacher() -> FeatureNetwork:
    return build_teacher("resnet20", CLASSES, None)


def scorer(proxy: Proxy, batch: Batch, teacher: FeatureNetwork | None = None) -> Scorer:
    return Scorer(space=get_space("s0"), proxy=proxy, batches=[batch], teacher=teacher, num_classes=CLASSES, seed=3)


@pytest.mark.parametrize("name", PROXIES.names())
def test_declared_needs_leave_every_registered_score_unchanged(
    name: str, batch: Batch, teacher: FeatureNetwork
) -> None:
    """Scoring under the declared needs equals evaluating with everything given (the full batch,
    autograd on, the student in train mode): a wrong declaration changes the score or fails."""
    proxy = get_proxy(name, **({"semantic": "class"} if name.startswith("diswot") else {}))
    s = scorer(proxy, batch, teacher)
    arch = s.space.decode(ARCH)
    declared = s.raw(arch)[0]  # the terms before a reference (diswot-plus ranks them against one)
    full = Batch(s.batches[0].images, s.batches[0].labels, CLASSES)
    # the teacher's side was prepared by the scorer (with the seeded teacher init); reuse it
    ctx = s.contexts[0] if proxy.needs_teacher else proxy.prepare(None, full)
    with s.seeded(0), torch.enable_grad():  # the scorer's seeded stream (zen draws from it)
        net = s.build(arch, None).train()
        everything = finite(name, proxy.evaluate(ctx, net, full))
    assert declared == pytest.approx(everything, rel=1e-6, abs=1e-9)


class Spy(Proxy):
    """Records what it was given."""

    name: ClassVar[str] = "spy"
    seen: ClassVar[dict[str, object]] = {}

    def evaluate(self, ctx: TeacherContext, student: FeatureNetwork, batch: Batch) -> dict[str, float]:
        type(self).seen = {
            "grad": torch.is_grad_enabled(),
            "labels": batch.labels is not None,
            "images": bool(batch.images.abs().sum() > 0),
            "training": student.training,
            "batchnorm": any(isinstance(m, nn.BatchNorm2d) for m in student.modules()),
            "teacher": ctx.teacher is not None,
        }
        student(batch.images)
        return {"score": 1.0}


@pytest.mark.parametrize(
    ("needs", "expected"),
    [
        ({}, {"grad": False, "labels": False, "images": True, "training": True, "batchnorm": True, "teacher": False}),
        (
            {"needs_grad": True, "needs_labels": True, "needs_teacher": True},
            {"grad": True, "labels": True, "images": True, "training": True, "batchnorm": True, "teacher": True},
        ),
        ({"needs_data": False, "bn_mode": "eval"}, {"images": False, "training": False, "batchnorm": True}),
        ({"bn_mode": "none"}, {"training": True, "batchnorm": False}),
    ],
)
def test_the_scorer_gives_a_proxy_what_it_declares(
    needs: dict[str, object], expected: dict[str, bool], batch: Batch, teacher: FeatureNetwork
) -> None:
    proxy_cls = type("Declared", (Spy,), dict(needs))
    s = scorer(proxy_cls(), batch, teacher)
    assert s.score(s.space.decode(ARCH)).score == 1.0
    seen = proxy_cls.seen
    assert {k: seen[k] for k in expected} == expected


def test_a_proxy_that_reads_undeclared_labels_fails_with_the_fix(batch: Batch) -> None:
    class Undeclared(Proxy):
        name: ClassVar[str] = "undeclared"
        needs_grad: ClassVar[bool] = True

        def evaluate(self, ctx: TeacherContext, student: FeatureNetwork, batch: Batch) -> dict[str, float]:
            from diswot.proxies._util import cross_entropy

            return {"score": float(cross_entropy(student(batch.images), batch.labels))}

    s = scorer(Undeclared(), batch)
    with pytest.raises(ProxyError, match="declare needs_labels = True"):
        s.score(s.space.decode(ARCH))


def test_a_proxy_that_takes_gradients_without_declaring_them_fails(batch: Batch) -> None:
    class NoGrad(Proxy):
        name: ClassVar[str] = "no-grad"

        def evaluate(self, ctx: TeacherContext, student: FeatureNetwork, batch: Batch) -> dict[str, float]:
            student(batch.images).sum().backward()
            return {"score": 0.0}

    s = scorer(NoGrad(), batch)
    with pytest.raises(RuntimeError, match="does not require grad"):
        s.score(s.space.decode(ARCH))
