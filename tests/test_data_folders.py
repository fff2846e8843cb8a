"""Image-folder trees `{train,test}/<class>/*.png|jpg` read as CIFAR-10, made here with PIL."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from colorcnn.color.spaces import course_grey
from colorcnn.data import folders
from colorcnn.data.datasets import CLASS_NAMES, DataSettings, load_course_data, load_raw_cifar10
from colorcnn.errors import ColorcnnError

# (split, class, file name) -> every image gets its own colour, so rows can be told apart.
LAYOUT = {
    "train": {"airplane": ["a.png", "b.png"], "horse": ["a.png", "b.PNG"], "truck": ["z.png"]},
    "test": {"horse": ["c.png"], "airplane": ["d.png"]},
}


def _pixels(seed: int, size: tuple[int, int] = (32, 32)) -> np.ndarray:
    """A (height, width, 3) uint8 image, different for each seed and not symmetric."""
    rng = np.random.RandomState(seed)
    width, height = size
    return rng.randint(0, 256, size=(height, width, 3)).astype(np.uint8)


def make_tree(root: Path) -> dict[str, list[tuple[int, np.ndarray]]]:
    """Write LAYOUT as PNGs; return, per split, (label, pixels) in the order the reader uses:
    CIFAR class order, then file name."""
    expected: dict[str, list[tuple[int, np.ndarray]]] = {}
    seed = 0
    for split, classes in LAYOUT.items():
        rows = []
        for class_name in CLASS_NAMES:
            for file_name in sorted(classes.get(class_name, [])):
                seed += 1
                pixels = _pixels(seed)
                folder = root / split / class_name
                folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray(pixels).save(folder / file_name, format="PNG")
                rows.append((CLASS_NAMES.index(class_name), pixels))
        expected[split] = rows
    # Files that are not images are ignored.
    (root / "train" / "horse" / "notes.txt").write_text("not an image")
    (root / "train" / "README").write_text("loose file next to the class folders")
    return expected


def test_image_folder_tree_is_read_with_cifar_labels(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    expected = make_tree(root)
    assert folders.is_image_folder_tree(root)

    raw = load_raw_cifar10(root, tmp_path / "cache")

    for split in ("train", "test"):
        images = getattr(raw, f"{split}_images")
        labels = getattr(raw, f"{split}_labels")
        assert images.dtype == np.uint8
        assert labels.dtype == np.int64
        assert images.shape == (len(expected[split]), 32, 32, 3)
        assert labels.tolist() == [label for label, _ in expected[split]]
        for row, (_, pixels) in enumerate(expected[split]):
            np.testing.assert_array_equal(images[row], pixels)
    # airplane 0, horse 7, truck 9 in CIFAR-10's class order
    assert raw.train_labels.tolist() == [0, 0, 7, 7, 9]
    assert raw.test_labels.tolist() == [0, 7]


def test_other_image_formats_and_modes_are_converted_to_rgb(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    grey = np.full((32, 32), 77, dtype=np.uint8)
    (root / "train" / "cat").mkdir(parents=True)
    (root / "test" / "cat").mkdir(parents=True)
    Image.fromarray(grey, mode="L").save(root / "train" / "cat" / "grey.png")
    Image.fromarray(_pixels(5)).convert("RGBA").save(root / "train" / "cat" / "rgba.png")
    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(
        root / "test" / "cat" / "flat.jpg", quality=95
    )

    raw = load_raw_cifar10(root, tmp_path / "cache")

    assert raw.train_images.shape == (2, 32, 32, 3)
    np.testing.assert_array_equal(raw.train_images[0], np.full((32, 32, 3), 77))
    np.testing.assert_array_equal(raw.train_images[1], _pixels(5))
    assert raw.test_labels.tolist() == [3]
    assert np.abs(raw.test_images[0].astype(int) - 128).max() <= 2  # JPEG is lossy


def test_image_folder_is_cached_and_invalidated_by_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "tree"
    make_tree(root)
    cache_dir = tmp_path / "cache"
    first = load_raw_cifar10(root, cache_dir)
    # One cache entry per class, so that a one-class run decodes only that class.
    classes_in_tree = {p.name for split in ("train", "test") for p in (root / split).iterdir()
                       if p.is_dir()}  # fmt: skip
    assert len(list((cache_dir / "decoded").iterdir())) == len(classes_in_tree)

    def no_decoding(*args: object, **kwargs: object):
        raise AssertionError("decoded again instead of using the cache")

    monkeypatch.setattr(folders, "decode_images", no_decoding)
    second = load_raw_cifar10(root, cache_dir)
    np.testing.assert_array_equal(second.train_images, first.train_images)
    np.testing.assert_array_equal(second.test_labels, first.test_labels)
    monkeypatch.undo()

    # A new image changes the key: decoded again, and the new image is there.
    (root / "test" / "truck").mkdir()
    Image.fromarray(_pixels(99)).save(root / "test" / "truck" / "new.png")
    third = load_raw_cifar10(root, cache_dir)
    assert third.test_labels.tolist() == [0, 7, 9]
    np.testing.assert_array_equal(third.test_images[2], _pixels(99))

    # Rewriting an image in place (new mtime) is seen too.
    path = root / "train" / "airplane" / "a.png"
    stat = os.stat(path)
    Image.fromarray(_pixels(123)).save(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 3_000_000_000))
    fourth = load_raw_cifar10(root, cache_dir)
    np.testing.assert_array_equal(fourth.train_images[0], _pixels(123))


def test_course_data_from_an_image_folder(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    expected = make_tree(root)
    data = load_course_data(DataSettings(data=str(root), category="horse", seed=0), tmp_path / "c")
    horses = np.stack([pixels for label, pixels in expected["train"] if label == 7])
    rng = np.random.RandomState(0)
    rng.shuffle(horses)
    assert tuple(data.train_rgb.shape) == (2, 3, 32, 32)
    assert tuple(course_grey(data.test_rgb).shape) == (1, 1, 32, 32)
    np.testing.assert_array_equal(
        data.train_rgb.numpy().astype(np.float64), horses.transpose(0, 3, 1, 2) / 256.0
    )


def test_image_of_the_wrong_size_names_the_file(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    make_tree(root)
    bad = root / "test" / "horse" / "big.png"
    Image.fromarray(_pixels(7, size=(40, 32))).save(bad)
    with pytest.raises(ColorcnnError) as caught:
        load_raw_cifar10(root, tmp_path / "cache")
    message = str(caught.value)
    assert str(bad) in message
    assert "40x32" in message and "32x32" in message
    # Classes decoded before the failure keep complete entries; nothing half-written is left.
    decoded = tmp_path / "cache" / "decoded"
    entries = list(decoded.iterdir()) if decoded.exists() else []
    assert all((entry / "arrays.json").is_file() for entry in entries)
    assert not any(entry.name.startswith(".") for entry in entries)


def test_broken_image_file_names_the_file(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    make_tree(root)
    bad = root / "train" / "truck" / "broken.png"
    bad.write_text("this is text, not a PNG")
    with pytest.raises(ColorcnnError) as caught:
        load_raw_cifar10(root, tmp_path / "cache")
    assert str(bad) in str(caught.value)
    assert "could not be read" in str(caught.value)


def test_truncated_png_names_the_file(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    make_tree(root)
    bad = root / "train" / "horse" / "a.png"
    bad.write_bytes(bad.read_bytes()[:200])
    with pytest.raises(ColorcnnError) as caught:
        load_raw_cifar10(root, tmp_path / "cache")
    assert str(bad) in str(caught.value)


def test_class_folder_that_is_not_a_cifar_class(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    make_tree(root)
    (root / "train" / "unicorn").mkdir()
    Image.fromarray(_pixels(3)).save(root / "train" / "unicorn" / "u.png")
    with pytest.raises(ColorcnnError) as caught:
        load_raw_cifar10(root, tmp_path / "cache")
    message = str(caught.value)
    assert "unicorn" in message
    assert "airplane" in message and "truck" in message


@pytest.mark.parametrize("how", ["no-class-folders", "empty-class-folder", "only-text-files"])
def test_empty_split(tmp_path: Path, how: str) -> None:
    root = tmp_path / "tree"
    make_tree(root)
    for class_dir in (root / "test").iterdir():
        for file in class_dir.iterdir():
            file.unlink()
        class_dir.rmdir()
    if how == "empty-class-folder":
        (root / "test" / "horse").mkdir()
    elif how == "only-text-files":
        (root / "test" / "horse").mkdir()
        (root / "test" / "horse" / "notes.txt").write_text("no images here")
    with pytest.raises(ColorcnnError) as caught:
        load_raw_cifar10(root, tmp_path / "cache")
    assert str(root / "test") in str(caught.value)
    assert "no images" in str(caught.value)


def test_missing_data_folder(tmp_path: Path) -> None:
    missing = tmp_path / "does-not-exist"
    with pytest.raises(ColorcnnError) as caught:
        load_raw_cifar10(missing, tmp_path / "cache")
    assert str(missing) in str(caught.value)
    assert "does not exist" in str(caught.value)


def test_tree_without_a_test_split_is_rejected(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    (root / "train" / "horse").mkdir(parents=True)
    Image.fromarray(_pixels(1)).save(root / "train" / "horse" / "a.png")
    assert not folders.is_image_folder_tree(root)
    with pytest.raises(ColorcnnError) as caught:
        load_raw_cifar10(root, tmp_path / "cache")
    assert "neither" in str(caught.value)


def test_list_split_reports_a_missing_split(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    with pytest.raises(ColorcnnError) as caught:
        folders.list_split(tmp_path, "test", list(CLASS_NAMES))
    assert str(tmp_path / "test") in str(caught.value)


def test_training_images_are_turned_upright_by_their_exif_orientation(tmp_path: Path) -> None:
    stored = np.zeros((20, 60, 3), dtype=np.uint8)
    stored[:, :10] = 255  # a white band on the left as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise: the band ends up on top
    Image.fromarray(stored).save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    shown = np.asarray(folders.open_rgb(tmp_path / "rotated.jpg"))[..., 0]
    assert shown.shape == (60, 20)  # as colourizing reads it (test_colorize)
    assert shown[:10].mean() > 200 and shown[12:].mean() < 30


def test_a_race_for_the_same_cache_entry_keeps_the_finished_one(
    tmp_path: Path, monkeypatch
) -> None:
    from colorcnn.data import cache

    arrays = {"images": np.arange(12, dtype=np.uint8).reshape(3, 4)}
    real_replace = os.replace

    def another_process_finishes_first(source, destination):
        monkeypatch.setattr(os, "replace", real_replace)
        cache.save_arrays(tmp_path, "key", arrays)
        real_replace(source, destination)  # onto a full folder: fails as in a real race

    monkeypatch.setattr(os, "replace", another_process_finishes_first)
    cache.save_arrays(tmp_path, "key", arrays)
    np.testing.assert_array_equal(cache.load_arrays(tmp_path, "key")["images"], arrays["images"])
    assert [entry.name for entry in (tmp_path / "decoded").iterdir()] == ["key"]  # no leftovers
    cache.save_arrays(tmp_path, "key", arrays)  # an entry already there is kept as it is
    np.testing.assert_array_equal(cache.load_arrays(tmp_path, "key")["images"], arrays["images"])
