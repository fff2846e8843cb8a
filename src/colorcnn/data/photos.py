"""Colour photographs as training and validation data: held-out sources (never a photo's
near twin on the other side), and seeded random crops (scales and flips) so that networks
learn from pictures larger than 32 px.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
from dataclasses import dataclass, field
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


SOURCES_FILE = "SOURCES.tsv"  # optional: file, debian_package, ... (one row per photo)
SOURCE_SEPARATOR = "__"  # "<source>__<activity>__<name>.png": the shared photos' naming
# Whole sources kept out of training. Pictures of one source share cameras, subjects and
# processing, so a split by file puts near twins on both sides and flatters a model; a split
# by source measures what users meet: photos from somewhere the model has never seen.
# TEST_SOURCES are never trained on nor used to pick a checkpoint (the final numbers);
# VALIDATION_SOURCES score every epoch. Sources named in neither are split by a hash of the
# source's name, so a photo stays on its side when photos are added.
TEST_SOURCES = (
    "lomiri-wallpapers",
    "plasma-workspace-wallpapers",
    "gcompris-qt-data/explore_world_animals",
    "gcompris-qt-data/details",
)
VALIDATION_SOURCES = (
    "jigzo-data",
    "mate-backgrounds",
    "gcompris-qt-data/explore_farm_animals",
    "gcompris-qt-data/explore_world_music",
)
# Debian packages that split one source into releases (lomiri-wallpapers-16.04, -20.04).
_RELEASE_SUFFIX = re.compile(r"-\d+(\.\d+)+$")
# Packages whose files come from many places, told apart by their folder (the second part
# of the file name): GCompris's activities each gather their own pictures.
_SOURCES_BY_FOLDER = ("gcompris-qt-data",)


@dataclass(frozen=True)
class PhotoSplit:
    train: list[Path]
    validation: list[Path]
    test: list[Path] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # photo file name -> its source

    def source_of(self, photo: Path) -> str:
        return self.sources.get(Path(photo).name, Path(photo).name)


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


def read_sources_table(folder: Path) -> dict[str, str]:
    """File name -> Debian package, from the folder's SOURCES.tsv; empty without one."""
    table = Path(folder) / SOURCES_FILE
    if not table.is_file():
        return {}
    with table.open(newline="", encoding="utf-8-sig") as handle:  # as spreadsheets write it
        rows = list(csv.DictReader(handle, delimiter="\t"))
    if rows and not {"file", "debian_package"} <= set(rows[0]):
        raise ColorcnnError(
            f"{table} has columns {', '.join(rows[0])}; expected at least file and debian_package"
        )
    return {row["file"]: row["debian_package"] for row in rows}


def photo_source(photo: Path, packages: dict[str, str]) -> str:
    """Where a photo comes from: its package (releases merged), with the folder for packages
    that gather pictures from many places; without a table, the part of the file name
    before "__", or the photo itself."""
    name = Path(photo).name
    parts = Path(name).stem.split(SOURCE_SEPARATOR)
    package = packages.get(name)
    if package is None:
        return parts[0] if len(parts) > 1 else name
    package = _RELEASE_SUFFIX.sub("", package)
    if package in _SOURCES_BY_FOLDER and len(parts) > 2:
        return f"{package}/{parts[1]}"
    return package


def hash_share(text: str) -> float:
    """A stable number in [0, 1) for a name: which side of a hashed split it falls on."""
    digest = hashlib.sha256(text.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_photos(
    photos: list[Path],
    validation_share: float = VALIDATION_SHARE,
    packages: dict[str, str] | None = None,
) -> PhotoSplit:
    """Train, validation and test photos, with every source wholly on one side.

    `packages` maps file names to their package (SOURCES.tsv); without it the sources are
    read off the file names. A folder with a single source falls back to holding out the
    last photo by name, so that even two photos can be trained and scored."""
    packages = read_sources_table(photos[0].parent) if packages is None and photos else packages
    sources = {photo.name: photo_source(photo, packages or {}) for photo in photos}

    def role(source: str) -> str:
        if source in TEST_SOURCES:
            return "test"
        if source in VALIDATION_SOURCES or hash_share(source) < validation_share:
            return "validation"
        return "train"

    sides: dict[str, list[Path]] = {"train": [], "validation": [], "test": []}
    for photo in photos:
        sides[role(sources[photo.name])].append(photo)
    if not sides["train"] or not (sides["validation"] or sides["test"]):
        by_source = sorted(set(sources.values()))
        if len(by_source) > 1:  # too few sources for the shares: hold out the last one
            held = by_source[-1]
            sides = {
                "train": [p for p in photos if sources[p.name] != held],
                "validation": [p for p in photos if sources[p.name] == held],
                "test": [],
            }
        else:
            sides = {"train": photos[:-1], "validation": photos[-1:], "test": []}
    if not sides["validation"]:  # score epochs on the test sources rather than on nothing
        sides["validation"], sides["test"] = sides["test"], []
    return PhotoSplit(sides["train"], sides["validation"], sides["test"], sources)


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
