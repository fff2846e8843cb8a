"""Colour photographs as training and validation data: a fixed held-out split, and seeded
random crops (scales and flips) so that networks learn from pictures larger than 32 px.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from colorcnn.data.folders import open_rgb
from colorcnn.errors import ColorcnnError
from colorcnn.files import IMAGE_SUFFIXES

DEFAULT_CROP = 64
DEFAULT_CROPS_PER_PHOTO = 8
VALIDATION_SHARE = 0.15
# Validation crops per photo: the whole scene resized to the crop, the centre at twice the
# crop resized down, and the centre at native resolution; fixed, so every run is scored on
# the same pixels at three levels of detail.
VALIDATION_VIEWS = {"scene": None, "centre-2x": 2, "centre-1x": 1}
# Random crops cover between this share of the shorter side and all of it before resizing.
MIN_CROP_SHARE = 0.25


@dataclass(frozen=True)
class PhotoSplit:
    train: list[Path]
    validation: list[Path]


def list_photos(folder: Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        state = "is a file" if folder.exists() else "does not exist"
        raise ColorcnnError(f"photo folder {folder} {state}; expected a folder of images")
    with os.scandir(folder) as entries:
        photos = sorted(
            Path(entry.path)
            for entry in entries
            if entry.is_file() and os.path.splitext(entry.name)[1].lower() in IMAGE_SUFFIXES
        )
    if len(photos) < 2:
        raise ColorcnnError(f"{folder} holds {len(photos)} photos; expected at least 2")
    return photos


def split_photos(photos: list[Path], validation_share: float = VALIDATION_SHARE) -> PhotoSplit:
    """A held-out split that depends only on each file's name, never on the seed or on the
    other files, so a photo stays on its side when photos are added."""

    def bucket(path: Path) -> float:
        digest = hashlib.sha256(path.name.encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    validation = [p for p in photos if bucket(p) < validation_share]
    train = [p for p in photos if bucket(p) >= validation_share]
    if not validation or not train:  # tiny folders: hold out the last photo by name
        train, validation = photos[:-1], photos[-1:]
    return PhotoSplit(train, validation)


def random_crops(
    image: Image.Image, count: int, size: int, rng: np.random.RandomState
) -> np.ndarray:
    """`count` square crops (count, size, size, 3) uint8 at random positions, scales and flips."""
    width, height = image.size
    shorter = min(width, height)
    crops = np.empty((count, size, size, 3), dtype=np.uint8)
    for index in range(count):
        side = int(rng.uniform(max(MIN_CROP_SHARE * shorter, min(size, shorter)), shorter + 1))
        side = min(side, shorter)
        left = rng.randint(0, width - side + 1)
        top = rng.randint(0, height - side + 1)
        crop = image.crop((left, top, left + side, top + side))
        crop = crop.resize((size, size), Image.Resampling.BICUBIC, reducing_gap=2.0)
        pixels = np.asarray(crop)
        crops[index] = pixels[:, ::-1] if rng.rand() < 0.5 else pixels
    return crops


def validation_views(image: Image.Image, size: int) -> np.ndarray:
    """The fixed validation crops of one photo (len(VALIDATION_VIEWS), size, size, 3)."""
    width, height = image.size
    shorter = min(width, height)
    views = []
    for zoom in VALIDATION_VIEWS.values():
        side = shorter if zoom is None else min(shorter, zoom * size)
        left, top = (width - side) // 2, (height - side) // 2
        crop = image.crop((left, top, left + side, top + side))
        views.append(np.asarray(crop.resize((size, size), Image.Resampling.BICUBIC)))
    return np.stack(views)


def load_photo_arrays(
    folder: Path, crop: int, crops_per_photo: int, seed: int, show_progress: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """(train crops, validation views) as uint8 (N, crop, crop, 3) arrays."""
    split = split_photos(list_photos(folder))
    rng = np.random.RandomState(seed)
    shown = tqdm(
        split.train, desc="Cropping photos", unit="photo", leave=False, disable=not show_progress
    )
    train = [random_crops(open_rgb(path), crops_per_photo, crop, rng) for path in shown]
    validation = [validation_views(open_rgb(path), crop) for path in split.validation]
    return np.concatenate(train), np.concatenate(validation)
