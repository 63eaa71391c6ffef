"""Datasets and the fixed, seeded probe batch (ARCHITECTURE.md, "Probe batch").

``cifar10``/``cifar100`` use torchvision's datasets (with download), ``imagenet`` an ImageFolder
with ``train``/``val`` folders, ``imagefolder`` any ImageFolder, ``synthetic`` a seeded random batch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch.utils.data import Dataset

from diswot.proxies import Batch

from ._choices import DATASETS
from .errors import DiswotError

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "SyntheticImages",
    "dataset_info",
    "eval_transform",
    "load_dataset",
    "probe_batches",
    "train_transform",
]

log = logging.getLogger(__name__)

#: a torchvision transform: an image (PIL or tensor) to a normalised tensor
Transform = Callable[[Any], torch.Tensor]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class DatasetInfo:
    """Class count (None = read from the folders), resolution and normalisation of a dataset."""

    name: str
    num_classes: int | None
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


_INFO = {
    "cifar10": DatasetInfo("cifar10", 10, 32, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": DatasetInfo("cifar100", 100, 32, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "imagenet": DatasetInfo("imagenet", 1000, 224, IMAGENET_MEAN, IMAGENET_STD),
    "imagefolder": DatasetInfo("imagefolder", None, 224, IMAGENET_MEAN, IMAGENET_STD),
    "synthetic": DatasetInfo("synthetic", None, 32, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
}


def dataset_info(
    name: str,
    *,
    image_size: int | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> DatasetInfo:
    """The :class:`DatasetInfo` of ``name``, with optional overrides (e.g. for ImageFolder)."""
    if name not in _INFO:
        raise DiswotError(f"unknown dataset {name!r}; valid: {', '.join(DATASETS)}")
    info = _INFO[name]
    for label, value in (("mean", mean), ("std", std)):
        if value is not None and (len(value) != 3 or (label == "std" and min(value) <= 0)):
            raise DiswotError(f"`{label}` needs three numbers (R G B){' > 0' if label == 'std' else ''}, got {value}")
    return DatasetInfo(
        info.name,
        info.num_classes,
        image_size or info.image_size,
        tuple(mean) if mean else info.mean,  # type: ignore[arg-type]
        tuple(std) if std else info.std,  # type: ignore[arg-type]
    )


def eval_transform(info: DatasetInfo) -> Transform:
    """Deterministic transform: resize/crop for large images, to float, normalise."""
    from torchvision.transforms import v2

    steps = [v2.ToImage()]
    if info.image_size > 64:
        steps += [v2.Resize(int(info.image_size * 256 / 224), antialias=True), v2.CenterCrop(info.image_size)]
    elif info.name == "imagefolder":
        steps += [v2.Resize((info.image_size, info.image_size), antialias=True)]
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(info.mean, info.std)]
    transform: Transform = v2.Compose(steps)
    return transform


def train_transform(info: DatasetInfo) -> Transform:
    """Training augmentation: CIFAR crop 32 pad 4 + flip; ImageNet random-resized crop + flip."""
    from torchvision.transforms import v2

    if info.image_size <= 64:
        crop = (
            [v2.RandomCrop(info.image_size, padding=4)]
            if info.name != "imagefolder"
            else [
                v2.Resize((info.image_size, info.image_size), antialias=True),
                v2.RandomCrop(info.image_size, padding=4),
            ]
        )
    else:
        crop = [v2.RandomResizedCrop(info.image_size, antialias=True)]
    transform: Transform = v2.Compose(
        [
            v2.ToImage(),
            *crop,
            v2.RandomHorizontalFlip(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(info.mean, info.std),
        ]
    )
    return transform


class SyntheticImages(Dataset[Any]):
    """Seeded random images for trying ``train``/``distill`` offline: ``--dataset synthetic``.

    Image ``i`` of a split is drawn from its own generator (seed, split, i), so the data is the
    same on every run and rank and nothing is held in memory. Each class adds its own fixed
    pattern to Gaussian noise, so a network can learn something.
    """

    #: images in the training and evaluation splits
    SIZES = {"train": 1024, "val": 256}

    def __init__(self, *, train: bool, num_classes: int, image_size: int, seed: int = 0) -> None:
        self.split = "train" if train else "val"
        self.num_classes = num_classes
        self.image_size = image_size
        self.seed = seed
        self.classes = [f"class{k}" for k in range(num_classes)]
        g = torch.Generator().manual_seed(seed)
        self.patterns = torch.randn(num_classes, 3, image_size, image_size, generator=g)

    def __len__(self) -> int:
        return self.SIZES[self.split]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        g = torch.Generator().manual_seed((2 * self.seed + (self.split == "val")) * 10_000_000 + index + 1)
        label = int(torch.randint(0, self.num_classes, (1,), generator=g))
        noise = torch.randn(3, self.image_size, self.image_size, generator=g)
        return (noise + self.patterns[label]) / 2**0.5, label


def _missing(name: str, data_dir: str | Path, why: str) -> DiswotError:
    put = "put it there (or allow the download)" if name in ("cifar10", "cifar100") else "put the class folders there"
    return DiswotError(
        f"dataset {name} is not available in `data_dir` {str(data_dir)!r} ({why}); {put}, or use `dataset` synthetic"
    )


def _unreadable(path: str, why: object) -> DiswotError:
    return DiswotError(f"{path} is not an image that can be read ({why}); remove or replace it")


def read_image(path: str) -> Any:
    """ImageFolder's loader: the file as an RGB PIL image, or one line naming a file that is not an image."""
    from PIL import Image, UnidentifiedImageError

    try:
        with open(path, "rb") as f:
            image = Image.open(f)
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise _unreadable(path, str(exc).split(" (")[0].strip() or type(exc).__name__) from None


def check_images(dataset: Dataset[Any]) -> None:
    """Refuse an ImageFolder holding a file that is not an image, before any training: each file's
    header is read (PIL opens lazily: a few KB a file, not its pixels); the first bad file is named."""
    from PIL import Image

    samples = getattr(dataset, "samples", ())
    for path, _ in samples:
        try:
            with Image.open(path):
                pass
        except Exception as exc:  # PIL raises many kinds for a broken file
            raise _unreadable(path, str(exc).split(" (")[0].strip() or type(exc).__name__) from None
    if samples:
        log.info("%d image headers checked in %s", len(samples), getattr(dataset, "root", "?"))


def load_dataset(
    name: str, data_dir: str | Path | None, *, train: bool, transform: Transform | None = None, download: bool = True
) -> Dataset[Any]:
    """The torchvision dataset behind ``name`` (``synthetic`` has none: use :func:`probe_batches`)."""
    import torchvision

    if name == "synthetic":
        raise DiswotError("`dataset` synthetic has no images to train on; use cifar10/cifar100/imagefolder")
    data_dir = Path(data_dir or "data").expanduser()
    if name in ("cifar10", "cifar100"):
        cls = torchvision.datasets.CIFAR10 if name == "cifar10" else torchvision.datasets.CIFAR100
        try:
            dataset: Dataset[Any] = cls(str(data_dir), train=train, transform=transform, download=False)
            return dataset
        except RuntimeError:
            if not download:
                raise _missing(name, data_dir, "not found and `no_download` was given") from None
        existed = data_dir.exists()
        try:
            log.info("downloading %s to %s", name, data_dir)
            downloaded: Dataset[Any] = cls(str(data_dir), train=train, transform=transform, download=True)
            return downloaded
        except Exception as exc:  # no network: URLError, socket errors, ...
            if not existed:  # the folder the failed download made: a refused command leaves nothing behind
                import shutil

                shutil.rmtree(data_dir, ignore_errors=True)
            raise _missing(name, data_dir, f"not found, and the download failed: {type(exc).__name__}") from None
    if name in ("imagenet", "imagefolder"):
        root = data_dir
        if name == "imagenet":
            root = data_dir / ("train" if train else "val")
        elif (data_dir / ("train" if train else "val")).is_dir():
            root = data_dir / ("train" if train else "val")
        if not root.is_dir():
            raise _missing(name, data_dir, f"no folder {str(root)!r}")
        try:
            folder: Dataset[Any] = torchvision.datasets.ImageFolder(str(root), transform=transform, loader=read_image)
            return folder
        except (FileNotFoundError, RuntimeError) as exc:
            raise _missing(name, data_dir, str(exc).splitlines()[0]) from None
    raise DiswotError(f"unknown dataset {name!r}; valid: {', '.join(DATASETS)}")


def num_classes_of(name: str, data_dir: str | Path | None, default: int) -> int:
    """Class count of a dataset (ImageFolder: its class folders; synthetic: ``default``)."""
    info = dataset_info(name)
    if info.num_classes is not None:
        return info.num_classes
    if name == "synthetic":
        return default
    classes = len(load_dataset(name, data_dir, train=True).classes)  # type: ignore[attr-defined]
    if classes < 2:
        raise DiswotError(
            f"dataset {name} in `data_dir` {str(data_dir or 'data')!r} has one class folder: scores and training "
            "need two or more (train/<class>/*.png, one folder per class)"
        )
    return classes


__all__ += ["check_images", "num_classes_of", "read_image"]


def probe_batches(
    *,
    dataset: str,
    data_dir: str | Path | None,
    batch_size: int,
    seed: int,
    repeats: int = 1,
    num_classes: int,
    info: DatasetInfo | None = None,
) -> list[Batch]:
    """One fixed batch per repeat: ``batch_size`` training images chosen with ``seed + repeat``.

    The same batches are used for every candidate of a study, so scores are comparable and a
    study is reproducible.
    """
    if batch_size < 2:
        raise DiswotError(f"`batch_size` must be at least 2 (the relation term compares samples), got {batch_size}")
    if repeats < 1:
        raise DiswotError(f"`repeats` must be at least 1, got {repeats}")
    info = info or dataset_info(dataset)
    batches = []
    if dataset == "synthetic":
        for r in range(repeats):
            g = torch.Generator().manual_seed(seed * 1000 + r)
            images = torch.randn(batch_size, 3, info.image_size, info.image_size, generator=g)
            labels = torch.randint(0, num_classes, (batch_size,), generator=g)
            batches.append(Batch(images, labels, num_classes))
        return batches
    return _dataset_batches(dataset, data_dir, batch_size, seed, repeats, num_classes, eval_transform(info))


def _dataset_batches(
    dataset: str,
    data_dir: str | Path | None,
    batch_size: int,
    seed: int,
    repeats: int,
    num_classes: int,
    transform: Transform,
) -> list[Batch]:
    """The probe batches of a real dataset: images ``randperm(seed * 1000 + r)[:batch_size]``."""
    data = load_dataset(dataset, data_dir, train=True, transform=transform)
    n = len(data)  # type: ignore[arg-type]
    if n < batch_size:
        raise DiswotError(
            f"dataset {dataset} has {n} training images, fewer than `batch_size` {batch_size}: the probe batch takes "
            f"`batch_size` distinct images; use `batch_size` {n} or less, or add images"
        )
    batches = []
    for r in range(repeats):
        g = torch.Generator().manual_seed(seed * 1000 + r)
        idx = torch.randperm(n, generator=g)[:batch_size].tolist()
        items = [data[i] for i in idx]
        images = torch.stack([x for x, _ in items])
        labels = torch.tensor([int(y) for _, y in items])
        batches.append(Batch(images, labels, num_classes))
    return batches


def network_batches(
    batches: Sequence[Batch],
    *,
    dataset: str,
    data_dir: str | Path | None,
    seed: int,
    info: DatasetInfo,
    image_size: int,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> list[Batch]:
    """The same probe images as ``batches`` for a network with its own input size and normalisation.

    ``batches`` are the students' (``info``: their size, the dataset's normalisation). A network
    that takes the same input gets them back unchanged. Otherwise real images are read again, the
    same ones, resized (shorter side to ``image_size``, centre crop) and normalised with the
    network's ``mean``/``std`` (None: the dataset's); synthetic images (already standard normal)
    are resized. The labels are the same. Used for the teacher: computed once per study, so the
    per-candidate cost never depends on the teacher's size.
    """
    same_norm = (mean is None or tuple(mean) == tuple(info.mean)) and (std is None or tuple(std) == tuple(info.std))
    if image_size == info.image_size and (same_norm or dataset == "synthetic"):
        return list(batches)
    if dataset == "synthetic":
        return [Batch(_resize(b.images, image_size), b.labels, b.num_classes) for b in batches]
    from torchvision.transforms import v2

    transform: Transform = v2.Compose(
        [
            v2.ToImage(),
            v2.Resize(image_size, antialias=True),
            v2.CenterCrop(image_size),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(tuple(mean or info.mean), tuple(std or info.std)),
        ]
    )
    first = batches[0]
    return _dataset_batches(dataset, data_dir, first.images.shape[0], seed, len(batches), first.num_classes, transform)


def _resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of a ``(B, 3, H, W)`` batch to ``size`` x ``size`` (antialiased when shrinking)."""
    import torch.nn.functional as F

    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


__all__ += ["network_batches"]
