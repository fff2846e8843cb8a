"""Image-folder trees laid out as `{train,test}/<class>/*.jpg|png`, as torchvision's ImageFolder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm.auto import tqdm

from colorcnn.errors import ColorcnnError
from colorcnn.files import IMAGE_SUFFIXES

SPLITS = ("train", "test")


def is_image_folder_tree(root: Path) -> bool:
    return all((Path(root) / split).is_dir() for split in SPLITS)


class ImageFile(NamedTuple):
    path: str
    class_index: int
    size: int
    mtime_ns: int


def list_split(
    root: Path, split: str, class_names: list[str], only: list[int] | None = None
) -> list[ImageFile]:
    """Every image file of one split with its class index and stat, in a stable (sorted) order.

    `only` limits the listing to those class indices (a horse run lists 6000 files, not
    60000). Built from `os.scandir` entries, whose paths and stats come from C: building and
    stat-ing 60000 `Path` objects alone costs over a second.
    """
    split_dir = Path(root) / split
    if not split_dir.is_dir():
        raise ColorcnnError(f"{split_dir} is missing; expected {{train,test}}/<class>/*.jpg|png")
    with os.scandir(split_dir) as entries:
        found_classes = sorted(entry.name for entry in entries if entry.is_dir())
    unknown = sorted(set(found_classes) - set(class_names))
    if unknown:
        raise ColorcnnError(
            f"{split_dir} has class folders {unknown} that are not CIFAR-10 classes "
            f"({', '.join(class_names)})"
        )
    files: list[ImageFile] = []
    for class_index, class_name in enumerate(class_names):
        if class_name not in found_classes or (only is not None and class_index not in only):
            continue
        with os.scandir(split_dir / class_name) as entries:
            images = sorted(
                (
                    entry
                    for entry in entries
                    if entry.is_file() and os.path.splitext(entry.name)[1].lower() in IMAGE_SUFFIXES
                ),
                key=lambda entry: entry.name,
            )
        for entry in images:
            stat = entry.stat()
            files.append(ImageFile(entry.path, class_index, stat.st_size, stat.st_mtime_ns))
    if not files and only is None:
        raise ColorcnnError(f"{split_dir} holds no images; expected <class>/*.jpg|png inside it")
    return files


def open_rgb(path: Path) -> Image.Image:
    """A training image as RGB, turned upright by its EXIF orientation as colourizing turns
    it, so that a network learns photos the way it will be shown them."""
    try:
        with Image.open(path) as image:
            return ImageOps.exif_transpose(image).convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as error:
        raise ColorcnnError(f"{path} could not be read as an image ({error})") from error


def decode_images(
    files: list[ImageFile], side: int, desc: str, show_progress: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Decode files into (images uint8 (N, side, side, 3), labels int64 (N,)).

    An empty list gives empty arrays, so a class missing from one split is not an error here.
    """
    images = np.empty((len(files), side, side, 3), dtype=np.uint8)
    labels = np.empty(len(files), dtype=np.int64)
    for row, (path, class_index, _, _) in enumerate(
        tqdm(files, desc=desc, unit="img", leave=False, disable=not show_progress)
    ):
        rgb = open_rgb(path)
        if rgb.size != (side, side):
            raise ColorcnnError(f"{path} is {rgb.size[0]}x{rgb.size[1]} px; expected {side}x{side}")
        images[row] = np.asarray(rgb)
        labels[row] = class_index
    return images, labels
