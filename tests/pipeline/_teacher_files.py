"""A user's teacher file for the teacher tests: factories of plain ``nn.Module`` networks."""

from __future__ import annotations

from pathlib import Path

#: the file's text: ``build`` (traceable), ``dynamic`` (data-dependent control flow), and factories that fail
USER_TEACHER = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, num_classes, width=32):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.blocks = nn.Sequential(nn.Conv2d(16, width, 3, stride=2, padding=1), nn.BatchNorm2d(width), nn.ReLU())
        self.head = nn.Linear(width, num_classes)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return self.head(x)


class Dynamic(Net):
    def forward(self, x):
        x = self.blocks(self.stem(x))
        if x.mean() > 0:  # data-dependent: torch.fx cannot trace it
            x = x * 1.0
        return self.head(x.mean(dim=(2, 3)))


def build(num_classes):
    return Net(num_classes)


def wide(num_classes):
    return Net(num_classes, width=48)


def dynamic(num_classes):
    return Dynamic(num_classes)


def broken(num_classes):
    raise RuntimeError("no GPU here")


def not_a_module(num_classes):
    return 42
"""


def write_user_teacher(folder: Path) -> Path:
    """Write the user's teacher file into ``folder``; its path."""
    path = folder / "my_teacher.py"
    path.write_text(USER_TEACHER)
    return path
