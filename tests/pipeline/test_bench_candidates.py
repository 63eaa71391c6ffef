"""The candidate signals the three-benchmark ranking tried and did not keep
(``benchmarks/_candidate_proxies.py``): each computes what its docstring says, checked against a
direct computation on a real S0 student."""

from __future__ import annotations

import importlib
import math
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from diswot.proxies import PROXIES, Batch, TeacherContext
from diswot.spaces import FeatureNetwork, get_space


@pytest.fixture(scope="module", autouse=True)
def candidates() -> None:
    """Register the candidates as ``bench_cross_ranking.py`` does, by importing their module."""
    folder = Path(__file__).resolve().parents[2] / "benchmarks"
    sys.path.insert(0, str(folder))
    try:
        importlib.import_module("_candidate_proxies")
    finally:
        sys.path.remove(str(folder))


def _s0(arch: str, seed: int) -> FeatureNetwork:
    space = get_space("s0")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return space.build(space.decode(arch), num_classes=10)


def _batch(n: int) -> Batch:
    generator = torch.Generator().manual_seed(n)
    return Batch(torch.randn(n, 3, 16, 16, generator=generator), None, 10)


@pytest.mark.parametrize("n", [10, 63, 64, 130])
def test_swap_counts_the_distinct_sample_wise_patterns(n: int) -> None:
    """ln of the number of distinct rows of (units x images) ReLU codes, whatever the batch size
    (one packed word up to 63 images, several beyond)."""
    student, batch = _s0("ResNet[1,1,3]", 0), _batch(n)
    score = PROXIES.get("swap")().run(TeacherContext(teacher=None, batch=batch), student, batch)["score"]
    patterns: list[torch.Tensor] = []

    def keep(_module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        patterns.append((args[0].detach().reshape(n, -1) > 0).t().to(torch.uint8))

    hooks = [m.register_forward_pre_hook(keep) for m in student.modules() if isinstance(m, nn.ReLU)]
    with torch.no_grad():
        student(batch.images)
    for h in hooks:
        h.remove()
    distinct = torch.unique(torch.cat(patterns), dim=0).shape[0]
    assert 1 < distinct < sum(p.shape[0] for p in patterns)
    assert score == pytest.approx(math.log(distinct), abs=1e-12)


def test_nwot_last_is_nwots_kernel_on_the_last_feature_map() -> None:
    student, batch = _s0("ResNet[3,1,5]", 1), _batch(16)
    score = PROXIES.get("nwot-last")().run(TeacherContext(teacher=None, batch=batch), student, batch)["score"]
    with torch.no_grad():
        codes = (student.forward_all(batch.images).features.reshape(16, -1) > 0).double()
    kernel = codes @ codes.t() + (1 - codes) @ (1 - codes).t()
    assert score == pytest.approx(float(torch.linalg.slogdet(kernel)[1]), rel=1e-9)


@pytest.mark.parametrize("name", ["nwot-last", "swap"])
def test_the_relu_code_candidates_refuse_a_network_without_relu(name: str) -> None:
    """Like ``nwot``, they read ReLU codes: a ViT student (GELU) is refused in one line, before any trial."""
    space = get_space("pit-ti")
    student = space.build(space.decode("B16|R2|D1,4,2|H2,2,2"), num_classes=10)
    reason = PROXIES.get(name)().refusal(student, student.forward_all(torch.zeros(1, 3, 224, 224)))
    assert reason is not None and "ReLU" in reason


def test_kd_fc_snip_is_the_classifiers_saliency_of_the_soft_target_loss() -> None:
    """The closed form equals autograd's sum |W * dL/dW| on the classifier, L = rho^2 KL at rho = 4."""
    student, teacher, batch = _s0("ResNet[1,3,1]", 2), _s0("ResNet[7,7,7]", 3), _batch(12)
    proxy = PROXIES.get("kd-fc-snip")()
    ctx = proxy.prepare(teacher.train(), batch)
    score = proxy.run(ctx, student, batch)["score"]
    rho = 4.0
    out = student.forward_all(batch.images)
    soft = F.softmax(ctx.cache["logits"].double() / rho, dim=1)
    loss = rho**2 * F.kl_div(F.log_softmax(out.logits.double() / rho, dim=1), soft, reduction="batchmean")
    (grad,) = torch.autograd.grad(loss, student.classifier.weight)
    saliency = float((student.classifier.weight.detach().double() * grad.double()).abs().sum())
    assert score == pytest.approx(math.log1p(saliency), rel=1e-6)


@pytest.mark.parametrize(("few", "full"), [("grad_norm-8", "grad_norm"), ("fisher-8", "fisher")])
def test_the_eighth_batch_scores_are_the_full_scores_on_the_first_8_images(few: str, full: str) -> None:
    generator = torch.Generator().manual_seed(5)
    images, labels = torch.randn(20, 3, 16, 16, generator=generator), torch.randint(0, 10, (20,), generator=generator)
    batch, first = Batch(images, labels, 10), Batch(images[:8], labels[:8], 10)
    scores = []
    for name, probe in ((few, batch), (full, first)):
        student = _s0("ResNet[1,3,1]", 4)
        scores.append(PROXIES.get(name)().run(TeacherContext(teacher=None, batch=probe), student, probe)["score"])
    assert scores[0] == pytest.approx(scores[1], rel=1e-6)


def test_isotropy_entropy_is_log_c_for_isotropic_channels_and_zero_for_one_direction() -> None:
    candidates = sys.modules["_candidate_proxies"]
    generator = torch.Generator().manual_seed(0)
    iso = torch.randn(256, 8, 16, 16, generator=generator)  # 65,536 samples of 8 independent channels
    assert candidates.isotropy_entropy(iso) == pytest.approx(math.log(8), abs=1e-3)
    one = torch.randn(64, 1, 8, 8, generator=generator) * torch.arange(1.0, 9.0).view(1, 8, 1, 1)
    assert candidates.isotropy_entropy(one) == pytest.approx(0.0, abs=1e-6)


def test_az_expressivity_sums_the_blocks_and_progressivity_is_the_least_step() -> None:
    """Stem and every residual block of an S0 student: 1 + (1 + 3 + 1) blocks."""
    candidates = sys.modules["_candidate_proxies"]
    student, batch = _s0("ResNet[1,3,1]", 0), _batch(32)
    out = PROXIES.get("az-nas")().run(TeacherContext(teacher=None, batch=batch), student, batch)
    maps: list[torch.Tensor] = []
    modules = [student.stem, *[b for stage in student.stages for b in stage]]
    hooks = [m.register_forward_hook(lambda _m, _a, o: maps.append(o.detach())) for m in modules]
    with torch.no_grad():
        student(batch.images)
    for h in hooks:
        h.remove()
    values = [candidates.isotropy_entropy(f) for f in maps]
    assert out["blocks"] == len(values) == 6
    assert out["score"] == pytest.approx(sum(values), rel=1e-9)
    assert out["progressivity"] == pytest.approx(min(b - a for a, b in zip(values, values[1:])), rel=1e-9)


@pytest.mark.parametrize("block", ["double", "pool"])
def test_az_trainability_reads_the_spectral_norm_of_the_block(block: str) -> None:
    """f_out = 2 f_in has spectral norm 2; a 2x2 average pool, unshuffled, 1/2 (four 1/4 blocks):
    both score -s - 1/s + 2 = -0.5, up to the random probe's off-diagonal noise."""
    candidates = sys.modules["_candidate_proxies"]
    f_in = torch.randn(64, 4, 16, 16, requires_grad=True)
    f_out = 2 * f_in if block == "double" else F.avg_pool2d(f_in, 2)
    score = candidates.block_jacobian_score(f_in, f_out, torch.Generator().manual_seed(0))
    assert score == pytest.approx(-0.5, abs=0.05)


def test_az_trainability_scores_a_cell_that_ignores_its_input_as_untrainable() -> None:
    space = get_space("nb201")
    student = space.build(space.decode("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"), num_classes=10)
    batch = _batch(8)
    out = PROXIES.get("az-trainability")().run(TeacherContext(teacher=None, batch=batch), student, batch)
    assert out["score"] < -1e5 and out["blocks"] == 17
