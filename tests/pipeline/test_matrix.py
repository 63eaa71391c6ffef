"""Every registered space x {the default score, ``diswot``} x {a CIFAR teacher, an ImageNet teacher,
a ``torchvision:`` teacher} completes a small search with finite values.

New spaces join by being registered (``SPACES.names()``); the default score is read from the
config, not named here. Students run at a small probe size (``--image-size``) and the teachers at
their own (32 px for ``resnet20``, 224 px for the ImageNet ones), so every pairing of sizes is
exercised.
"""

from __future__ import annotations

import math
from dataclasses import fields

import optuna
import pytest

from diswot.pipeline import SearchConfig, run_search
from diswot.spaces import SPACES, get_space

#: the score a search uses by default, read from the config
DEFAULT_PROXY = next(f.default for f in fields(SearchConfig) if f.name == "proxy")
TEACHERS = ("resnet20", "resnet18", "torchvision:mobilenet_v3_small")
#: the parameter limit of the small searches: small students, fast to score
MAX_PARAMS = 1_000_000


def _probe_size(space: str) -> int:
    """The space's own resolution, capped at 64 px to keep the test fast on one core."""
    return min(get_space(space).image_size, 64)


def _max_params(space: str) -> int | None:
    """A limit where the space's smallest student fits it, else the space's own default."""
    s = get_space(space)
    return MAX_PARAMS if s.count_params(s.smallest(10), 10) <= MAX_PARAMS // 2 else None


@pytest.mark.parametrize("teacher", TEACHERS)
@pytest.mark.parametrize("proxy", sorted({DEFAULT_PROXY, "diswot"}))
@pytest.mark.parametrize("space", SPACES.names())
def test_small_search_completes(space: str, proxy: str, teacher: str, tmp_path: object) -> None:
    config = SearchConfig(
        space=space,
        teacher=teacher,
        proxy=proxy,
        dataset="synthetic",
        num_classes=10,
        batch_size=4,
        image_size=_probe_size(space),
        reference_size=8,
        max_params=_max_params(space),
        pick_top=0,
        semantic="class",
    )
    study = run_search(config, f"sqlite:///{tmp_path}/m.db", n_trials=2, note_every=0)
    done = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(done) == 2, [t.user_attrs.get("fail_reason") for t in study.trials]
    assert all(math.isfinite(t.values[0]) for t in done)
    recorded = study.user_attrs["diswot:config"]
    assert recorded["teacher"] == teacher and len(recorded["teacher_fingerprint"]) == 16
    if teacher != "resnet20":  # ImageNet teachers run at 224 px, the students at the probe size
        assert recorded["teacher_image_size"] == 224
