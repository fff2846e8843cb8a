"""Photos split by source: whole sources on one side, named test and validation sources, a
split that stays put as photos are added, and the shared photo folder's split."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import DATA_ROOT
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from colorcnn.data import photos as photo_data
from colorcnn.errors import ColorcnnError

HEADER = "file\tdebian_package\tversion\n"


def _write_table(folder: Path, rows: dict[str, str], header: str = HEADER) -> None:
    """A SOURCES.tsv with one row per file: its package and a version."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"{name}\t{package}\t1.0-1\n" for name, package in rows.items()]
    (folder / photo_data.SOURCES_FILE).write_text(header + "".join(lines), encoding="utf-8")


def _sides(split: photo_data.PhotoSplit) -> dict[str, list[Path]]:
    return {"train": split.train, "validation": split.validation, "test": split.test}


def _sources_by_side(split: photo_data.PhotoSplit) -> dict[str, set[str]]:
    return {side: {split.source_of(p) for p in photos} for side, photos in _sides(split).items()}


def _assert_sources_on_one_side(split: photo_data.PhotoSplit) -> None:
    by_side = _sources_by_side(split)
    assert by_side["train"].isdisjoint(by_side["validation"])
    assert by_side["train"].isdisjoint(by_side["test"])
    assert by_side["validation"].isdisjoint(by_side["test"])


def _side_of(split: photo_data.PhotoSplit) -> dict[Path, str]:
    return {photo: side for side, photos in _sides(split).items() for photo in photos}


def test_sources_from_the_table_merge_releases_and_split_gcompris_by_activity(
    tmp_path: Path,
) -> None:
    rows = {
        "gcompris__details__mona.png": "gcompris-qt-data",
        "gcompris__erase__tiger.png": "gcompris-qt-data",
        "lomiri__beach.png": "lomiri-wallpapers-16.04",
        "lomiri__hills.png": "lomiri-wallpapers-20.04",
        "mate__dunes.png": "mate-backgrounds",
        "jigzo.png": "jigzo-data",
    }
    _write_table(tmp_path, rows)
    packages = photo_data.read_sources_table(tmp_path)
    assert packages == rows
    sources = {name: photo_data.photo_source(tmp_path / name, packages) for name in rows}
    assert sources == {
        "gcompris__details__mona.png": "gcompris-qt-data/details",
        "gcompris__erase__tiger.png": "gcompris-qt-data/erase",
        "lomiri__beach.png": "lomiri-wallpapers",
        "lomiri__hills.png": "lomiri-wallpapers",
        "mate__dunes.png": "mate-backgrounds",
        "jigzo.png": "jigzo-data",
    }
    # split_photos reads the table next to the photos by itself.
    split = photo_data.split_photos([tmp_path / name for name in rows])
    assert split.source_of(tmp_path / "lomiri__hills.png") == "lomiri-wallpapers"
    assert split.source_of(tmp_path / "gcompris__erase__tiger.png") == "gcompris-qt-data/erase"


def test_without_a_table_the_source_is_the_name_before_the_separator(tmp_path: Path) -> None:
    assert photo_data.read_sources_table(tmp_path) == {}
    assert photo_data.photo_source(tmp_path / "flickr__cat__1.png", {}) == "flickr"
    assert photo_data.photo_source(tmp_path / "holiday__beach.jpg", {}) == "holiday"
    assert photo_data.photo_source(tmp_path / "lonely.png", {}) == "lonely.png"
    # A table lists some photos; the others still take their names' source.
    packages = {"gcompris__details__a.png": "gcompris-qt-data"}
    assert photo_data.photo_source(tmp_path / "other__b.png", packages) == "other"
    # A gcompris file without an activity part is the package alone.
    assert photo_data.photo_source(tmp_path / "solo.png", {"solo.png": "gcompris-qt-data"}) == (
        "gcompris-qt-data"
    )


def test_a_table_without_the_package_column_names_the_columns(tmp_path: Path) -> None:
    _write_table(tmp_path, {"a__1.png": "pkg"}, header="file\tpackage\tversion\n")
    with pytest.raises(ColorcnnError, match="debian_package") as raised:
        photo_data.read_sources_table(tmp_path)
    message = str(raised.value)
    assert "file, package, version" in message and "\n" not in message
    with pytest.raises(ColorcnnError, match="debian_package"):
        photo_data.split_photos([tmp_path / "a__1.png", tmp_path / "b__1.png"])


def test_many_sources_split_whole_with_a_share_near_the_validation_share(tmp_path: Path) -> None:
    photos = [tmp_path / f"source{s:03d}__{i}.png" for s in range(300) for i in range(3)]
    split = photo_data.split_photos(photos)
    _assert_sources_on_one_side(split)
    assert sorted(split.train + split.validation + split.test) == sorted(photos)
    assert split.test == []  # no listed test source among them
    share = len(_sources_by_side(split)["validation"]) / 300
    assert 0.08 < share < 0.25


@st.composite
def _folders(draw: st.DrawFn) -> tuple[list[str], dict[str, str]]:
    """File names of made-up sources (1-4 photos each) plus some listed sources' files."""
    names = draw(
        st.lists(
            st.text("abcdefhijk", min_size=1, max_size=6), min_size=1, max_size=25, unique=True
        )  # fmt: skip
    )
    listed = draw(
        st.lists(
            st.sampled_from(photo_data.TEST_SOURCES + photo_data.VALIDATION_SOURCES),
            max_size=4,
            unique=True,
        )  # fmt: skip
    )
    files, packages = [], {}
    for name in names:
        files += [f"{name}__{index}.png" for index in range(draw(st.integers(1, 4)))]
    for source in listed:
        package, _, activity = source.partition("/")
        for index in range(draw(st.integers(1, 3))):
            file = f"gcompris__{activity}__{index}.png" if activity else f"{package}__{index}.png"
            files.append(file)
            packages[file] = package + "-22.04" if package.startswith("lomiri") else package
    return files, packages


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(folder=_folders())
def test_no_source_lies_on_two_sides(tmp_path: Path, folder: tuple[list[str], dict]) -> None:
    files, packages = folder
    assume(len(files) >= 2)  # a photo folder holds at least two (list_photos)
    photos = [tmp_path / name for name in files]
    split = photo_data.split_photos(photos, packages=packages)
    # Every photo on exactly one side, and something to train on and to score.
    everything = split.train + split.validation + split.test
    assert sorted(everything) == sorted(photos)
    assert split.train and split.validation
    if len(set(split.sources.values())) > 1:
        _assert_sources_on_one_side(split)
    else:  # one source: the last photo by name is held out, the rest trained on
        assert split.validation == photos[-1:]


def _listed_sources_folder(tmp_path: Path) -> tuple[list[Path], dict[str, str]]:
    """40 made-up sources plus two files of each listed test and validation source."""
    files = [f"made{s:02d}__{i}.png" for s in range(40) for i in range(2)]
    packages = {}
    for source in photo_data.TEST_SOURCES + photo_data.VALIDATION_SOURCES:
        package, _, activity = source.partition("/")
        for index in range(2):
            file = f"gcompris__{activity}__{index}.png" if activity else f"{package}__{index}.png"
            files.append(file)
            packages[file] = package
    return [tmp_path / name for name in files], packages


def test_listed_sources_go_to_their_sides(tmp_path: Path) -> None:
    photos, packages = _listed_sources_folder(tmp_path)
    split = photo_data.split_photos(photos, packages=packages)
    by_side = _sources_by_side(split)
    assert by_side["test"] == set(photo_data.TEST_SOURCES)
    assert set(photo_data.VALIDATION_SOURCES) <= by_side["validation"]
    assert by_side["train"] and by_side["train"].isdisjoint(photo_data.TEST_SOURCES)
    assert by_side["train"].isdisjoint(photo_data.VALIDATION_SOURCES)
    _assert_sources_on_one_side(split)


def test_adding_sources_moves_no_photo_to_another_side(tmp_path: Path) -> None:
    photos, packages = _listed_sources_folder(tmp_path)
    before = _side_of(photo_data.split_photos(photos, packages=packages))
    added = [tmp_path / f"new{s:03d}__{i}.png" for s in range(60) for i in range(3)]
    after = _side_of(photo_data.split_photos(photos + added, packages=packages))
    assert {photo: after[photo] for photo in photos} == before
    assert "validation" in {after[photo] for photo in added}  # the new ones are split too
    # Without a table the made-up sources keep their sides as well.
    plain = [photo for photo in photos if photo.name.startswith("made")]
    before = _side_of(photo_data.split_photos(plain, packages={}))
    after = _side_of(photo_data.split_photos(plain + added, packages={}))
    assert {photo: after[photo] for photo in plain} == before


def test_two_photos_of_one_source_train_one_and_score_the_other(tmp_path: Path) -> None:
    photos = [tmp_path / "solo__1.png", tmp_path / "solo__2.png"]
    for share in (0.0, photo_data.VALIDATION_SHARE, 1.0):  # wherever the source hashes to
        split = photo_data.split_photos(photos, validation_share=share)
        assert (split.train, split.validation, split.test) == (photos[:1], photos[1:], [])


def test_two_sources_on_one_side_hold_one_whole_source_out(tmp_path: Path) -> None:
    photos = [tmp_path / name for name in ("a__1.png", "a__2.png", "b__1.png", "b__2.png")]
    # A share of 0 hashes every source to train, 1 every source to validation.
    for share in (0.0, 1.0):
        split = photo_data.split_photos(photos, validation_share=share)
        assert split.train == photos[:2] and split.validation == photos[2:] and split.test == []
        _assert_sources_on_one_side(split)


def test_test_sources_score_epochs_when_no_validation_source_is_there(tmp_path: Path) -> None:
    photos = [tmp_path / f"made{s:02d}__1.png" for s in range(3)]
    photos += [tmp_path / "lomiri__1.png", tmp_path / "lomiri__2.png"]
    packages = {"lomiri__1.png": "lomiri-wallpapers-16.04", "lomiri__2.png": "lomiri-wallpapers"}
    split = photo_data.split_photos(photos, validation_share=0.0, packages=packages)
    assert split.train == photos[:3]
    assert split.validation == photos[3:] and split.test == []


@pytest.mark.needs_data
def test_the_shared_photo_folder_holds_the_test_sources_out() -> None:
    folder = DATA_ROOT / "photos"
    if not (folder / photo_data.SOURCES_FILE).is_file():
        pytest.skip(f"photo folder with {photo_data.SOURCES_FILE} not found at {folder} "
                    "(set COLORCNN_DATA_ROOT)")  # fmt: skip
    split = photo_data.split_photos(photo_data.list_photos(folder))
    _assert_sources_on_one_side(split)
    by_side = _sources_by_side(split)
    assert split.test and by_side["test"] == set(photo_data.TEST_SOURCES)
    assert split.train and split.validation
    assert by_side["validation"].isdisjoint(photo_data.TEST_SOURCES)
    # Every photo of the folder has a row in the table.
    packages = photo_data.read_sources_table(folder)
    assert {photo.name for photo in split.train + split.validation + split.test} <= set(packages)
