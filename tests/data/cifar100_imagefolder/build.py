"""Build a small ImageFolder (``train/`` + ``val/``) of real CIFAR-100 test images, as PNG files.

The images come from ``tests/data/cifar/cifar100-test-first916.npz`` (provenance in that folder's
README). Nothing is committed here: tests build the folder in a temporary directory.

    python tests/data/cifar100_imagefolder/build.py OUT_DIR [--train 512 --val 256]

Labels are the 20 CIFAR-100 superclasses ("coarse" labels): with a few hundred images the 100
fine classes would leave most classes with a handful of images and some validation folders empty.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

NPZ = Path(__file__).resolve().parent.parent / "cifar" / "cifar100-test-first916.npz"


def build_imagefolder(root: str | Path, *, n_train: int = 512, n_val: int = 256) -> Path:
    """Write the first ``n_train`` images to ``root/train/<class>/`` and the next ``n_val`` to ``root/val/``.

    Class folders are the zero-padded superclass ids (``000``..``019``), the same in both splits.
    """
    from PIL import Image

    data = np.load(NPZ)
    images, y = data["images"], data["coarse_labels"]
    if n_train + n_val > len(images):
        raise ValueError(f"only {len(images)} images in {NPZ.name}")
    root = Path(root)
    for split, lo, hi in (("train", 0, n_train), ("val", n_train, n_train + n_val)):
        if set(y[lo:hi].tolist()) != set(range(20)):
            raise ValueError(f"{split} split of {hi - lo} images misses some of the 20 superclasses; use more images")
        for i in range(lo, hi):
            (root / split / f"{int(y[i]):03d}").mkdir(parents=True, exist_ok=True)
            Image.fromarray(images[i]).save(root / split / f"{int(y[i]):03d}" / f"{i:04d}.png")
    return root


def main() -> None:  # pragma: no cover - a helper for humans
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--train", type=int, default=512)
    parser.add_argument("--val", type=int, default=256)
    a = parser.parse_args()
    build_imagefolder(a.out, n_train=a.train, n_val=a.val)


if __name__ == "__main__":  # pragma: no cover
    main()
