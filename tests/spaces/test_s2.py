"""S2: the NDS-style ResNet spaces for CIFAR and ImageNet (supplementary B.3, Tables 10-14)."""

from __future__ import annotations

import pytest
import torch

from diswot.spaces import (
    PAPER_ARCHS,
    ArchError,
    Limits,
    S2Arch,
    S2Stage,
    bottleneck_mid_width,
    get_space,
)


def _n(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ------------------------------------------------------------------------------ paper architectures
def test_table12_cifar() -> None:
    paper = PAPER_ARCHS["cifar"]
    space = get_space(paper.space)
    assert space.name == "s2-cifar"
    assert space.encode(paper.arch) == "C88|B7x96d3s1|B5x192d2s2|B5x176d2s1|B5x168d3s2|B3x112d3s2|B3x512d1s1"
    net = space.build(paper.arch)
    assert space.count_params(paper.arch) == _n(net) == 17_174_156
    assert space.count_layers(paper.arch) == 1 + 2 * 14 + 1
    out = net.forward_all(torch.randn(2, 3, 32, 32))
    assert out.features.shape == (2, 512, 4, 4)  # Table 12: the last stage sees 4x4
    assert out.pooled.shape == (2, 512) and out.logits.shape == (2, 100)


def test_table13_imagenet_under_13m_and_20_layers() -> None:
    paper = PAPER_ARCHS["imagenet"]
    space = get_space(paper.space)
    assert space.encode(paper.arch) == "C96|B3x64d3s2|B3x128d2s2|B3x256d2s2|B3x512d2s2"
    net = space.build(paper.arch)
    params = space.count_params(paper.arch)
    assert params == _n(net) == 11_792_968
    assert params < 13_000_000
    assert space.count_layers(paper.arch) == 20
    assert space.default_limits == Limits(max_params=13_000_000, max_layers=20)
    assert space.check(paper.arch, space.default_limits) is None
    with torch.no_grad():
        out = net.forward_all(torch.randn(1, 3, 224, 224))
    assert out.features.shape == (1, 512, 7, 7)
    assert out.logits.shape == (1, 1000)


def test_table14_imagenet_head() -> None:
    paper = PAPER_ARCHS["imagenet-seg"]
    space = get_space(paper.space)
    assert space.encode(paper.arch) == "C64|B3x64d2s2|B3x128d2s2|B3x256d2s2|B3x512d2s2|H2384"
    assert space.decode(space.encode(paper.arch)) == paper.arch
    net = space.build(paper.arch)
    assert space.count_params(paper.arch) == _n(net) == 14_791_112  # with the 2384 x 1000 FC
    assert space.count_layers(paper.arch) == 1 + 2 * 8 + 1 + 1  # Table 14's "# layers" + FC
    reason = space.check(paper.arch, space.default_limits)
    assert reason is not None and "parameters exceed" in reason
    with torch.no_grad():
        out = net.forward_all(torch.randn(1, 3, 64, 64))
    assert out.features.shape == (1, 2384, 2, 2)
    assert out.features.min() >= 0  # the head ends with BN + ReLU


# ------------------------------------------------------------------------------ params structure
@pytest.mark.parametrize("name", ["s2-cifar", "s2-imagenet"])
def test_stage_params_exist_only_for_present_stages(name: str, random_archs) -> None:
    space = get_space(name)
    stages = 6 if name == "s2-cifar" else 4
    for params, arch in random_archs(space, 40, seed=11):
        assert "stem.width" in params
        assert ("head.width" in params) == (name == "s2-imagenet")
        present = 0
        for i in range(1, stages + 1):
            keys = {k for k in params if k.startswith(f"stage{i}.")}
            if params[f"stage{i}.depth"] == 0:
                assert keys == {f"stage{i}.depth"}
            else:
                present += 1
                assert keys == {f"stage{i}.{r}" for r in ("depth", "type", "kernel", "width", "stride")}
        assert len(arch.stages) == present
        assert params["stage1.depth"] >= 1


def test_suggest_order() -> None:
    import optuna

    space = get_space("s2-imagenet")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    space.suggest(trial)
    names = list(trial.distributions)
    assert names[0] == "stem.width" and names[-1] == "head.width"
    first = [n for n in names if n.startswith("stage1.")]
    assert first == ["stage1.depth", "stage1.type", "stage1.kernel", "stage1.width", "stage1.stride"]


def test_absent_stages_are_compacted() -> None:
    space = get_space("s2-cifar")
    stage = {"type": "basic", "kernel": 3, "width": 32, "stride": 2}
    a = {"stem.width": 16, "stage1.depth": 1, **{f"stage1.{k}": v for k, v in stage.items()}}
    p1 = dict(a, **{"stage2.depth": 0, "stage3.depth": 2, **{f"stage3.{k}": v for k, v in stage.items()}})
    p1.update({f"stage{i}.depth": 0 for i in (4, 5, 6)})
    p2 = dict(a, **{"stage2.depth": 2, **{f"stage2.{k}": v for k, v in stage.items()}})
    p2.update({f"stage{i}.depth": 0 for i in (3, 4, 5, 6)})
    arch1, arch2 = space.from_params(p1), space.from_params(p2)
    assert arch1 == arch2 and len(arch1.stages) == 2
    assert space.to_params(arch1) == p2
    assert space.encode(arch1) == "C16|B3x32d1s2|B3x32d2s2"


def test_to_params_from_params_with_head() -> None:
    space = get_space("s2-imagenet")
    arch = PAPER_ARCHS["imagenet-seg"].arch
    params = space.to_params(arch)
    assert params["head.width"] == 2384
    assert space.from_params(params) == arch


# ------------------------------------------------------------------------------ building and shapes
def test_shape_safe_with_six_stride_two_stages_on_32px() -> None:
    space = get_space("s2-cifar")
    arch = space.decode("C8|B7x8d1s2|K5x16d2s2|B3x24d1s2|K7x32d1s2|B5x16d1s2|K3x40d2s2")
    net = space.build(arch, 10)
    assert space.count_params(arch, 10) == _n(net)
    out = net.forward_all(torch.randn(2, 3, 32, 32))
    assert out.features.shape == (2, 40, 1, 1)
    assert out.logits.shape == (2, 10)


def test_imagenet_small_input_shapes() -> None:
    space = get_space("s2-imagenet")
    arch = space.decode("C16|K7x16d1s1|B5x24d1s2|H32")
    out = space.build(arch).forward_all(torch.randn(2, 3, 32, 32))
    assert out.features.shape == (2, 32, 8, 8)
    assert out.logits.shape == (2, 1000)


def test_bottleneck_mid_width() -> None:
    assert bottleneck_mid_width(8) == 8
    assert bottleneck_mid_width(64) == 16
    assert bottleneck_mid_width(80) == 16  # round(2.5) == 2 (Python rounds half to even)
    assert bottleneck_mid_width(112) == 32  # round(3.5) == 4
    assert bottleneck_mid_width(2048) == 512


def test_count_layers() -> None:
    space = get_space("s2-imagenet")
    assert space.count_layers(space.decode("C8|K3x8d2s1|B3x8d1s1")) == 1 + 6 + 2 + 1
    assert space.count_layers(space.decode("C8|K3x8d2s1|H8")) == 1 + 6 + 1 + 1


@pytest.mark.parametrize("name", ["s2-cifar", "s2-imagenet"])
def test_smallest_is_analytic_and_minimal(name: str, random_archs) -> None:
    space = get_space(name)
    smallest = space.smallest()
    assert space.encode(smallest) == "C8|K3x8d1s1"
    n = space.count_params(smallest)
    for _, arch in random_archs(space, 100, seed=2):
        assert space.count_params(arch) >= n
    neighbours = ["C8|B3x8d1s1", "C8|K3x8d1s2", "C8|K3x16d1s1", "C16|K3x8d1s1", "C8|K5x8d1s1"]
    assert all(space.count_params(space.decode(t)) > n for t in neighbours)


# ------------------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    ("name", "text", "match"),
    [
        ("s2-cifar", "X88|B3x64d2s1", "bad stem token 'X88'"),
        ("s2-cifar", "C88|Q3x64d2s1", "bad stage token 'Q3x64d2s1'"),
        ("s2-cifar", "C88|B3x64d2", "bad stage token 'B3x64d2'"),
        ("s2-cifar", "C88|B4x64d2s1", "'B4x64d2s1'.*kernel must be one of 3, 5, 7"),
        ("s2-cifar", "C88|B3x60d2s1", "'B3x60d2s1'.*multiple of 8"),
        ("s2-cifar", "C88|B3x4096d2s1", "multiple of 8 in \\[8, 2048\\]"),
        ("s2-cifar", "C88|B3x64d0s1", "depth must be an int in \\[1, 8\\]"),
        ("s2-cifar", "C88|B3x64d9s1", "depth must be an int in \\[1, 8\\]"),
        ("s2-cifar", "C88|B3x64d2s3", "stride must be 1 or 2"),
        ("s2-cifar", "C512|B3x64d2s1", "stem width must be a multiple of 8 in \\[8, 256\\]"),
        ("s2-cifar", "C88", "no stage"),
        ("s2-cifar", "C88|B3x64d2s1|H512", "s2-cifar has no head conv"),
        ("s2-cifar", "C8" + "|B3x8d1s1" * 7, "7 stages exceed the 6 of s2-cifar"),
        ("s2-imagenet", "C8" + "|B3x8d1s1" * 5, "5 stages exceed the 4 of s2-imagenet"),
        ("s2-imagenet", "C8|B3x8d1s1|H0", "bad head token 'H0'"),
        ("s2-imagenet", "C8|B3x8d1s1|H12", "head width must be a multiple of 8"),
    ],
)
def test_decode_errors(name: str, text: str, match: str) -> None:
    with pytest.raises(ArchError, match=match):
        get_space(name).decode(text)


def test_structural_check_reasons() -> None:
    cifar, imagenet = get_space("s2-cifar"), get_space("s2-imagenet")
    too_many = S2Arch(8, (S2Stage("basic", 3, 8, 1, 1),) * 5)
    assert imagenet.check(too_many) == "5 stages exceed the 4 of s2-imagenet"
    assert cifar.check(too_many) is None
    with pytest.raises(ArchError, match="exceed the 4"):
        imagenet.build(too_many)
    headed = S2Arch(8, (S2Stage("basic", 3, 8, 1, 1),), head=64)
    assert "no head conv" in (cifar.check(headed) or "")
    with pytest.raises(ArchError, match="no head conv"):
        cifar.count_params(headed)


def test_arch_dataclass_validation() -> None:
    with pytest.raises(ArchError, match="block type"):
        S2Stage("dense", 3, 8, 1, 1)
    with pytest.raises(ArchError, match="at least one stage"):
        S2Arch(8, ())
    with pytest.raises(ArchError, match="kernel"):
        S2Stage("basic", True, 8, 1, 1)  # type: ignore[arg-type]


def test_numpy_ints_are_normalised() -> None:
    import numpy as np

    stage = S2Stage("basic", np.int64(3), np.int64(8), np.int64(1), np.int64(1))  # type: ignore[arg-type]
    arch = S2Arch(np.int64(8), [stage])  # type: ignore[arg-type]
    assert arch == S2Arch(8, (S2Stage("basic", 3, 8, 1, 1),))
    assert type(arch.stages[0].width) is int and hash(arch) == hash(S2Arch(8, (S2Stage("basic", 3, 8, 1, 1),)))


def test_from_params_out_of_range_width_is_an_arch_error() -> None:
    space = get_space("s2-cifar")
    params = space.to_params(space.smallest())
    params["stage1.width"] = 12
    with pytest.warns(Warning), pytest.raises(ArchError, match="multiple of 8"):
        space.from_params(params)
