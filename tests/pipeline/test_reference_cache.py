"""``score`` and ``rank`` keep the reference sample they scored, and reuse it only for the same scoring."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import diswot
from diswot.pipeline import assembly
from diswot.pipeline.config import SearchConfig

from .conftest import SMALL_CONFIG, run_cli


@pytest.fixture()
def scored(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the reference samples scored (not read from the cache)."""
    calls: list[int] = []
    real = assembly.build_reference

    def counted(scorer: Any, archs: list[Any], **kwargs: Any) -> Any:
        calls.append(len(archs))
        return real(scorer, archs, **kwargs)

    monkeypatch.setattr(assembly, "build_reference", counted)
    return calls


def test_the_second_score_reads_the_reference_sample(scored: list[int], tmp_path: Path) -> None:
    config = SearchConfig(**SMALL_CONFIG)  # type: ignore[arg-type]
    first = diswot.score(config, "ResNet[1,3,5]", cache=tmp_path)
    assert scored == [8]
    second = diswot.score(config, "ResNet[1,3,5]", cache=tmp_path)
    assert scored == [8], "the second score of the same scoring scored the reference sample again"
    assert second.score == first.score and second.terms == first.terms
    diswot.score(config, "ResNet[3,3,3]", cache=tmp_path)  # another student, the same sample
    assert scored == [8]


@pytest.mark.parametrize("change", [{"teacher": "resnet32"}, {"seed": 1}, {"batch_size": 4}, {"proxy": "diswot-plus"}])
def test_another_teacher_or_probe_batch_scores_its_own_sample(
    scored: list[int], tmp_path: Path, change: dict[str, Any]
) -> None:
    config = SearchConfig(**SMALL_CONFIG)  # type: ignore[arg-type]
    diswot.score(config, "ResNet[1,3,5]", cache=tmp_path)
    diswot.score(SearchConfig(**{**SMALL_CONFIG, **change}), "ResNet[1,3,5]", cache=tmp_path)  # type: ignore[arg-type]
    assert scored == [8, 8]


def test_other_teacher_weights_score_their_own_sample(scored: list[int], tmp_path: Path) -> None:
    import torch

    from diswot.pipeline.teachers import load_teacher

    weights = tmp_path / "teacher.pt"
    torch.save(load_teacher("resnet20", 10).network.state_dict(), weights)
    config = SearchConfig(**{**SMALL_CONFIG, "teacher_weights": str(weights)})  # type: ignore[arg-type]
    diswot.score(config, "ResNet[1,3,5]", cache=tmp_path / "cache")
    diswot.score(config, "ResNet[1,3,5]", cache=tmp_path / "cache")
    assert scored == [8]
    torch.save(load_teacher("resnet20", 10, seed=1).network.state_dict(), weights)  # retrained: another file
    diswot.score(config, "ResNet[1,3,5]", cache=tmp_path / "cache")
    assert scored == [8, 8]


def test_the_command_line_says_the_sample_was_read(
    scored: list[int], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DISWOT_CACHE", str(tmp_path))
    args = ["score", "--space", "s0", "--arch", "ResNet[1,3,5]", "--teacher", "resnet20", "--dataset", "synthetic"]
    args += ["--batch-size", "8", "--image-size", "16", "--num-classes", "10", "--reference-size", "8"]
    assert run_cli(*args) == 0
    assert "scored here first" in capsys.readouterr().err  # a note, with the progress: stderr
    assert run_cli(*args) == 0
    assert "read from the cache" in capsys.readouterr().err
    assert scored == [8]
    assert list((tmp_path / "reference").glob("*.json"))
