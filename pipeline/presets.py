"""Training presets: the paper's CIFAR recipe and the standard torchvision ImageNet recipe.

CIFAR (supplementary B.1, CRD's KD setting): 240 epochs, SGD momentum 0.9, lr 0.05 decayed x0.1
at epochs 150/180/210, weight decay 5e-4, batch 64, random crop 32 pad 4 + flip + normalise;
KD gamma=0.1, alpha=0.9, rho=4.
ImageNet (B.3 "standard PyTorch practice", torchvision's classification reference): 90 epochs,
SGD lr 0.1 momentum 0.9, weight decay 1e-4, batch 256, lr x0.1 every 30 epochs,
RandomResizedCrop 224 + flip (eval: resize 256, centre crop 224); KD alpha=3, rho=1 (B.3).
B.3 gives no CE weight for ImageNet; gamma=1 (the plain CE of the torchvision recipe) is our choice.
Every value can be overridden from the command line.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import DiswotError

__all__ = ["PRESETS", "Preset", "get_preset", "preset_for"]


@dataclass(frozen=True)
class Preset:
    """Optimiser, schedule and KD weights of one recipe (``batch_size`` is the global batch)."""

    name: str
    epochs: int
    batch_size: int
    lr: float
    momentum: float
    weight_decay: float
    #: explicit lr milestones, or None to decay every ``lr_step`` epochs
    milestones: tuple[int, ...] | None
    lr_step: int | None
    lr_decay: float
    kd_gamma: float
    kd_alpha: float
    kd_rho: float

    def milestones_for(self, epochs: int) -> list[int]:
        """The lr milestones of a run of ``epochs`` epochs."""
        if self.milestones is not None:
            return list(self.milestones)
        assert self.lr_step is not None
        return list(range(self.lr_step, epochs, self.lr_step))


PRESETS: dict[str, Preset] = {
    "cifar": Preset(
        name="cifar",
        epochs=240,
        batch_size=64,
        lr=0.05,
        momentum=0.9,
        weight_decay=5e-4,
        milestones=(150, 180, 210),
        lr_step=None,
        lr_decay=0.1,
        kd_gamma=0.1,
        kd_alpha=0.9,
        kd_rho=4.0,
    ),
    "imagenet": Preset(
        name="imagenet",
        epochs=90,
        batch_size=256,
        lr=0.1,
        momentum=0.9,
        weight_decay=1e-4,
        milestones=None,
        lr_step=30,
        lr_decay=0.1,
        kd_gamma=1.0,
        kd_alpha=3.0,
        kd_rho=1.0,
    ),
}


def get_preset(name: str) -> Preset:
    """The preset called ``name`` (``cifar`` or ``imagenet``)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise DiswotError(f"unknown `preset` {name!r}; valid: auto, {', '.join(PRESETS)}") from None


def preset_for(name: str, image_size: int) -> Preset:
    """Resolve ``auto``: the CIFAR recipe for small images (<= 64 px), else ImageNet's."""
    if name == "auto":
        return PRESETS["cifar" if image_size <= 64 else "imagenet"]
    return get_preset(name)
