"""Common random numbers: each layer's init drawn from its own seeded generator (``init_draw="layer"``)."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import torch

from diswot.pipeline import SearchConfig
from diswot.pipeline.assembly import make_scoring
from diswot.pipeline.init import initialise
from diswot.pipeline.search import run_search
from diswot.pipeline.study import open_search
from diswot.storage import ConfigMismatchError, record

from .conftest import SMALL_CONFIG, run_cli

Weights = dict[str, torch.Tensor]


def _weights(net: torch.nn.Module) -> Weights:
    layers = (torch.nn.Conv2d, torch.nn.Linear)
    return {n: m.weight.detach().clone() for n, m in net.named_modules() if isinstance(m, layers)}


def _pair(draw: str, repeats: tuple[int, int] = (0, 0)) -> tuple[Weights, Weights]:
    """ResNet[3,3,3] and ResNet[3,3,5] as the search's scorer builds them."""
    scorer = make_scoring(SearchConfig(**{**SMALL_CONFIG, "init_draw": draw})).scorer  # type: ignore[arg-type]
    a, b = (scorer.space.decode(x) for x in ("ResNet[3,3,3]", "ResNet[3,3,5]"))
    return _weights(scorer.build(a, repeats[0])), _weights(scorer.build(b, repeats[1]))


def test_students_start_from_the_same_weights_in_the_layers_they_share() -> None:
    a, b = _pair("layer")
    common = [n for n in a if n in b and a[n].shape == b[n].shape]
    assert len(common) == len(a) and len(b) > len(a)  # the deeper student holds every layer of the other
    assert all(torch.equal(a[n], b[n]) for n in common)
    # one stream: the classifier, built after the extra blocks, starts elsewhere in it
    a, b = _pair("stream")
    assert not torch.equal(a["classifier"], b["classifier"])


def test_repeats_and_the_layers_of_one_student_draw_apart() -> None:
    a, b = _pair("layer", repeats=(0, 1))
    assert all(not torch.equal(a[n], b[n]) for n in a)
    same_shape = [(m, n) for m in a for n in a if m < n and a[m].shape == a[n].shape]
    assert same_shape and all(not torch.equal(a[m], a[n]) for m, n in same_shape)


@pytest.mark.parametrize("init", ["gaussian", "kaiming", "normal"])
def test_each_init_keeps_its_distribution_and_one_stream_draws_as_before(init: str) -> None:
    conv = torch.nn.Conv2d(64, 64, 3)
    torch.manual_seed(0)
    initialise(conv, init)  # one stream: what torch.nn.init drew before per-layer draws existed
    torch.manual_seed(0)
    expected = torch.empty_like(conv.weight)
    std = {"gaussian": (3 * 64 * 9) ** -0.5, "kaiming": (2 / (64 * 9)) ** 0.5, "normal": 1.0}[init]
    if init == "kaiming":
        torch.nn.init.kaiming_normal_(expected, mode="fan_in", nonlinearity="relu")
    else:
        torch.nn.init.normal_(expected, 0.0, std)
    assert torch.equal(conv.weight, expected)
    initialise(conv, init, seed=7)
    assert conv.weight.std().item() == pytest.approx(std, rel=0.03)
    first = conv.weight.detach().clone()
    torch.manual_seed(123)  # the stream in force does not matter to a per-layer draw
    assert torch.equal(initialise(conv, init, seed=7).weight, first)


def test_the_teacher_is_drawn_per_layer_too() -> None:
    def teacher_weights(draw: str) -> Weights:
        config = SearchConfig(**{**SMALL_CONFIG, "init_draw": draw})  # type: ignore[arg-type]
        scorer = make_scoring(config).scorer
        return _weights(scorer._teacher)  # type: ignore[arg-type]

    layer, stream = teacher_weights("layer"), teacher_weights("stream")
    assert layer.keys() == stream.keys() and any(not torch.equal(layer[n], stream[n]) for n in layer)
    assert all(torch.equal(x, y) for x, y in zip(layer.values(), teacher_weights("layer").values()))


def _recorded_without_the_draw(url: str) -> None:
    study = optuna.load_study(study_name="diswot", storage=url)
    old = {k: v for k, v in study.user_attrs[record.CONFIG].items() if k != "init_draw"}
    study.set_user_attr(record.CONFIG, old)  # as recorded before the choice


def test_a_new_study_records_per_layer_draws_and_one_made_before_resumes_with_one_stream(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/draw.db"
    config = SearchConfig(**SMALL_CONFIG)  # type: ignore[arg-type]
    study = run_search(config, url, n_trials=1, note_every=0)
    assert study.user_attrs[record.CONFIG]["init_draw"] == "layer"
    _recorded_without_the_draw(url)
    opened = open_search(config, url)
    assert opened.config.init_draw == "stream" and opened.setup.scorer.init_draw == "stream"
    study = run_search(config, url, n_trials=1, note_every=0)
    assert len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == 2
    assert "init_draw" not in study.user_attrs[record.CONFIG]
    with pytest.raises(ConfigMismatchError, match="init_draw: 'stream' -> 'layer'"):
        open_search(SearchConfig(**{**SMALL_CONFIG, "init_draw": "layer"}), url)  # type: ignore[arg-type]


def test_the_command_line_takes_the_draw_and_refuses_another_on_a_study(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path}/cli.db"
    base = ["search", "--space", "s0", "--teacher", "resnet20", "--dataset", "synthetic", "--batch-size", "8"]
    base += ["--image-size", "16", "--n-trials", "1", "--storage", url, "--no-progress"]
    assert run_cli(*base, "--init-draw", "stream") == 0
    assert run_cli(*base) == 0  # no --init-draw: the study's
    capsys.readouterr()
    assert run_cli(*base, "--init-draw", "layer") == 2
    assert "init_draw: 'stream' -> 'layer'" in " ".join(capsys.readouterr().err.split())
    assert run_cli(*base, "--init-draw", "both") == 2
    assert "invalid choice: 'both'" in capsys.readouterr().err
