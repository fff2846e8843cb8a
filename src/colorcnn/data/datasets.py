"""CIFAR-10 as the course uses it: one class (or all), grey input, pixels / 256, seeded shuffle."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from colorcnn.data import cache, cifar, folders, photos
from colorcnn.errors import ColorcnnError, SettingError

CLASS_NAMES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
DEFAULT_CATEGORY = "horse"
# "photos+cifar10" adds CIFAR-10 training images of every class, resized to the crop size,
# to the photo crops: more scenes and objects for a photo model; validation stays photos.
DATASETS = ("cifar10", "photos", "photos+cifar10")
ALL_CATEGORIES = "all"
# The course divides by 256 (not 255), so a white pixel is 255/256; kept for comparable numbers.
PIXEL_SCALE = 256.0


@dataclass(frozen=True)
class DataSettings:
    """Where the images come from and which of them a run uses; stored in every checkpoint."""

    data: str | None = None  # folder (batches or image-folder tree); None = official download
    category: str = DEFAULT_CATEGORY  # class name, class index, or "all" (CIFAR-10 only)
    seed: int = 0  # NumPy seed of the course's one-time shuffle (and of photo crops); a
    # training run seeds its palette's k-means and its weights with it too
    dataset: str = "cifar10"  # "cifar10", "photos" (a folder of colour photographs) or
    # "photos+cifar10" (the photos' crops plus CIFAR-10 images of every class)
    crop_size: int = photos.DEFAULT_CROP  # photos: side of the square crops
    crops_per_photo: int = photos.DEFAULT_CROPS_PER_PHOTO  # photos: random crops per photo
    cifar_data: str | None = None  # photos+cifar10: CIFAR-10 folder; None = official download
    cifar_images: int = 5000  # photos+cifar10: how many CIFAR-10 training images to add

    def __post_init__(self) -> None:
        for name in ("crop_size", "crops_per_photo"):
            value = getattr(self, name)
            if value < 1:
                raise SettingError(f"`{name}` must be a positive integer, got {value}")
        if self.dataset != "cifar10" and self.category != DEFAULT_CATEGORY:
            raise SettingError(
                f"`category` applies to the cifar10 dataset only, not {self.dataset}"
            )

    def with_absolute_paths(self) -> DataSettings:
        """The same settings with absolute folders, so that a run that records them can be
        resumed and evaluated from any working directory."""
        return dataclasses.replace(
            self,
            data=_absolute(self.data),
            cifar_data=_absolute(self.cifar_data),
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> DataSettings:
        """Settings from `to_dict`, leaving out names this version does not know."""
        known = {setting.name for setting in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})


def _absolute(folder: str | None) -> str | None:
    return None if folder is None else str(Path(folder).expanduser().absolute())


@dataclass
class RawCifar:
    """Decoded CIFAR-10 arrays: images uint8 (N, 32, 32, 3) and labels int64 (N,)."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


@dataclass
class CourseData:
    """Float tensors in the course's scaling: rgb (N, 3, H, W) in [0, 1)."""

    train_rgb: torch.Tensor
    test_rgb: torch.Tensor
    categories: list[int]
    load_seconds: float


def resolve_categories(category: str | int) -> list[int]:
    """Map "horse", "7" or "all" to CIFAR label indices."""
    text = str(category).strip().lower()
    if text == ALL_CATEGORIES:
        return list(range(len(CLASS_NAMES)))
    if text.isdecimal() and text.isascii() and int(text) < len(CLASS_NAMES):
        return [int(text)]
    if text in CLASS_NAMES:
        return [CLASS_NAMES.index(text)]
    raise ColorcnnError(
        f"unknown category {category!r}; expected one of {', '.join(CLASS_NAMES)}, "
        f"an index 0-{len(CLASS_NAMES) - 1}, or {ALL_CATEGORIES!r}"
    )


def load_raw_cifar10(
    data: str | Path | None,
    cache_dir: Path | None = None,
    categories: list[int] | None = None,
    show_progress: bool = True,
) -> RawCifar:
    """Decode CIFAR-10 from `data` (or the official download), reusing the decoded-array cache.

    `categories` limits an image-folder tree to those classes, so that a horse run decodes
    6000 images rather than 60000; the python batches always hold every class.
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else cache.default_cache_dir()
    if data is None:
        batches_dir = cifar.ensure_cifar10(cache_dir, show_progress=show_progress)
        return _load_batches_cached(batches_dir, cache_dir)
    root = Path(data).expanduser()
    if not root.is_dir():
        state = "is a file" if root.exists() else "does not exist"
        raise ColorcnnError(
            f"data folder {root} {state}; expected a folder of CIFAR-10 python batches or "
            "a {train,test}/<class>/ image-folder tree"
        )
    for candidate in (root, root / cifar.EXTRACTED_DIR):
        if cifar.is_batches_folder(candidate):
            return _load_batches_cached(candidate, cache_dir)
    if folders.is_image_folder_tree(root):
        return _load_image_folder_cached(root, cache_dir, categories, show_progress)
    raise ColorcnnError(
        f"{root} holds neither CIFAR-10 python batches (data_batch_1..5, test_batch) "
        "nor a {train,test}/<class>/*.jpg|png image-folder tree"
    )


def _load_batches_cached(batches_dir: Path, cache_dir: Path) -> RawCifar:
    paths = [batches_dir / name for name in cifar.TRAIN_BATCHES + cifar.TEST_BATCHES]
    missing = [path.name for path in paths if not path.is_file()]
    if missing:
        raise ColorcnnError(
            f"{batches_dir} lacks {', '.join(missing)}; delete the folder to extract it again"
        )
    key = cache.fingerprint_paths(
        paths, {"kind": "cifar-batches", "root": str(batches_dir.resolve())}
    )
    cached = cache.load_arrays(cache_dir, key)
    if cached is not None:
        return RawCifar(**cached)
    train_images, train_labels = cifar.read_batches(batches_dir, "train")
    test_images, test_labels = cifar.read_batches(batches_dir, "test")
    raw = RawCifar(train_images, train_labels, test_images, test_labels)
    cache.save_arrays(cache_dir, key, asdict(raw))
    return raw


def _load_image_folder_cached(
    root: Path, cache_dir: Path, categories: list[int] | None, show_progress: bool
) -> RawCifar:
    """Decode the tree one class at a time, each class with its own cache entry."""
    split_files = {
        split: folders.list_split(root, split, list(CLASS_NAMES), categories)
        for split in folders.SPLITS
    }
    if categories is None:  # every class the tree holds
        categories = sorted({f.class_index for files in split_files.values() for f in files})
    parts: dict[str, list[np.ndarray]] = {field: [] for field in RawCifar.__dataclass_fields__}
    for category in categories:
        files = {
            split: [f for f in split_files[split] if f.class_index == category]
            for split in folders.SPLITS
        }
        stats = [(f.path, f.size, f.mtime_ns) for split in folders.SPLITS for f in files[split]]
        extra = {
            "kind": "image-folder", "root": str(root.resolve()), "class": category,
            "upright": "exif",
        }  # fmt: skip
        key = cache.fingerprint(stats, extra)
        arrays = cache.load_arrays(cache_dir, key)
        if arrays is None:
            arrays = {}
            for split in folders.SPLITS:
                images, labels = folders.decode_images(
                    files[split],
                    cifar.IMAGE_SIDE,
                    desc=f"Decoding {split}/{CLASS_NAMES[category]}",
                    show_progress=show_progress,
                )
                arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels
            cache.save_arrays(cache_dir, key, arrays)
        for field, values in arrays.items():
            parts[field].append(values)
    return RawCifar(**{field: np.concatenate(values) for field, values in parts.items()})


def course_preprocess(
    images: np.ndarray,
    labels: np.ndarray | None,
    categories: list[int] | None,
    rng: np.random.RandomState,
) -> torch.Tensor:
    """The course's `process`: keep the categories, scale by 1/256, shuffle; (N, 3, H, W).

    With `labels` None every image is kept. The grey input is `color.spaces.course_grey`.
    """
    if labels is None:
        selected = np.asarray(images)
    else:
        selected = images[np.flatnonzero(np.isin(labels, categories))]  # reads only these rows
    rgb = selected.transpose(0, 3, 1, 2).astype(np.float32) / PIXEL_SCALE  # (N, 3, H, W)
    rng.shuffle(rgb)
    return torch.from_numpy(np.ascontiguousarray(rgb))


def _load_photo_data(
    settings: DataSettings, files: list[Path], cache_dir: Path | None, show_progress: bool
) -> tuple[np.ndarray, ...]:
    """Crops of the photos `files` (the folder's listing), from the cache when it has them."""
    cache_dir = Path(cache_dir) if cache_dir is not None else cache.default_cache_dir()
    folder = Path(settings.data).expanduser()
    extra = {
        "kind": "photo-crops", "root": str(folder.resolve()), "crop": settings.crop_size,
        "crops_per_photo": settings.crops_per_photo, "seed": settings.seed,
        "views": photos.VALIDATION_VIEWS, "min_crop_share": photos.MIN_CROP_SHARE,
        "validation_share": photos.VALIDATION_SHARE, "upright": "exif",
        "split": "by-source", "test_sources": photos.TEST_SOURCES,
        "validation_sources": photos.VALIDATION_SOURCES,
    }  # fmt: skip
    table = folder / photos.SOURCES_FILE  # it decides which photos are held out
    key = cache.fingerprint_paths([*files, table] if table.is_file() else files, extra)
    arrays = cache.load_arrays(cache_dir, key)
    if arrays is None:
        train, validation = photos.load_photo_arrays(
            folder, settings.crop_size, settings.crops_per_photo, settings.seed, show_progress
        )
        arrays = {"train_images": train, "test_images": validation}
        cache.save_arrays(cache_dir, key, arrays)
    return arrays["train_images"], arrays["test_images"]


def _resized_cifar_sample(
    settings: DataSettings, cache_dir: Path | None, show_progress: bool
) -> np.ndarray:
    """A seeded sample of CIFAR-10 training images (every class) at the photo crop size."""
    every_class = list(range(len(CLASS_NAMES)))
    raw = load_raw_cifar10(settings.cifar_data, cache_dir, every_class, show_progress)
    count = min(settings.cifar_images, len(raw.train_images))
    chosen = np.random.RandomState(settings.seed).choice(
        len(raw.train_images), count, replace=False
    )
    side = settings.crop_size
    resized = np.empty((count, side, side, 3), dtype=np.uint8)
    for row, index in enumerate(np.sort(chosen)):
        image = Image.fromarray(np.asarray(raw.train_images[index]))
        resized[row] = np.asarray(image.resize((side, side), Image.Resampling.BICUBIC))
    return resized


def load_course_data(
    settings: DataSettings, cache_dir: Path | None = None, show_progress: bool = True
) -> CourseData:
    started = time.perf_counter()
    if settings.dataset not in DATASETS:
        raise ColorcnnError(
            f"unknown dataset {settings.dataset!r}; expected one of {', '.join(DATASETS)}"
        )
    rng = np.random.RandomState(settings.seed)
    if settings.dataset in ("photos", "photos+cifar10"):
        # The photo folder is checked, then CIFAR-10 read before the photos are cropped:
        # where it must be downloaded and cannot be, that fails at once.
        if settings.data is None:
            raise SettingError(
                f"the {settings.dataset} dataset needs `data` (a folder of colour photos)"
            )
        files = photos.list_photos(Path(settings.data).expanduser())
        extra = (
            _resized_cifar_sample(settings, cache_dir, show_progress)
            if settings.dataset == "photos+cifar10"
            else None
        )
        train_images, test_images = _load_photo_data(settings, files, cache_dir, show_progress)
        if extra is not None:
            train_images = np.concatenate((train_images, extra))
        train_rgb = course_preprocess(train_images, None, None, rng)
        test_rgb = course_preprocess(test_images, None, None, rng)
        return CourseData(train_rgb, test_rgb, [], time.perf_counter() - started)
    categories = resolve_categories(settings.category)
    raw = load_raw_cifar10(settings.data, cache_dir, categories, show_progress)
    # One generator for both splits, in this order, as the course seeds NumPy once and
    # then processes train before test.
    train_rgb = course_preprocess(raw.train_images, raw.train_labels, categories, rng)
    test_rgb = course_preprocess(raw.test_images, raw.test_labels, categories, rng)
    if len(train_rgb) == 0 or len(test_rgb) == 0:
        raise ColorcnnError(
            f"category {settings.category!r} has {len(train_rgb)} train and {len(test_rgb)} "
            "test images in this data; expected at least one of each"
        )
    return CourseData(train_rgb, test_rgb, categories, time.perf_counter() - started)
