"""S1: the NAS-Bench-201 cell space."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import torch

from diswot.spaces import ArchError, Limits, NB201Arch, get_space, naslib_to_nb201, nb201_to_naslib

DATA = Path(__file__).resolve().parents[1] / "data" / "nb201-zc-proxies-725.json"
EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
DISCONNECTED = NB201Arch(("nor_conv_3x3", "none", "nor_conv_3x3", "none", "none", "none"))


@pytest.fixture(scope="module")
def zc() -> dict:
    with DATA.open() as f:
        return json.load(f)


@pytest.mark.parametrize(("dataset", "classes"), [("cifar10", 10), ("cifar100", 100), ("ImageNet16-120", 120)])
def test_param_counts_match_nasbench(zc: dict, dataset: str, classes: int) -> None:
    space = get_space("nb201")
    entries = zc[dataset]
    assert len(entries) >= 724
    for key, record in entries.items():
        arch = naslib_to_nb201(ast.literal_eval(key))
        # ``params`` is in millions, rounded to 6 decimals, i.e. exact
        assert round(space.count_params(arch, classes) / 1e6, 6) == record["params"]["score"], key


def test_naslib_conversion_round_trip(zc: dict) -> None:
    for key in zc["cifar100"]:
        ops = ast.literal_eval(key)
        assert nb201_to_naslib(naslib_to_nb201(ops)) == ops
    # (e12, e13, e14, e23, e24, e34) -> |e12~0|+|e13~0|e23~1|+|e14~0|e24~1|e34~2|
    arch = naslib_to_nb201((0, 2, 3, 4, 1, 2))
    assert str(arch) == "|skip_connect~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|nor_conv_1x1~0|none~1|nor_conv_3x3~2|"
    with pytest.raises(ArchError, match="6 ids"):
        naslib_to_nb201((0, 1, 2))


def test_decode_encode_params() -> None:
    space = get_space("nb201")
    arch = space.decode(EXAMPLE)
    assert arch.ops == ("nor_conv_3x3", "nor_conv_3x3", "avg_pool_3x3", "skip_connect", "nor_conv_3x3", "skip_connect")
    assert space.encode(arch) == EXAMPLE
    assert arch.op(3, 1) == "nor_conv_3x3"
    assert space.to_params(arch) == {
        "cell.1<-0": "nor_conv_3x3",
        "cell.2<-0": "nor_conv_3x3",
        "cell.2<-1": "avg_pool_3x3",
        "cell.3<-0": "skip_connect",
        "cell.3<-1": "nor_conv_3x3",
        "cell.3<-2": "skip_connect",
    }


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|", "expected 3"),
        ("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown op 'conv'"),
        ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", r"should read 'op~0'"),
        ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2 needs 2 input edge"),
        ("none~0+|none~0|none~1|+|none~0|none~1|none~2|", "wrapped in '\\|'"),
    ],
)
def test_decode_errors(text: str, match: str) -> None:
    with pytest.raises(ArchError, match=match):
        get_space("nb201").decode(text)


def test_arch_validation() -> None:
    with pytest.raises(ArchError, match="unknown NB201 op"):
        NB201Arch(("none",) * 5 + ("conv",))  # type: ignore[arg-type]
    with pytest.raises(ArchError, match="6 edge ops"):
        NB201Arch(("none",) * 5)  # type: ignore[arg-type]


def test_enumerate() -> None:
    space = get_space("nb201")
    archs = list(space.enumerate())
    assert len(archs) == len(set(archs)) == 15_625
    smallest = space.smallest()
    assert space.check(smallest) is None
    assert space.count_params(smallest) == min(space.count_params(a) for a in archs)


def test_disconnected_cell_is_flagged_but_harmless() -> None:
    space = get_space("nb201")
    reason = space.check(DISCONNECTED)
    assert reason is not None and "no path from the input to the output" in reason
    assert space.check(DISCONNECTED, Limits(max_params=10**9)) == reason
    with pytest.raises(ArchError, match="no path"):
        space.validate(DISCONNECTED)
    assert not DISCONNECTED.is_connected()
    assert space.count_layers(DISCONNECTED) == 6  # stem + 2 reductions x 2 convs + FC
    # still builds, counts and runs: the cells output zeros
    net = space.build(DISCONNECTED, 10)
    assert space.count_params(DISCONNECTED, 10) == sum(p.numel() for p in net.parameters())
    out = net.forward_all(torch.randn(2, 3, 32, 32))
    assert out.features.shape == (2, 64, 8, 8)
    assert torch.isfinite(out.logits).all()
    assert space.decode(space.encode(DISCONNECTED)) == DISCONNECTED
    # all-none cell: no path at all
    assert space.check(NB201Arch(("none",) * 6)) is not None  # type: ignore[arg-type]


def test_connected_through_skip_only() -> None:
    arch = NB201Arch(("none", "none", "none", "skip_connect", "none", "none"))
    assert arch.is_connected() and arch.longest_conv_path() == 0
    assert get_space("nb201").check(arch) is None


@pytest.mark.parametrize(
    ("ops", "longest"),
    [
        (("nor_conv_3x3",) * 6, 3),
        (("nor_conv_3x3", "none", "nor_conv_1x1", "skip_connect", "none", "none"), 0),  # 1, 2 dead ends
        (("nor_conv_3x3", "none", "avg_pool_3x3", "skip_connect", "none", "nor_conv_1x1"), 2),
    ],
)
def test_count_layers_longest_conv_path(ops: tuple[str, ...], longest: int) -> None:
    arch = NB201Arch(ops)  # type: ignore[arg-type]
    assert arch.longest_conv_path() == longest
    assert get_space("nb201").count_layers(arch) == 1 + 15 * longest + 4 + 1


def test_live_edges() -> None:
    # node 1 feeds nothing, node 2 receives nothing: only the input's skip to the output lives
    arch = NB201Arch(("nor_conv_3x3", "none", "none", "skip_connect", "none", "avg_pool_3x3"))
    assert arch.live_edges() == (False, False, False, True, False, False)
    assert NB201Arch(("nor_conv_3x3",) * 6).live_edges() == (True,) * 6
    assert DISCONNECTED.live_edges() == (False,) * 6


def test_equivalent_cells_share_a_representative_and_compute_the_same() -> None:
    space = get_space("nb201")
    skip = NB201Arch(("none", "none", "none", "skip_connect", "none", "none"))
    dead_pools = NB201Arch(("avg_pool_3x3", "skip_connect", "avg_pool_3x3", "skip_connect", "none", "none"))
    dead_conv = NB201Arch(("nor_conv_3x3", "skip_connect", "avg_pool_3x3", "skip_connect", "none", "none"))
    assert space.representative(dead_pools) == space.representative(skip) == skip
    assert space.representative(dead_conv) == NB201Arch(
        ("nor_conv_3x3", "none", "none", "skip_connect", "none", "none")
    )
    assert space.count_params(dead_conv) > space.count_params(skip)  # a dead convolution still counts
    x = torch.randn(4, 3, 32, 32)
    outputs = []
    for arch in (skip, dead_pools):
        torch.manual_seed(0)
        outputs.append(space.build(arch, 10).forward_all(x))
    assert torch.equal(outputs[0].features, outputs[1].features)
    assert torch.equal(outputs[0].logits, outputs[1].logits)


def test_representatives_over_the_space() -> None:
    space = get_space("nb201")
    archs = list(space.enumerate())
    representatives = {space.representative(a) for a in archs}
    assert len(representatives) == 11_375  # 15,625 cells, 11,375 distinct students
    assert all(space.representative(r) == r for r in representatives)
    assert sum(r.is_connected() for r in representatives) == 11_308


def test_forward_all_shapes() -> None:
    space = get_space("nb201")
    net = space.build(space.decode(EXAMPLE))
    out = net.forward_all(torch.randn(2, 3, 32, 32))
    assert out.features.shape == (2, 64, 8, 8)
    assert out.features.min() >= 0  # ends with BN + ReLU
    assert out.pooled.shape == (2, 64)
    assert out.logits.shape == (2, 100)
