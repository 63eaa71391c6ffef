"""``pit-ti``: pooling-based ViTs around PiT-Ti (Heo et al., ICCV 2021), built as real networks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from diswot.proxies import FlopHooks, count_flops
from diswot.spaces import ArchError, Limits, PiTArch, get_space

from .vit_checks import evolve, params_on_meta

SPACE = get_space("pit-ti")


def test_hand_count() -> None:
    """B16|R6|D2,8,4|H2,4,4: widths 32, 64, 64, MLP widths 192, 384, 384, 10 classes."""
    arch = SPACE.decode("B16|R6|D2,8,4|H2,4,4")
    k = 10
    patch = 3 * 16 * 16 * 32 + 32  # 16x16 conv, stride 8, with bias
    grid = (224 - 16) // 8 + 1  # 27
    tokens = 32 * grid * grid + 32  # position map and class token

    def block(c: int, h: int) -> int:
        return 2 * 2 * c + (c * 3 * c + 3 * c) + (c * c + c) + (c * h + h) + (h * c + c)

    # pooling: 3x3 conv with groups gcd(c_in, c_out) and bias, and the class token's linear layer
    pool_1 = (64 * (32 // 32) * 9 + 64) + (32 * 64 + 64)  # 32 -> 64: groups 32, as PiT
    pool_2 = (64 * (64 // 64) * 9 + 64) + (64 * 64 + 64)  # 64 -> 64: depthwise
    head = 2 * 64 + 64 * k + k
    expected = patch + tokens + 2 * block(32, 192) + 8 * block(64, 384) + 4 * block(64, 384) + pool_1 + pool_2 + head
    assert expected == 887_978
    assert SPACE.count_params(arch, k) == expected == params_on_meta(SPACE, arch, k)
    assert SPACE.count_layers(arch) == 1 + 4 * 14 + 2 + 1


def test_pit_ti_is_in_the_space_with_its_published_size() -> None:
    """PiT-Ti (paper, Table 3: 4.9M parameters, 0.7G multiply-adds) is B32|R4|D2,6,4|H2,4,8."""
    pit_ti = SPACE.decode("B32|R4|D2,6,4|H2,4,8")
    assert SPACE.count_params(pit_ti, 1000) == 4_847_272
    assert SPACE.count_params(pit_ti, 1000) == pytest.approx(4.9e6, rel=0.02)
    assert SPACE.count_flops(pit_ti, 1000) / 2 == pytest.approx(0.7e9, rel=0.02)


def test_matches_timm_pit_ti() -> None:
    timm = pytest.importorskip("timm")
    with torch.device("meta"):
        ref = timm.create_model("pit_ti_224", pretrained=False, num_classes=10)
    arch = SPACE.decode("B32|R4|D2,6,4|H2,4,8")
    assert SPACE.count_params(arch, 10) == sum(p.numel() for p in ref.parameters())


def test_pooling_groups_when_the_width_shrinks() -> None:
    """Heads 8 -> 2 -> 4 with base 16: widths 128 -> 32 -> 64; groups gcd(128, 32) = 32 and 32."""
    arch = SPACE.decode("B16|R2|D1,4,2|H8,2,4")
    net = SPACE.build(arch, 10)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d) and m.stride == (2, 2)]
    assert [(c.in_channels, c.out_channels, c.groups) for c in convs] == [(128, 32, 32), (32, 64, 32)]
    assert SPACE.count_params(arch, 10) == sum(p.numel() for p in net.parameters())


def test_forward_tokens_class_token_and_flops() -> None:
    torch.manual_seed(0)
    arch = SPACE.decode("B16|R2|D1,4,2|H2,4,2")
    net = SPACE.build(arch, 10).eval()
    with FlopHooks(net) as hooks, torch.inference_mode():
        out = net.forward_all(torch.randn(2, 3, 224, 224))
    assert out.features.shape == (2, 1 + 7 * 7, 32)  # 27 -> 14 -> 7: the last stage's map and the class token
    assert torch.equal(out.pooled, out.features[:, 0])
    assert out.logits.shape == (2, 10)
    assert hooks.per_image == SPACE.count_flops(arch, 10)
    with torch.inference_mode():  # another resolution: the position map is interpolated
        assert net(torch.randn(1, 3, 32, 32)).shape == (1, 10)
    assert count_flops(net, 224) == SPACE.count_flops(arch, 10)  # torch's FlopCounterMode (moves net to meta)


def test_string_round_trip_and_params() -> None:
    arch = SPACE.decode("B40|R8|D3,8,6|H8,8,8")
    assert arch == PiTArch(40, 8, (3, 8, 6), (8, 8, 8)) and arch.widths == (320, 320, 320)
    assert SPACE.encode(arch) == "B40|R8|D3,8,6|H8,8,8"
    params = SPACE.to_params(arch)
    assert params == {
        "base.width": 40,
        "mlp.ratio": 8,
        "stage1.depth": 3,
        "heads.stage1": 8,
        "stage2.depth": 8,
        "heads.stage2": 8,
        "stage3.depth": 6,
        "heads.stage3": 8,
    }
    assert SPACE.from_params(params) == arch


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("B20|R4|D2,6,4|H2,4,8", "base width"),
        ("B32|R3|D2,6,4|H2,4,8", "MLP ratio"),
        ("B32|R4|D2,5,4|H2,4,8", "stage 2 depth"),
        ("B32|R4|D2,6,4|H2,4,6", "heads must be"),
        ("B32|R4|D2,6|H2,4,8", "expected B<base>"),
        ("B32|R4.5|D2,6,4|H2,4,8", "expected B<base>"),
        ("E192|R4|H3", "expected B<base>"),
    ],
)
def test_bad_strings_get_one_line(text: str, says: str) -> None:
    with pytest.raises(ArchError) as info:
        SPACE.decode(text)
    message = str(info.value)
    assert says in message and "\n" not in message


def test_evolution_mutates_width_depth_heads_and_ratio_within_limits() -> None:
    """Under parameter, layer and FLOPs limits (the FLOPs check is the space's analytic count)."""
    limits = Limits(max_params=2_000_000, max_layers=50)

    def flops(arch: PiTArch) -> str | None:
        return "over 1.2 GFLOPs" if SPACE.count_flops(arch) > 1_200_000_000 else None

    changed = evolve(SPACE, limits, n_trials=80, extra=flops)
    assert {"base.width", "mlp.ratio"} <= changed
    assert any(n.endswith(".depth") for n in changed) and any(n.startswith("heads.") for n in changed)
