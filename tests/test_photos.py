"""The photo dataset: a held-out split by file name, seeded crops, fixed validation views."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from colorcnn.color.spaces import course_grey
from colorcnn.data import DataSettings, load_course_data
from colorcnn.data import photos as photo_data
from colorcnn.errors import ColorcnnError
from colorcnn.models import create_model


def _make_photos(folder: Path, count: int = 12, size: tuple[int, int] = (120, 90)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(0)
    paths = []
    for index in range(count):
        pixels = rng.randint(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
        path = folder / f"photo_{index:02d}.png"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    (folder / "notes.txt").write_text("not a photo")
    return paths


def test_split_depends_only_on_file_names(tmp_path: Path) -> None:
    paths = [tmp_path / f"p{i}.png" for i in range(200)]
    split = photo_data.split_photos(paths)
    assert set(split.train).isdisjoint(split.validation)
    assert set(split.train) | set(split.validation) == set(paths)
    assert 0.05 < len(split.validation) / len(paths) < 0.3
    # Adding photos never moves an existing one to the other side.
    grown = photo_data.split_photos(paths + [tmp_path / f"q{i}.png" for i in range(50)])
    assert set(split.validation) <= set(grown.validation)


def test_crops_are_seeded_and_sized(tmp_path: Path) -> None:
    image = Image.fromarray(np.random.RandomState(1).randint(0, 256, (90, 120, 3), np.uint8))
    first = photo_data.random_crops(image, 5, 32, np.random.RandomState(3))
    again = photo_data.random_crops(image, 5, 32, np.random.RandomState(3))
    other = photo_data.random_crops(image, 5, 32, np.random.RandomState(4))
    assert first.shape == (5, 32, 32, 3) and first.dtype == np.uint8
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    views = photo_data.validation_views(image, 32)
    assert views.shape == (len(photo_data.VALIDATION_VIEWS), 32, 32, 3)


def test_photo_dataset_loads_and_is_cached(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    _make_photos(folder)
    settings = DataSettings(str(folder), dataset="photos", crop_size=32, crops_per_photo=3)
    data = load_course_data(settings, tmp_path / "cache")
    views = len(photo_data.VALIDATION_VIEWS)
    split = photo_data.split_photos(photo_data.list_photos(folder))
    assert data.train_rgb.shape == (3 * len(split.train), 3, 32, 32)
    assert data.test_rgb.shape == (views * len(split.validation), 3, 32, 32)
    assert torch.allclose(course_grey(data.train_rgb), data.train_rgb.mean(dim=1, keepdim=True))
    again = load_course_data(settings, tmp_path / "cache")
    assert torch.equal(again.train_rgb, data.train_rgb)


def test_cropping_shows_progress_only_when_asked(tmp_path: Path, capfd) -> None:
    folder = tmp_path / "photos"
    _make_photos(folder)
    settings = DataSettings(str(folder), dataset="photos", crop_size=32, crops_per_photo=2)
    load_course_data(settings, tmp_path / "quiet", show_progress=False)
    assert "Cropping photos" not in capfd.readouterr().err
    load_course_data(settings, tmp_path / "shown", show_progress=True)
    assert "Cropping photos" in capfd.readouterr().err


def test_photo_folder_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ColorcnnError, match="does not exist"):
        photo_data.list_photos(tmp_path / "missing")
    (tmp_path / "one").mkdir()
    Image.new("RGB", (40, 40)).save(tmp_path / "one" / "only.png")
    with pytest.raises(ColorcnnError, match="expected at least 2"):
        photo_data.list_photos(tmp_path / "one")
    with pytest.raises(ColorcnnError, match="needs data"):
        load_course_data(DataSettings(None, dataset="photos"), tmp_path / "cache")
    # Said before CIFAR-10 is read or downloaded for the mix (no such CIFAR folder here).
    mix = DataSettings(None, dataset="photos+cifar10", cifar_data=str(tmp_path / "no_cifar"))
    with pytest.raises(ColorcnnError, match="the photos\\+cifar10 dataset needs data"):
        load_course_data(mix, tmp_path / "cache")
    with pytest.raises(ColorcnnError, match="unknown dataset"):
        load_course_data(DataSettings(None, dataset="imagenet"), tmp_path / "cache")


def test_broken_photo_names_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    _make_photos(folder, count=4)
    broken = folder / "broken.png"
    broken.write_text("not a png")
    settings = DataSettings(str(folder), dataset="photos", crop_size=16, crops_per_photo=1)
    with pytest.raises(ColorcnnError, match="broken.png could not be read"):
        load_course_data(settings, tmp_path / "cache")


@pytest.mark.parametrize("name", ["unet", "cnn", "conv_transpose_net", "pool_upsample_net"])
def test_narrow_colour_layers_widen_through_a_1x1_head(name: str) -> None:
    model = create_model(name, out_channels=261, colour_width=32)
    assert isinstance(model.head, torch.nn.Conv2d) and model.head.kernel_size == (1, 1)
    activations = model.forward_activations(torch.rand(1, 1, 32, 32))
    assert activations["output"].shape == (1, 261, 32, 32)
    names = list(activations)
    assert activations[names[-2]].shape[1] == 32  # the narrow last layer, exposed by name
    course = create_model(name)
    assert isinstance(course.head, torch.nn.Identity)  # the course's models are unchanged


def test_photos_plus_cifar_adds_resized_cifar_images(tmp_path: Path, tiny_cifar: Path) -> None:
    folder = tmp_path / "photos"
    _make_photos(folder)
    settings = DataSettings(
        str(folder), dataset="photos+cifar10", crop_size=32, crops_per_photo=2,
        cifar_data=str(tiny_cifar), cifar_images=7,
    )  # fmt: skip
    mixed = load_course_data(settings, tmp_path / "cache")
    plain = load_course_data(
        DataSettings(str(folder), dataset="photos", crop_size=32, crops_per_photo=2),
        tmp_path / "cache",
    )
    assert len(mixed.train_rgb) == len(plain.train_rgb) + 7
    assert torch.equal(mixed.test_rgb.sort(dim=0).values, plain.test_rgb.sort(dim=0).values)


def test_a_photos_plus_cifar_run_is_evaluated_where_both_folders_now_lie(
    tmp_path: Path, tiny_cifar: Path, capsys
) -> None:
    import shutil

    from colorcnn.cli import main
    from colorcnn.training import TrainConfig, fit

    folder, cifar = tmp_path / "photos", tmp_path / "cifar"
    _make_photos(folder, count=6)
    shutil.copytree(tiny_cifar, cifar)
    data = DataSettings(
        str(folder), dataset="photos+cifar10", cifar_data=str(cifar), cifar_images=5,
        crop_size=16, crops_per_photo=2,
    )  # fmt: skip
    config = TrainConfig(
        model="unet_small", data=data, epochs=1, batch_size=4, out=str(tmp_path / "run"),
        picture_every=0,
    )  # fmt: skip
    fit(config, cache_dir=tmp_path / "cache", show_progress=False, log=lambda _: None)
    moved_photos, moved_cifar = folder.rename(tmp_path / "p2"), cifar.rename(tmp_path / "c2")
    common = ["evaluate", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache2")]
    assert main([*common, "--data", str(moved_photos)]) == 1  # CIFAR-10 no longer there
    assert str(cifar) in capsys.readouterr().err
    assert main([*common, "--data", str(moved_photos), "--cifar-data", str(moved_cifar)]) == 0
    assert "PSNR" in capsys.readouterr().out


def test_photo_runs_default_to_ab_regression(tmp_path: Path) -> None:
    from colorcnn.trained.checkpoint import load_checkpoint
    from colorcnn.training import TrainConfig, fit

    folder = tmp_path / "photos"
    _make_photos(folder, count=6)
    config = TrainConfig(
        model="unet_small",
        data=DataSettings(str(folder), dataset="photos", crop_size=16, crops_per_photo=2),
        epochs=1, batch_size=4, out=str(tmp_path / "run"), picture_every=0,
    )  # fmt: skip
    fit(config, cache_dir=tmp_path / "cache", show_progress=False, log=lambda _: None)
    info = load_checkpoint(tmp_path / "run").info
    assert info["target"] == "ab-regression"
    # Learnt from 16 px crops; photos are colourized at the photo models' working size.
    assert (info["image_side"], info["working_size"]) == (16, 128)


def test_photo_unet_trains_on_photos_and_colorizes_any_size(tmp_path: Path) -> None:
    from colorcnn.inference import Colorizer
    from colorcnn.training import TrainConfig, fit

    folder = tmp_path / "photos"
    _make_photos(folder, count=6)
    config = TrainConfig(
        model="photo_unet",
        data=DataSettings(str(folder), dataset="photos", crop_size=32, crops_per_photo=2),
        epochs=1, batch_size=4, target="ab-regression", regression_loss="mse",
        picture_every=0, out=str(tmp_path / "run"),
    )  # fmt: skip
    history = fit(config, cache_dir=tmp_path / "cache", show_progress=False, log=lambda _: None)
    assert len(history) == 1 and np.isfinite(history[0]["psnr"])
    colorizer = Colorizer.load(tmp_path / "run")
    assert colorizer.size_multiple == 32
    grey = np.random.RandomState(0).randint(0, 256, (37, 53), np.uint8)  # not multiples of 32
    assert colorizer.colorize(grey, 40).size == (53, 37)


def test_crop_sizes_the_model_cannot_take_are_refused_before_loading(tmp_path: Path) -> None:
    from colorcnn.training import TrainConfig, fit

    config = TrainConfig(
        model="photo_unet",
        data=DataSettings(str(tmp_path / "absent"), dataset="photos", crop_size=48),
        out=str(tmp_path / "run"),
    )  # fmt: skip
    with pytest.raises(ColorcnnError, match="multiples of 32; crop_size gives 48 px"):
        fit(config, cache_dir=tmp_path / "cache", show_progress=False)
