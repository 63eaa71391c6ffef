"""Baseline zero-cost proxies: finite, deterministic, side-effect free, and their formulas."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from diswot.pipeline.errors import ProxyError
from diswot.proxies import PROXIES, Batch, Proxy, finite, get_proxy
from diswot.proxies._jacov import jacobian_covariance_score
from diswot.spaces import FeatureNetwork, get_space, naslib_to_nb201

from .conftest import TinyNet

BASELINES = [
    "params",
    "flops",
    "grad_norm",
    "snip",
    "grasp",
    "fisher",
    "synflow",
    "jacov",
    "nwot",
    "plain",
    "l2_norm",
    "zen",
    "zico",
    "meco",
    "depth",
]
KD = ["kd", "cc", "nst", "sp"]
NUM_CLASSES = 5


def make_net(seed: int = 0, **kw: int) -> TinyNet:
    torch.manual_seed(seed)
    return TinyNet(**kw).train()


@pytest.fixture()
def batch() -> Batch:
    g = torch.Generator().manual_seed(123)
    return Batch(torch.randn(12, 3, 8, 8, generator=g), torch.randint(0, NUM_CLASSES, (12,), generator=g), NUM_CLASSES)


def evaluate(name: str, net: FeatureNetwork, batch: Batch, seed: int = 0, **options: float) -> dict[str, float]:
    proxy = get_proxy(name, **options)
    ctx = proxy.prepare(None, batch)
    torch.manual_seed(seed)
    return finite(name, proxy.evaluate(ctx, net, batch))


def test_every_proxy_is_registered_with_its_contract() -> None:
    for name in BASELINES + KD:
        cls = PROXIES.get(name)
        assert issubclass(cls, Proxy) and cls.name == name
        assert cls.citation and cls.__doc__, name
        assert cls.bn_mode in ("train", "eval", "none")
        assert cls.needs_teacher == (name in KD)
    assert PROXIES.get("synflow").bn_mode == "none"
    for name in ("params", "flops", "synflow", "l2_norm", "zen", "depth"):
        assert not PROXIES.get(name).needs_data, name
    for name in ("grad_norm", "snip", "grasp", "fisher", "plain", "zico"):
        assert PROXIES.get(name).needs_labels and PROXIES.get(name).needs_grad, name


@pytest.mark.parametrize("name", BASELINES)
def test_finite_deterministic_and_side_effect_free(name: str, batch: Batch) -> None:
    net = make_net()
    before = {k: v.clone() for k, v in net.named_parameters()}
    flags = {k: v.requires_grad for k, v in net.named_parameters()}
    grad_mode = torch.is_grad_enabled()
    first = evaluate(name, net, batch)
    assert math.isfinite(first["score"])
    # nothing leaks: no .grad, same requires_grad flags, same parameters, same modes, same dtype
    for k, p in net.named_parameters():
        assert p.grad is None, (name, k)
        assert p.requires_grad == flags[k]
        assert torch.equal(p, before[k]), (name, k)
        assert p.dtype == torch.float32
    assert all(m.training for m in net.modules())
    assert torch.is_grad_enabled() == grad_mode
    # deterministic: a fresh net built and scored with the same seeds gives the same score
    again = evaluate(name, make_net(), batch)
    assert again["score"] == pytest.approx(first["score"], rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("name", ["params", "flops", "synflow", "l2_norm"])
def test_size_proxies_grow_with_width_and_depth(name: str, batch: Batch) -> None:
    small = evaluate(name, make_net(width=4, depth=1), batch)["score"]
    wide = evaluate(name, make_net(width=16, depth=1), batch)["score"]
    deep = evaluate(name, make_net(width=4, depth=3), batch)["score"]
    assert wide > small and deep > small


def test_params_and_flops_exact(batch: Batch) -> None:
    w, d = 8, 2
    net = make_net(width=w, depth=d)
    params = 3 * w * 9 + 2 * w + d * (w * w * 9 + 2 * w) + w * NUM_CLASSES + NUM_CLASSES
    out = evaluate("params", net, batch)
    assert out["count"] == params and out["score"] == pytest.approx(params / 1e6)
    hw = batch.images.shape[2] * batch.images.shape[3]
    macs = 3 * w * 9 * hw + d * w * w * 9 * hw + w * NUM_CLASSES
    out = evaluate("flops", net, batch)
    assert out["score"] == pytest.approx(macs / 1e6) and out["flops"] == 2 * macs


def test_flops_leaves_mode_and_running_stats(batch: Batch) -> None:
    net = make_net()
    stats = {k: v.clone() for k, v in net.named_buffers()}
    evaluate("flops", net, batch)
    assert net.training and all(torch.equal(v, stats[k]) for k, v in net.named_buffers())


class LinearNet(FeatureNetwork):
    """1x1 conv -> global pool -> linear, no biases, no BN: synflow has a closed form."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.classifier = nn.Linear(4, 2, bias=False)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


def test_synflow_closed_form(batch: Batch) -> None:
    torch.manual_seed(0)
    net = LinearNet().train()
    # BN removed, |W|, ones input: R = 1^T |W2| |W1| 1, and each layer contributes R (homogeneity)
    w1 = net.conv.weight.detach().double().abs().reshape(4, 3)
    w2 = net.classifier.weight.detach().double().abs()
    r = float(torch.ones(2, dtype=torch.float64) @ w2 @ w1 @ torch.ones(3, dtype=torch.float64))
    out = evaluate("synflow", net, batch)
    assert out["synflow"] == pytest.approx(2 * r, rel=1e-6)  # the pass runs in float32
    assert out["score"] == pytest.approx(math.log1p(2 * r), rel=1e-6)
    assert isinstance(net.bn, nn.BatchNorm2d)  # the student keeps its BN: synflow works on a copy


def test_synflow_beyond_float32_is_computed_in_float64(batch: Batch) -> None:
    """S above float32's range (3.4e38) is not inf: the pass runs again in float64."""
    torch.manual_seed(0)
    net = LinearNet().train()
    with torch.no_grad():
        net.conv.weight.mul_(1e25)
        net.classifier.weight.mul_(1e25)
    w1 = net.conv.weight.detach().double().abs().reshape(4, 3)
    w2 = net.classifier.weight.detach().double().abs()
    r = float(torch.ones(2, dtype=torch.float64) @ w2 @ w1 @ torch.ones(3, dtype=torch.float64))
    assert r > 1e40
    out = evaluate("synflow", net, batch)
    assert out["synflow"] == pytest.approx(2 * r, rel=1e-12)
    assert out["score"] == pytest.approx(math.log1p(2 * r), rel=1e-12)


def _manual_grads(net: FeatureNetwork, batch: Batch) -> list[tuple[torch.Tensor, torch.Tensor]]:
    net = copy.deepcopy(net)
    F.cross_entropy(net(batch.images), batch.labels).backward()
    return [(m.weight.detach(), m.weight.grad) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def test_grad_norm_snip_plain_formulas(batch: Batch) -> None:
    net = make_net()
    wg = _manual_grads(net, batch)
    assert evaluate("grad_norm", net, batch)["score"] == pytest.approx(sum(float(g.norm()) for _, g in wg), rel=1e-5)
    assert evaluate("snip", net, batch)["score"] == pytest.approx(
        sum(float((w * g).abs().sum()) for w, g in wg), rel=1e-5
    )
    assert evaluate("plain", net, batch)["score"] == pytest.approx(
        sum(float((w * g).sum()) for w, g in wg), rel=1e-4, abs=1e-7
    )
    l2 = sum(float(w.norm()) for w, _ in wg)
    assert evaluate("l2_norm", net, batch)["score"] == pytest.approx(l2, rel=1e-6)


def test_grasp_matches_finite_difference_hessian_vector_product(batch: Batch) -> None:
    net = make_net().double()
    b = Batch(batch.images.double(), batch.labels, NUM_CLASSES)
    weights = [m.weight for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]

    def grads() -> list[torch.Tensor]:
        return list(torch.autograd.grad(F.cross_entropy(net(b.images), b.labels), weights))

    g = [x.detach() for x in grads()]
    eps = 1e-5
    with torch.no_grad():
        for w, d in zip(weights, g):
            w.add_(eps * d)
    plus = grads()
    with torch.no_grad():
        for w, d in zip(weights, g):
            w.sub_(2 * eps * d)
    minus = grads()
    with torch.no_grad():
        for w, d in zip(weights, g):
            w.add_(eps * d)
    expected = sum(float((-w.detach() * (p - m) / (2 * eps)).sum()) for w, p, m in zip(weights, plus, minus))
    assert evaluate("grasp", net, b)["score"] == pytest.approx(expected, rel=1e-4, abs=1e-8)


def test_fisher_formula(batch: Batch) -> None:
    net = make_net()
    clone = copy.deepcopy(net)
    acts: list[torch.Tensor] = []

    def keep(_m: nn.Module, _i: object, out: torch.Tensor) -> None:
        out.retain_grad()
        acts.append(out)

    for m in clone.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.register_forward_hook(keep)
    logits = clone(batch.images)
    F.cross_entropy(logits, batch.labels, reduction="sum").backward()
    n = batch.images.shape[0]
    expected = 0.0
    for a in acts:
        prod = a.detach() * a.grad
        per = prod.sum(dim=(2, 3)) if prod.dim() == 4 else prod
        expected += float(per.double().square().sum() / (2 * n))
    assert evaluate("fisher", net, batch)["score"] == pytest.approx(expected, rel=1e-4)


def test_jacov_score_formula() -> None:
    # orthogonal zero-mean rows: corrcoef is the identity, every eigenvalue is 1
    j = torch.tensor([[1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 1.0, -1.0], [1.0, 1.0, -1.0, -1.0]])
    k = 1e-5
    assert jacobian_covariance_score(j, k) == pytest.approx(-3 * (math.log(1 + k) + 1 / (1 + k)))
    # identical Jacobians are maximally correlated: a much lower score
    assert jacobian_covariance_score(torch.stack([j[0]] * 3), k) < -1e4


class ConstantNet(FeatureNetwork):
    """Output independent of the input (a NAS-Bench-201 cell with no input-output path)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.classifier = nn.Linear(4, NUM_CLASSES)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv(x * 0.0))


@pytest.mark.parametrize("name", ["jacov", "nwot"])
def test_disconnected_network_is_a_proxy_error(name: str, batch: Batch) -> None:
    with pytest.raises(ProxyError, match=name):
        evaluate(name, ConstantNet(), batch)


def test_nwot_matches_the_hamming_kernel(batch: Batch) -> None:
    net = make_net()
    codes: list[torch.Tensor] = []
    for m in net.modules():
        if isinstance(m, nn.ReLU):
            m.register_forward_hook(lambda _m, inp, _o: codes.append((inp[0].reshape(len(inp[0]), -1) > 0).double()))
    with torch.no_grad():
        net(batch.images)
    c = torch.cat(codes, dim=1)
    n_units = c.shape[1]
    hamming = torch.cdist(c, c, p=1)
    expected = torch.linalg.slogdet(n_units - hamming).logabsdet
    for m in net.modules():
        m._forward_hooks.clear()
    out = evaluate("nwot", net, batch)
    assert out["score"] == pytest.approx(float(expected), rel=1e-9)
    assert out["relus"] == 3


def test_nwot_singular_kernel_and_no_relu(batch: Batch) -> None:
    same = Batch(batch.images[:1].repeat(4, 1, 1, 1), batch.labels[:4], NUM_CLASSES)
    with pytest.raises(ProxyError, match="singular"):
        evaluate("nwot", make_net(), same)
    with pytest.raises(ProxyError, match="ReLU"):
        evaluate("nwot", LinearNet(), batch)


def test_zico_formula(batch: Batch) -> None:
    """Eq. 9 of ZiCo: per layer, log of the sum over weights of mean|g| / std(g) over two mini-batches."""
    net = make_net()
    grads: list[list[torch.Tensor]] = []
    for images, labels in zip(batch.images.chunk(2), batch.labels.chunk(2)):
        net.zero_grad()
        F.cross_entropy(net(images), labels).backward()
        layers = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        grads.append([m.weight.grad.detach().double().reshape(-1).clone() for m in layers])
    expected = 0.0
    for layer in zip(*grads):
        g = torch.stack(layer)
        mean, std = g.abs().mean(0), g.std(0, unbiased=False)
        expected += math.log(float((mean[std > 0] / std[std > 0]).sum()))
    net.zero_grad(set_to_none=True)
    assert evaluate("zico", net, batch)["score"] == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ProxyError, match="at least 4"):
        evaluate("zico", make_net(), Batch(batch.images[:3], batch.labels[:3], NUM_CLASSES))


def test_meco_formula(batch: Batch) -> None:
    """Eq. 4 of MeCo: the smallest eigenvalue of the first image's channel correlation, every map, summed."""
    net = make_net()
    maps: list[torch.Tensor] = []

    def keep(_m: nn.Module, _i: object, out: torch.Tensor) -> None:
        if out.dim() == 4:
            maps.append(out[0].reshape(out.shape[1], -1))

    for m in net.modules():
        m.register_forward_hook(keep)
    with torch.no_grad():
        net(batch.images)
    for m in net.modules():
        m._forward_hooks.clear()
    expected = sum(float(torch.linalg.eigvalsh(torch.corrcoef(f.double()).nan_to_num(0.0)).min()) for f in maps)
    out = evaluate("meco", net, batch)
    assert out["score"] == pytest.approx(expected, rel=1e-9)
    assert out["maps"] == len(maps) == 3 * 3 + 1  # conv, BN, ReLU of the stem and 2 blocks, and the body
    with pytest.raises(ProxyError, match="feature maps"):
        evaluate("meco", FlatNet(), batch)


class FlatNet(FeatureNetwork):
    """Flattened pixels -> linear: no feature map at all."""

    def __init__(self) -> None:
        super().__init__()
        self.classifier = nn.Linear(3 * 8 * 8, NUM_CLASSES)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


def test_zen_uses_its_own_gaussian_copy(batch: Batch) -> None:
    net = make_net()
    a = evaluate("zen", net, batch, seed=1)
    b = evaluate("zen", make_net(seed=99), batch, seed=1)  # weights are redrawn: the init does not matter
    assert a["score"] == pytest.approx(b["score"], rel=1e-6)
    assert a["score"] == pytest.approx(a["expressivity"] + a["bn"], rel=1e-9)
    with pytest.raises(ValueError, match="alpha"):
        get_proxy("zen", alpha=0)


def test_label_out_of_range_is_a_proxy_error(batch: Batch) -> None:
    bad = Batch(batch.images, batch.labels + 10, NUM_CLASSES + 10)
    with pytest.raises(ProxyError, match="out of range"):
        evaluate("snip", make_net(), bad)


@pytest.mark.parametrize("space,arch", [("nb201", (0, 2, 3, 2, 3, 1)), ("s0", "ResNet[1,1,1]")])
def test_real_space_networks(space: str, arch: object, batch: Batch) -> None:
    """Every baseline on a real NB201 cell and the smallest S0 ResNet (batch 8, 16x16 images)."""
    sp = get_space(space)
    a = naslib_to_nb201(arch) if space == "nb201" else sp.decode(arch)  # type: ignore[arg-type]
    g = torch.Generator().manual_seed(0)
    b = Batch(torch.randn(8, 3, 16, 16, generator=g), torch.randint(0, 10, (8,), generator=g), 10)
    torch.manual_seed(0)
    net = sp.build(a, num_classes=10).train()
    for name in BASELINES:
        assert math.isfinite(evaluate(name, copy.deepcopy(net), b)["score"]), name
    assert evaluate("params", net, b)["count"] == sp.count_params(a, 10)


def test_nb201_benchmark_smoke(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    """benchmarks/bench_nb201_proxies.py on 5 archs: params equal NASLib's exactly."""
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_nb201_proxies.py"
    spec = importlib.util.spec_from_file_location("bench_nb201_proxies", path)
    bench = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(bench)  # type: ignore[union-attr]
    out = tmp_path / "b.json"
    args = ["--datasets", "cifar100", "--limit", "5", "--proxies", "params,synflow", "--json", str(out)]
    assert bench.main([*args, "--cache", str(tmp_path / "c.jsonl")]) == 0
    doc = json.loads(out.read_text())["datasets"]["cifar100"]
    assert doc["params"]["agree"] == pytest.approx(1.0) and doc["params"]["ours"] == pytest.approx(
        doc["params"]["naslib"]
    )
    assert doc["synflow"]["agree"] > 0.8 and doc["synflow"]["n"] == 5
    assert "synflow" in capsys.readouterr().out
    # a second run reads every score back from the cache
    assert bench.main([*args, "--cache", str(tmp_path / "c.jsonl")]) == 0


def test_nb201_benchmark_fisher_fanin_weights_layers_by_fan_in() -> None:
    """The benchmark's NASLib-style fisher: each layer's Delta_c counted fan-in times."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_nb201_proxies.py"
    spec = importlib.util.spec_from_file_location("bench_nb201_proxies_fanin", path)
    bench = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(bench)  # type: ignore[union-attr]
    torch.manual_seed(0)
    b = Batch(torch.randn(6, 3, 8, 8), torch.randint(0, 5, (6,)), 5)
    linear = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 5))
    plain = evaluate("fisher", copy.deepcopy(linear), b)["score"]
    fanin = bench.FisherFanIn().evaluate(None, copy.deepcopy(linear), b)["score"]
    assert fanin == pytest.approx(192 * plain, rel=1e-9)
    two = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5))
    plain = evaluate("fisher", copy.deepcopy(two), b)["score"]
    fanin = bench.FisherFanIn().evaluate(None, copy.deepcopy(two), b)["score"]
    assert 4 * plain < fanin < 27 * plain  # fan-ins 27 (conv) and 4 (linear)
