"""The web demo's service: what an upload becomes, its limits and its messages. These run
without Gradio or a browser; tests/test_demo_browser.py drives the real page."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from colorcnn.cli import main
from colorcnn.color.spaces import rgb_to_lab
from colorcnn.data import DataSettings
from colorcnn.demo import DemoLimits, DemoService
from colorcnn.demo import service as service_module
from colorcnn.errors import ColorcnnError
from colorcnn.inference import Colorizer
from colorcnn.training import TrainConfig, fit


@pytest.fixture(scope="module")
def bins_run(tiny_cifar: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "bins"
    config = TrainConfig(
        model="unet_small", data=DataSettings(str(tiny_cifar), category="all"), epochs=1,
        batch_size=50, target="ab-bins", out=str(out), picture_every=0,
    )  # fmt: skip
    fit(config, show_progress=False, log=lambda _: None)
    return out


@pytest.fixture
def service(tmp_path: Path):
    demo = DemoService("photo", work_dir=tmp_path / "results")
    yield demo
    demo.close()


def _grey_file(folder: Path, width: int = 150, height: int = 97, name: str = "old.png") -> Path:
    ys, xs = np.mgrid[0:height, 0:width]
    pixels = ((xs * 255 / width) * 0.6 + (ys * 255 / height) * 0.4).astype(np.uint8)
    path = folder / name
    Image.fromarray(pixels, "L").save(path)
    return path


def _chroma(image: Image.Image) -> np.ndarray:
    rgb = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255)
    lab = rgb_to_lab(rgb.permute(2, 0, 1)[None])[0]
    return lab[1:].norm(dim=0).numpy()


def test_an_upload_becomes_a_full_size_colour_download(service: DemoService, tmp_path: Path):
    upload = _grey_file(tmp_path, 150, 97)
    result = service.colorize_upload(upload)
    assert (result.width, result.height) == (150, 97)
    with Image.open(result.download) as downloaded:
        assert downloaded.size == (150, 97) and downloaded.mode == "RGB"
        assert _chroma(downloaded).mean() > 2.0  # the shipped photo model adds colour
    assert result.colour.size == result.grey.size == (150, 97)
    assert _chroma(result.grey).max() < 1.0  # the "before" side has no chroma
    assert "Colourized old.png (150x97 px)" in result.message
    assert result.download.is_relative_to(service.work_dir)
    for shown, written in zip((result.grey, result.colour), result.shown_files, strict=True):
        with Image.open(written) as page_picture:  # what the page shows, as a file
            assert page_picture.size == shown.size and page_picture.format == "JPEG"


@pytest.mark.parametrize("upload_kind", ["grey", "colour"])
def test_the_grey_side_is_the_results_own_lightness(
    service: DemoService, tmp_path: Path, upload_kind: str
):
    upload = _grey_file(tmp_path)
    if upload_kind == "colour":  # a colour photo: the grey side is derived from the result
        with Image.open(upload) as grey:
            red, green, blue = (
                np.asarray(grey, dtype=np.float32) * share for share in (1, 0.7, 0.3)
            )
        colour = np.stack((red, green, blue), axis=-1).astype(np.uint8)
        upload = tmp_path / "colour.png"
        Image.fromarray(colour).save(upload)
    result = service.colorize_upload(upload)
    assert _chroma(result.grey).max() < 1.0

    def lightness(image):
        rgb = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1)
        return rgb_to_lab(rgb[None])[0, 0].numpy()

    np.testing.assert_allclose(lightness(result.grey), lightness(result.colour), atol=1.0)


def test_a_colour_upload_is_made_grey_first_and_says_so(service: DemoService, tmp_path: Path):
    rng = np.random.default_rng(1)
    upload = tmp_path / "colour.png"
    Image.fromarray(rng.integers(0, 255, (40, 60, 3), np.uint8)).save(upload)
    result = service.colorize_upload(upload)
    assert "The upload had colour; it was made grey first." in result.message
    assert _chroma(result.grey).max() < 1.0
    assert result.grey.size == result.colour.size == (60, 40)


def test_large_pictures_are_shown_smaller_but_downloaded_whole(tmp_path: Path):
    limits = DemoLimits(display_pixels=5000)
    demo = DemoService("photo", limits, work_dir=tmp_path / "results")
    result = demo.colorize_upload(_grey_file(tmp_path, 200, 100))
    assert result.colour.width * result.colour.height <= 5000
    assert result.colour.size == result.grey.size == (100, 50)
    with Image.open(result.download) as downloaded:
        assert downloaded.size == (200, 100)
    assert "download is full size" in result.message


def test_a_corrupt_upload_is_named_as_the_person_named_it(service: DemoService, tmp_path: Path):
    upload = tmp_path / "holiday.png"
    upload.write_bytes(b"\x89PNG\r\n\x1a\n this is not really a picture")
    with pytest.raises(ColorcnnError) as caught:
        service.colorize_upload(upload)
    message = str(caught.value)
    assert message.startswith("holiday.png could not be read as an image")
    assert str(tmp_path) not in message  # no server path leaks into the page
    assert "\n" not in message


def test_uploads_over_the_byte_limit_are_refused(tmp_path: Path):
    demo = DemoService("photo", DemoLimits(max_upload_mb=0.001), work_dir=tmp_path / "r")
    upload = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), np.uint8)).save(upload)
    with pytest.raises(ColorcnnError, match=r"noise.png is 0.00423 MB; .* up to 0.001 MB"):
        demo.colorize_upload(upload)


def test_uploads_over_the_pixel_limit_are_refused_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    demo = DemoService("photo", DemoLimits(max_pixels=10_000), work_dir=tmp_path / "r")

    def no_decoding(path):
        raise AssertionError(f"{path} was decoded")

    monkeypatch.setattr(service_module, "read_image", no_decoding)
    with pytest.raises(
        ColorcnnError, match=r"big.png is 200x100 px \(20,000 px\); .* at most 10,000 px"
    ):
        demo.colorize_upload(_grey_file(tmp_path, 200, 100, "big.png"))
    big = DemoService("photo", DemoLimits(max_pixels=2_000_000), work_dir=tmp_path / "r")
    with pytest.raises(ColorcnnError, match=r"\(2.6 MP\); this demo accepts at most 2.0 MP"):
        big.check_upload(_grey_file(tmp_path, 2000, 1300, "huge.png"), "huge.png")


def test_files_that_are_not_images_by_name_are_refused(service: DemoService, tmp_path: Path):
    upload = tmp_path / "notes.txt"
    upload.write_text("hello")
    with pytest.raises(ColorcnnError, match=r"notes.txt is not a supported image file; expected"):
        service.colorize_upload(upload)


def test_unknown_models_are_refused_with_the_choices(service: DemoService, tmp_path: Path):
    with pytest.raises(ColorcnnError, match=r"unknown model 'nope'; expected one of photo, "):
        service.colorize_upload(_grey_file(tmp_path), model="nope")


def test_the_page_address_brackets_ipv6_hosts():
    from colorcnn.demo.app import page_address

    assert page_address("127.0.0.1", 7860) == "http://127.0.0.1:7860/"
    assert page_address("::1", 8080) == "http://[::1]:8080/"


def test_every_shipped_model_is_offered_with_the_default_first(service: DemoService):
    names = service.model_names()
    assert names[0] == "photo" and "cifar-horse-unet" in names
    assert len(names) == len(set(names))


def test_the_temperature_applies_to_ab_bins_models_only(bins_run: Path, tmp_path: Path):
    demo = DemoService(str(bins_run), work_dir=tmp_path / "r")
    assert demo.default_temperature(str(bins_run)) == pytest.approx(0.38)
    assert demo.default_temperature("photo") is None
    upload = _grey_file(tmp_path)
    colorizer = Colorizer.load(bins_run)
    for temperature in (0.05, 1.0):
        shown = demo.colorize_upload(upload, temperature=temperature, size=32)
        expected = colorizer.colorize(upload, 32, temperature)
        with Image.open(shown.download) as downloaded:
            np.testing.assert_array_equal(np.asarray(downloaded), np.asarray(expected))
    assert not np.array_equal(
        np.asarray(colorizer.colorize(upload, 32, 0.05)),
        np.asarray(colorizer.colorize(upload, 32, 1.0)),
    )
    # The page's slider value is ignored, not refused, for a model without temperature.
    demo.colorize_upload(upload, model="photo", temperature=0.05)
    with pytest.raises(ColorcnnError, match="temperature must be a positive number"):
        demo.colorize_upload(upload, temperature=0.0, size=32)


def test_old_results_are_deleted_and_close_removes_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(service_module, "KEPT_RESULTS", 2)
    monkeypatch.setattr(service_module.tempfile, "tempdir", str(tmp_path))
    demo = DemoService("photo")  # its own temporary folder, here inside tmp_path
    try:
        assert demo.work_dir.parent == tmp_path
        upload = _grey_file(tmp_path, 40, 40)
        downloads = [demo.colorize_upload(upload).download for _ in range(4)]
        assert [path.exists() for path in downloads] == [False, False, True, True]
    finally:
        demo.close()
    assert not demo.work_dir.exists()


def test_a_model_that_fails_to_load_leaves_no_folder(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(service_module.tempfile, "tempdir", str(tmp_path))
    with pytest.raises(ColorcnnError):
        DemoService("no-such-model")
    assert list(tmp_path.iterdir()) == []


def test_a_model_given_as_a_path_is_labelled_without_its_folders(bins_run: Path, tmp_path):
    demo = DemoService(str(bins_run), work_dir=tmp_path / "r")
    label, value = demo.model_choices()[0]
    assert value == str(bins_run) and label == f"{bins_run.name} (--model)"
    assert ("photo", "photo") in demo.model_choices()


def test_transparent_parts_are_shown_over_white(service: DemoService, tmp_path: Path):
    rng = np.random.default_rng(2)
    pixels = np.dstack([rng.integers(0, 255, (30, 40), np.uint8)] * 2)  # grey + alpha
    pixels[..., 1] = 0
    pixels[:, :20, 1] = 255  # left half opaque, right half fully transparent
    upload = tmp_path / "cutout.png"
    Image.fromarray(pixels, "LA").save(upload)
    result = service.colorize_upload(upload)
    for shown in (result.grey, result.colour):
        assert (np.asarray(shown)[:, 20:] == 255).all()
    with Image.open(result.download) as downloaded:
        assert downloaded.mode == "RGBA"  # the download keeps the transparency
        assert (np.asarray(downloaded)[:, 20:, 3] == 0).all()


def test_a_very_long_strip_is_shown_within_what_jpeg_holds(service: DemoService, tmp_path):
    result = service.colorize_upload(_grey_file(tmp_path, 70_000, 2, "strip.png"))
    assert max(result.colour.size) <= 8192
    with Image.open(result.download) as downloaded:
        assert downloaded.size == (70_000, 2)


def test_concurrent_uploads_each_get_their_own_correct_result(service: DemoService, tmp_path: Path):
    sizes = [(64 + 8 * index, 48 + 4 * index) for index in range(6)]
    uploads = [_grey_file(tmp_path, w, h, f"photo{i}.png") for i, (w, h) in enumerate(sizes)]
    results: dict[int, object] = {}

    def work(index: int) -> None:
        results[index] = service.colorize_upload(uploads[index])

    threads = [threading.Thread(target=work, args=(index,)) for index in range(len(uploads))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index, (width, height) in enumerate(sizes):
        with Image.open(results[index].download) as downloaded:
            assert downloaded.size == (width, height)
        assert f"photo{index}.png" in results[index].message
    assert len({results[index].download for index in results}) == len(sizes)


def test_limits_must_be_positive():
    with pytest.raises(ColorcnnError, match="max upload must be a positive size"):
        DemoLimits(max_upload_mb=0)


def test_serve_without_gradio_says_which_extra_to_install(monkeypatch, capsys):
    monkeypatch.setitem(__import__("sys").modules, "gradio", None)  # import fails
    assert main(["serve"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("colorcnn: error: the web demo needs Gradio") and "[demo]" in err


def test_serve_refuses_a_bad_port_as_a_command_line_error(capsys):
    assert main(["serve", "--port", "70000"]) == 2
    assert "--port" in capsys.readouterr().err


def test_serve_listens_on_this_computer_only_and_offline_by_default(monkeypatch, capsys):
    gradio = pytest.importorskip("gradio", reason="the demo extra (Gradio) is not installed")
    launched: dict = {}
    monkeypatch.setattr(gradio.Blocks, "launch", lambda self, **kwargs: launched.update(kwargs))
    assert main(["serve", "--port", "8123", "--max-upload-mb", "3"]) == 0
    assert launched["server_name"] == "127.0.0.1" and launched["server_port"] == 8123
    assert launched["share"] is False and launched["ssr_mode"] is False
    assert launched["max_file_size"] == 3_000_000
    assert "colorcnn demo on http://127.0.0.1:8123/ with" in capsys.readouterr().out


def test_serve_help_names_the_extra_to_install(capsys):
    assert main(["serve", "--help"]) == 0
    assert 'pip install "colorcnn[demo]"' in capsys.readouterr().out


@pytest.mark.parametrize("scale", [2, 4])
def test_the_upscale_tab_makes_a_full_size_download_in_colour(
    service: DemoService, tmp_path: Path, scale: int
):
    rng = np.random.default_rng(scale)
    upload = tmp_path / "small.png"
    colour = rng.integers(0, 255, (24, 36, 3), np.uint8)
    Image.fromarray(colour).save(upload)
    result = service.upscale_upload(upload, scale)
    assert (result.width, result.height) == (36 * scale, 24 * scale)
    with Image.open(result.download) as downloaded:
        assert downloaded.size == (36 * scale, 24 * scale) and downloaded.mode == "RGB"
        assert _chroma(downloaded).mean() > 10  # colour stays colour
    assert result.shown.size == (36 * scale, 24 * scale)
    assert f"Upscaled small.png (36x24 px) x{scale} to {36 * scale}x{24 * scale} px" in (
        result.message
    )
    assert "upscale" not in " ".join(service.model_names())  # not offered to colourize
    grey = service.upscale_upload(_grey_file(tmp_path, 20, 10), scale)
    with Image.open(grey.download) as downloaded:
        pixels = np.asarray(downloaded)
        assert (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all()


def test_an_upscaled_result_over_the_limit_is_refused_by_the_uploads_name(
    service: DemoService, tmp_path: Path, monkeypatch
):
    monkeypatch.setattr(service_module, "MAX_UPSCALED_PIXELS", 1000)
    with pytest.raises(ColorcnnError, match=r"^old.png upscaled x4 would be 80x40 px"):
        service.upscale_upload(_grey_file(tmp_path, 20, 10), 4)
    with pytest.raises(ColorcnnError, match="scale must be one of 2, 4, got 3"):
        service.upscale_upload(_grey_file(tmp_path, 20, 10), 3)
