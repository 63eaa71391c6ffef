"""``autoformer-ti``: AutoFormer-Tiny students (Chen et al., ICCV 2021), built as real ViTs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from diswot.pipeline.cli import main
from diswot.proxies import FlopHooks, count_flops
from diswot.spaces import ArchError, AutoFormerArch, Limits, get_space

from .vit_checks import evolve, params_on_meta

SPACE = get_space("autoformer-ti")


def _arch(embed: int, ratios: list[float], heads: list[int]) -> AutoFormerArch:
    return AutoFormerArch(embed, tuple(ratios), tuple(heads))


def test_hand_count() -> None:
    """E = 216, 12 layers, MLP ratio 3.5 then 4 (hidden 756, 864), 100 classes."""
    arch = _arch(216, [3.5] * 6 + [4.0] * 6, [3, 4] * 6)
    e, k = 216, 100
    patch = 3 * 16 * 16 * e + e  # 16x16 conv with bias
    tokens = e + 197 * e  # class token + position embedding of 196 patches and the class token

    def block(h: int) -> int:
        norms = 2 * 2 * e
        attn = (e * 3 * e + 3 * e) + (e * e + e)  # qkv with bias, output projection
        mlp = (e * h + h) + (h * e + e)
        return norms + attn + mlp

    head = 2 * e + e * k + k  # final LayerNorm, linear head
    expected = patch + tokens + 6 * block(756) + 6 * block(864) + head
    assert expected == 6_702_580
    assert SPACE.count_params(arch, k) == expected == params_on_meta(SPACE, arch, k)
    assert SPACE.count_layers(arch) == 1 + 4 * 12 + 1


def test_published_sizes() -> None:
    """DeiT-Ti (Touvron et al., ICML 2021; timm's deit_tiny_patch16_224: 5,717,416 parameters) is
    E192 with 12 layers of 3 heads and ratio 4. AutoFormer-Ti (paper, Table 3: 5.7M parameters,
    1.3G multiply-adds) is E192 with 13 layers, mostly ratio 3.5 (its released subnet also has
    ratio 3.0 layers, outside the space): 13 layers of ratio 3.5 are within 1% of it."""
    deit = _arch(192, [4.0] * 12, [3] * 12)
    assert SPACE.count_params(deit, 1000) == 5_717_416
    autoformer = _arch(192, [3.5] * 13, [3] * 13)
    assert SPACE.count_params(autoformer, 1000) == pytest.approx(5.7e6, rel=0.01)
    assert SPACE.count_flops(autoformer, 1000) / 2 == pytest.approx(1.3e9, rel=0.05)


def test_matches_timm_deit_tiny() -> None:
    timm = pytest.importorskip("timm")
    with torch.device("meta"):
        ref = timm.create_model("deit_tiny_patch16_224", pretrained=False, num_classes=10)
    deit = _arch(192, [4.0] * 12, [3] * 12)
    assert SPACE.count_params(deit, 10) == sum(p.numel() for p in ref.parameters())


def test_string_round_trip_and_params() -> None:
    text = "E240|R3.5,4,3.5,4,3.5,4,3.5,4,3.5,4,3.5,4,3.5,4|H4,4,3,3,4,4,3,3,4,4,3,3,4,4"
    arch = SPACE.decode(text)
    assert arch.depth == 14 and arch.hidden(0) == 840 and arch.hidden(1) == 960
    assert SPACE.encode(arch) == text
    params = SPACE.to_params(arch)
    assert params["embed.width"] == 240 and params["body.depth"] == 14 and params["layers.heads14"] == 4
    assert SPACE.from_params(params) == arch


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("E200|R3.5,3.5,3.5,3.5,3.5,3.5,3.5,3.5,3.5,3.5,3.5,3.5|H3,3,3,3,3,3,3,3,3,3,3,3", "embedding width"),
        ("E192|R3.5,3.5|H3,3", "12 to 14 layers"),
        ("E192|R3,3,3,3,3,3,3,3,3,3,3,3|H3,3,3,3,3,3,3,3,3,3,3,3", "3.5 or 4"),
        ("E192|R4,4,4,4,4,4,4,4,4,4,4,4|H3,3,3,3,3,3,3,3,3,3,3,6", "3 or 4"),
        ("E192|R4,4,4,4,4,4,4,4,4,4,4,4|H3,3,3,3,3,3,3,3,3,3,3", "one MLP ratio and one head count per layer"),
        ("E192|R4,,4|H3,3", "expected e.g."),
        ("E192|H3|R4", "expected e.g."),
        ("B32|R4|D2,6,4|H2,4,8", "expected e.g."),
    ],
)
def test_bad_strings_get_one_line(text: str, says: str) -> None:
    with pytest.raises(ArchError) as info:
        SPACE.decode(text)
    message = str(info.value)
    assert says in message and "\n" not in message


def test_forward_tokens_class_token_and_flops() -> None:
    """Features are the tokens after the final norm, the pooled vector the class token; the FLOPs
    hooks (with attention's matmul_flops) agree with torch's FlopCounterMode."""
    torch.manual_seed(0)
    arch = SPACE.smallest()
    net = SPACE.build(arch, 10).eval()
    with FlopHooks(net) as hooks, torch.inference_mode():
        out = net.forward_all(torch.randn(2, 3, 224, 224))
    assert out.features.shape == (2, 197, 192)
    assert torch.equal(out.pooled, out.features[:, 0])
    assert out.logits.shape == (2, 10)
    assert hooks.per_image == SPACE.count_flops(arch, 10)
    with torch.inference_mode():  # another resolution: the position embedding is interpolated
        assert net(torch.randn(1, 3, 64, 64)).shape == (1, 10)
    assert count_flops(net, 64) == SPACE.count_flops(arch, 10, 64)  # torch's FlopCounterMode (moves net to meta)


def test_attention_is_the_same_with_and_without_autograd() -> None:
    torch.manual_seed(0)
    net = SPACE.build(SPACE.smallest(), 10).eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        fused = net(x)
    written_out = net(x.requires_grad_(True))
    torch.testing.assert_close(fused, written_out.detach(), rtol=1e-4, atol=1e-5)


def test_evolution_mutates_width_depth_and_layers_within_limits() -> None:
    limits = Limits(max_params=7_500_000, max_layers=54)  # width 240 fits only shallow and narrow MLPs
    changed = evolve(SPACE, limits, n_trials=60)
    assert {"embed.width", "body.depth"} <= changed
    assert any(n.startswith("layers.heads") for n in changed) and any(n.startswith("layers.ratio") for n in changed)


def test_limit_below_the_smallest_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["search", "--space", "autoformer-ti", "--teacher", "resnet20", "--dataset", "synthetic"]
    assert main([*args, "--max-params", "1M", "--storage", f"sqlite:///{tmp_path / 'study.db'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no autoformer-ti architecture fits the limits" in err and "\n" not in err
