"""Colourizing images of any size and kind with a trained model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from colorcnn.cli import main
from colorcnn.color.spaces import rgb_to_lab
from colorcnn.data import DataSettings
from colorcnn.errors import ColorcnnError
from colorcnn.inference import Colorizer, colorize
from colorcnn.inference.colorize import working_shape
from colorcnn.inference.images import read_image
from colorcnn.training import TrainConfig, fit


@pytest.fixture(scope="module")
def trained_runs(tiny_cifar: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    runs = {}
    for target in ("ab-bins", "palette-rgb"):
        out = tmp_path_factory.mktemp("runs") / target
        config = TrainConfig(
            model="unet_small", data=DataSettings(str(tiny_cifar), category="all"), epochs=1,
            batch_size=50, num_colours=6, target=target, out=str(out), picture_every=0,
        )  # fmt: skip
        fit(config, show_progress=False, log=lambda _: None)
        runs[target] = out
    return runs


def _grey_photo(width: int = 150, height: int = 97) -> Image.Image:
    ys, xs = np.mgrid[0:height, 0:width]
    pixels = ((xs * 255 / width) * 0.6 + (ys * 255 / height) * 0.4).astype(np.uint8)
    return Image.fromarray(pixels, "L")


def _lightness(image: Image.Image) -> np.ndarray:
    import torch

    rgb = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255)
    return rgb_to_lab(rgb.permute(2, 0, 1)[None])[0, 0].numpy()


@pytest.mark.parametrize("target", ["ab-bins", "palette-rgb"])
def test_output_keeps_size_and_lightness(trained_runs, target: str) -> None:
    grey = _grey_photo()
    result = colorize(grey, trained_runs[target], size=32)
    assert result.size == grey.size and result.mode == "RGB"
    # Only the chroma is predicted: the lightness is the input's, to rounding and gamut.
    difference = np.abs(_lightness(result) - _lightness(grey))
    assert np.median(difference) < 1.0


def test_working_shape_keeps_aspect_and_multiples_of_four() -> None:
    assert working_shape(3000, 4000, 256) == (256, 340)
    h, w = working_shape(97, 150, 32)
    assert h % 4 == 0 and w % 4 == 0 and h == 32


@pytest.mark.parametrize(
    "mode", ["L", "RGB", "RGBA", "LA", "P", "CMYK", "I;16", "1"]
)  # fmt: skip
def test_every_image_mode_is_read_and_colourized(trained_runs, tmp_path: Path, mode: str) -> None:
    base = _grey_photo(40, 30)
    if mode == "I;16":
        image = Image.fromarray(np.asarray(base, dtype=np.uint16) * 257)  # 16-bit grey
        assert image.mode == "I;16"
    else:
        image = base.convert(mode)
    suffix = ".tif" if mode in ("CMYK", "I;16") else ".png"
    path = tmp_path / f"in{suffix}"
    image.save(path)
    loaded = read_image(path)
    assert loaded.pixels.shape[:2] == (30, 40)
    assert loaded.pixels.shape[2] == (3 if mode in ("RGB", "RGBA", "P", "CMYK") else 1)
    assert (loaded.alpha is not None) == (mode in ("RGBA", "LA"))
    result = Colorizer.load(trained_runs["ab-bins"]).colorize_loaded(loaded, 16)
    assert result.size == (40, 30)
    assert result.mode == ("RGBA" if loaded.alpha is not None else "RGB")


@pytest.mark.parametrize(
    ("kind", "scale"),
    [("uint8", 1), ("uint16", 257), ("int32", 1), ("int32", 257), ("float32", 1 / 255),
     ("float32", 1)],
)  # fmt: skip
def test_grey_of_every_depth_is_read_at_its_brightness(tmp_path: Path, kind: str, scale) -> None:
    base = np.asarray(_grey_photo(40, 30), dtype=np.float64)  # 0..255
    assert base.max() > 200
    path = tmp_path / "grey.tif"
    Image.fromarray((base * scale).astype(kind)).save(path)
    loaded = read_image(path)
    assert loaded.pixels.shape == (30, 40, 1)
    np.testing.assert_allclose(loaded.pixels[..., 0], base / 255, atol=1e-6)


def test_exif_orientation_is_honoured(tmp_path: Path) -> None:
    pixels = np.zeros((20, 60), dtype=np.uint8)
    pixels[:, :10] = 255  # a white band on the left as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise: the band ends up on top
    Image.fromarray(pixels).save(tmp_path / "rotated.png", exif=exif)
    shown = read_image(tmp_path / "rotated.png").pixels[..., 0]
    assert shown.shape == (60, 20)
    assert shown[:10].mean() > 0.9 and shown[10:].mean() < 0.1


def test_first_frame_of_animations_and_palette_transparency(tmp_path: Path) -> None:
    frames = [Image.new("L", (16, 12), value) for value in (30, 200)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    first = read_image(tmp_path / "anim.gif")
    assert first.pixels.shape[:2] == (12, 16) and abs(first.pixels.mean() - 30 / 255) < 0.02
    paletted = Image.new("P", (8, 8), 1)
    paletted.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    paletted.info["transparency"] = 0
    paletted.save(tmp_path / "p.png", transparency=0)
    assert read_image(tmp_path / "p.png").alpha is not None


def test_cli_colourizes_a_folder_and_continues_past_bad_files(trained_runs, tmp_path, capsys):
    folder = tmp_path / "scans"
    (folder / "sub").mkdir(parents=True)
    _grey_photo().save(folder / "a.png")
    _grey_photo(64, 64).save(folder / "sub" / "b.jpg")
    (folder / "broken.png").write_text("not an image")
    out = tmp_path / "out"
    status = main(["colorize", str(folder), "-r", "-m", str(trained_runs["ab-bins"]),
                   "-o", str(out), "--size", "32", "--no-progress"])  # fmt: skip
    captured = capsys.readouterr()
    assert status == 1  # one input failed
    assert "failed" in captured.err and "broken.png" in captured.err
    assert "Colourized 2 of 3" in captured.out
    assert Image.open(out / "a.png").size == (150, 97)
    assert Image.open(out / "sub" / "b.jpg").size == (64, 64)
    assert not list(out.rglob(".*tmp"))  # no half-written files

    # Nothing is overwritten without --overwrite.
    before = (out / "a.png").stat().st_mtime_ns
    status = main(["colorize", str(folder / "a.png"), "-m", str(trained_runs["ab-bins"]),
                   "-o", str(out), "--size", "32"])  # fmt: skip
    assert status == 0 and "skipped" in capsys.readouterr().err
    assert (out / "a.png").stat().st_mtime_ns == before


def test_colour_input_is_noted_and_temperature_is_checked(trained_runs, tmp_path, capsys):
    Image.fromarray(np.random.RandomState(0).randint(0, 256, (20, 20, 3), np.uint8)).save(
        tmp_path / "colour.png"
    )
    args = ["colorize", str(tmp_path / "colour.png"), "-o", str(tmp_path / "o"), "--size", "16"]
    assert main([*args, "-m", str(trained_runs["ab-bins"]), "--temperature", "0.2"]) == 0
    assert "converted to grey first" in capsys.readouterr().err
    assert main([*args, "-m", str(trained_runs["palette-rgb"]), "--temperature", "0.2",
                 "--overwrite"]) == 1  # fmt: skip
    err = capsys.readouterr().err
    assert err.count("ab-bins models only") == 1  # checked once, before any file


def test_outputs_never_replace_inputs_and_missing_inputs_do_not_stop_the_rest(
    trained_runs, tmp_path, capsys
):
    folder = tmp_path / "photos"
    folder.mkdir()
    _grey_photo(32, 32).save(folder / "a.png")
    model = ["-m", str(trained_runs["ab-bins"]), "--size", "16"]
    assert main(["colorize", str(folder), "-o", str(folder), "--overwrite", *model]) == 1
    assert "is the output folder" in capsys.readouterr().err
    assert main(["colorize", str(folder / "a.png"), "-o", str(folder), "--overwrite", *model]) == 1
    assert "overwritten by its own result" in capsys.readouterr().err
    out = tmp_path / "out"
    assert main(["colorize", str(tmp_path / "nope.png"), str(folder / "a.png"), "-o", str(out),
                 *model]) == 1  # fmt: skip
    captured = capsys.readouterr()
    assert "nope.png does not exist" in captured.err
    assert "Colourized 1 of 2" in captured.out and (out / "a.png").is_file()


def test_one_input_can_be_written_to_a_named_file(trained_runs, tmp_path, capsys) -> None:
    _grey_photo(32, 24).save(tmp_path / "a.png")
    _grey_photo(32, 24).save(tmp_path / "b.png")
    model = ["-m", str(trained_runs["ab-bins"]), "--size", "16"]
    assert main(["colorize", str(tmp_path / "a.png"), "-o", str(tmp_path / "r.jpg"), *model]) == 0
    with Image.open(tmp_path / "r.jpg") as written:
        assert written.format == "JPEG" and written.size == (32, 24)
    both = [str(tmp_path / "a.png"), str(tmp_path / "b.png")]
    assert main(["colorize", *both, "-o", str(tmp_path / "two.jpg"), *model]) == 1
    assert "names one file, but 2 images were given" in capsys.readouterr().err
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    assert main(["colorize", *both, "-o", str(tmp_path / "notes.txt"), *model]) == 1
    assert "notes.txt is a file; expected a folder" in capsys.readouterr().err
    assert main(["colorize", *both[:1], "-o", str(tmp_path / "r.gif"), *model]) == 1
    assert "results are not written as .gif" in capsys.readouterr().err
    assert not (tmp_path / "two.jpg").exists() and not (tmp_path / "r.gif").exists()


def test_bad_inputs_are_one_line(trained_runs, tmp_path: Path) -> None:
    with pytest.raises(ColorcnnError, match="does not exist"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(ColorcnnError, match="is a folder"):
        read_image(tmp_path)
    with pytest.raises(ColorcnnError, match="expected a path, a PIL image or a NumPy array"):
        Colorizer.load(trained_runs["ab-bins"]).colorize(42)


def test_grey_and_rgb_copies_of_a_grey_photo_colourize_alike(trained_runs) -> None:
    # Grey inputs take their lightness from a table, RGB ones from a Lab conversion.
    grey = _grey_photo()
    from_grey = np.asarray(colorize(grey, trained_runs["ab-bins"], size=32), dtype=np.int16)
    from_rgb = colorize(grey.convert("RGB"), trained_runs["ab-bins"], size=32)
    assert np.abs(from_grey - np.asarray(from_rgb, dtype=np.int16)).max() <= 1


def test_arrays_of_every_supported_kind_are_read_on_their_scale() -> None:
    from colorcnn.inference.images import from_array

    grey8 = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    np.testing.assert_allclose(from_array(grey8).pixels[..., 0], grey8 / 255, atol=1e-7)
    grey16 = grey8.astype(np.uint16) * 257
    np.testing.assert_allclose(from_array(grey16).pixels[..., 0], grey8 / 255, atol=1e-7)
    floats = np.linspace(-0.5, 1.5, 12).reshape(3, 4)  # outside [0, 1]: clipped
    np.testing.assert_allclose(from_array(floats).pixels[..., 0], floats.clip(0, 1), atol=1e-7)
    rgba = np.zeros((3, 4, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 128  # red, half transparent
    loaded = from_array(rgba)
    assert loaded.pixels.shape == (3, 4, 3) and loaded.was_colour
    assert (loaded.alpha == 128).all()
    with pytest.raises(ColorcnnError, match="expected uint8, uint16 or float pixels, got int64"):
        from_array(np.zeros((3, 4), dtype=np.int64))
    with pytest.raises(ColorcnnError, match=r"got \(3, 4, 2\)"):
        from_array(np.zeros((3, 4, 2), dtype=np.uint8))
