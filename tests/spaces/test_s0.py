"""S0 (ResNet20 depth space) and the CIFAR ResNet / WRN builders used by the teachers."""

from __future__ import annotations

import pytest
import torch

from diswot.spaces import ArchError, ResNetArch, cifar_resnet, cifar_resnet_params, get_space, wide_resnet

# DisWOT supplementary, Table 3: parameters in K with 100 classes.
TABLE3 = {
    (7, 1, 3): 259.89,
    (3, 3, 3): 278.32,
    (7, 5, 3): 334.13,
    (1, 7, 3): 343.22,
    (5, 5, 7): 620.72,
    (3, 7, 7): 648.50,
    (7, 3, 5): 444.98,
    (5, 5, 5): 472.76,
}


@pytest.mark.parametrize("depths", list(TABLE3))
def test_table3_param_counts(depths: tuple[int, int, int]) -> None:
    space = get_space("s0")
    arch = ResNetArch(depths)
    n = space.count_params(arch, 100)
    assert round(n / 10) / 100 == TABLE3[depths]
    assert n == sum(p.numel() for p in space.build(arch, 100).parameters())


def test_enumerate_all_64_and_counts_match(built_params) -> None:
    space = get_space("s0")
    archs = list(space.enumerate())
    assert len(archs) == len(set(archs)) == 64
    for arch in archs:
        assert space.count_params(arch) == built_params(space, arch)
    assert space.smallest() == ResNetArch((1, 1, 1))


def test_encode_decode_and_layers() -> None:
    space = get_space("s0")
    arch = space.decode("ResNet[7,1,3]")
    assert arch == ResNetArch((7, 1, 3))
    assert space.encode(arch) == "ResNet[7,1,3]"
    assert space.decode(" ResNet[7, 1, 3] ") == arch
    assert space.to_params(arch) == {"stage1.depth": 7, "stage2.depth": 1, "stage3.depth": 3}
    assert space.count_layers(ResNetArch((3, 3, 3))) == 20  # ResNet20
    assert space.count_layers(arch) == 24


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("ResNet[7,2,3]", r"\{1, 3, 5, 7\}"),
        ("ResNet[7,1]", r"expected ResNet\[d1,d2,d3\]"),
        ("resnet20", r"e\.g\. ResNet\[7,1,3\]"),
    ],
)
def test_decode_errors(text: str, match: str) -> None:
    with pytest.raises(ArchError, match=match):
        get_space("s0").decode(text)


def test_from_params_out_of_range_is_an_arch_error() -> None:
    with pytest.warns(Warning), pytest.raises(ArchError, match="1, 3, 5, 7"):
        get_space("s0").from_params({"stage1.depth": 9, "stage2.depth": 1, "stage3.depth": 1})


def test_forward_all_shapes() -> None:
    net = get_space("s0").build(ResNetArch((1, 1, 1)))
    out = net.forward_all(torch.randn(2, 3, 32, 32))
    assert out.features.shape == (2, 64, 8, 8)
    assert out.pooled.shape == (2, 64)
    assert out.logits.shape == (2, 100)


# Known parameter counts of the CRD-repo CIFAR-100 teachers.
@pytest.mark.parametrize(
    ("depths", "widths", "stem", "expected"),
    [
        ((3, 3, 3), (16, 32, 64), None, 278_324),  # resnet20
        ((9, 9, 9), (16, 32, 64), None, 861_620),  # resnet56
        ((18, 18, 18), (16, 32, 64), None, 1_736_564),  # resnet110
        ((1, 1, 1), (64, 128, 256), 32, 1_233_540),  # resnet8x4
        ((5, 5, 5), (64, 128, 256), 32, 7_433_860),  # resnet32x4
    ],
)
def test_cifar_resnet_teachers(depths, widths, stem, expected) -> None:
    with torch.device("meta"):
        net = cifar_resnet(depths, widths, stem, num_classes=100)
    assert sum(p.numel() for p in net.parameters()) == expected
    assert cifar_resnet_params(depths, widths, stem, 100) == expected


def test_cifar_resnet_8x4_forward() -> None:
    out = cifar_resnet((1, 1, 1), (64, 128, 256), 32, num_classes=10).forward_all(torch.randn(2, 3, 32, 32))
    assert out.features.shape == (2, 256, 8, 8) and out.logits.shape == (2, 10)


def test_cifar_resnet_rejects_bad_config() -> None:
    with pytest.raises(ValueError, match="equal length"):
        cifar_resnet((3, 3), (16, 32, 64))
    with pytest.raises(ValueError, match="num_classes"):
        cifar_resnet((3, 3, 3), num_classes=0)


def test_wide_resnet_40_2() -> None:
    net = wide_resnet(40, 2, num_classes=100)
    assert sum(p.numel() for p in net.parameters()) == 2_255_156
    out = net.forward_all(torch.randn(2, 3, 32, 32))
    assert out.features.shape == (2, 128, 8, 8)
    assert out.features.min() >= 0  # ends with BN + ReLU
    assert out.logits.shape == (2, 100)
    with pytest.raises(ValueError, match="6n \\+ 4"):
        wide_resnet(41, 2)
