"""Colour hints in the web demo's service: colourizing with them, their file, the points
marked on the page's picture, and pixels of a picture shown smaller than the photo. These
run without Gradio or a browser; tests/test_demo_browser.py places hints in the real page.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import save_hinted_run
from PIL import Image

from colorcnn.color.hints import HINT_CHANNELS, Hint
from colorcnn.color.spaces import rgb_to_lab
from colorcnn.demo import DemoLimits, DemoService
from colorcnn.demo import service as service_module
from colorcnn.demo.service import MAX_HINTS, ResultView
from colorcnn.errors import ColorcnnError
from colorcnn.inference.hints import read_hints_file
from colorcnn.models import create_model

PALETTE = torch.linspace(0, 0.99, 18).reshape(6, 3)
# A blue whose own lightness (L 50) is the test photo's: at that lightness its chroma lies
# well inside sRGB, so the colourized photo's lightness is exactly the photo's.
HINT_BLUE = "#3a78b8"


def save_hint_following_model(folder: Path) -> Path:
    """A run folder with a small CNN that takes hints and whose every weight is set by hand:
    its chroma is each hint's own around the hint (the pooled cells that hold it) and zero
    elsewhere. Unlike an untrained network, its answer to a hint is known exactly."""
    args = {"num_filters": 4, "in_channels": 1 + HINT_CHANNELS, "out_channels": 2,
            "colour_width": 4}  # fmt: skip
    network = create_model("cnn", **args)
    # Four channels carry a+, a-, b+ and b- of the hints, so that the ReLUs keep them;
    # max pooling spreads them over the pooled cells and the 1x1 head joins the signs again.
    # Batch norm, untrained, passes them through (running mean 0, variance 1).
    signs = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])  # (4, ab)
    convolutions = [network.downconv1[0], network.downconv2[0], network.rfconv[0],
                    network.upconv1[0], network.upconv2[0], network.finalconv]  # fmt: skip
    with torch.no_grad():
        for layer in network.modules():
            if isinstance(layer, torch.nn.Conv2d):
                layer.weight.zero_()
                layer.bias.zero_()
        centre = convolutions[0].kernel_size[0] // 2
        convolutions[0].weight[:, 1:3, centre, centre] = signs  # input 1, 2: hint a, b
        for layer in convolutions[1:]:
            for channel in range(len(signs)):
                layer.weight[channel, channel, centre, centre] = 1.0
        network.head.weight[:, :, 0, 0] = signs.T
    # Decoding leaves the network's answer as it is (no spreading by lightness), so that
    # what the page shows is the network's known answer.
    return save_hinted_run(folder, network, args, PALETTE, propagation={"strength": 0.0})


def in_gamut_photo(folder: Path, width: int = 160, height: int = 120, name: str = "old.png"):
    """A grey photo around L 50 with gentle texture, saved as 8-bit grey."""
    ys, xs = np.mgrid[0:height, 0:width]
    pixels = 119 + 12 * np.sin(xs / 9) * np.cos(ys / 13)
    path = folder / name
    Image.fromarray(pixels.round().astype(np.uint8), "L").save(path)
    return path


def lab(image: Image.Image) -> np.ndarray:
    """(3, H, W) Lab of an 8-bit picture."""
    rgb = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255)
    return rgb_to_lab(rgb.permute(2, 0, 1)[None])[0].numpy()


@pytest.fixture(scope="module")
def hint_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_hint_following_model(tmp_path_factory.mktemp("hint-following"))


@pytest.fixture
def hint_service(hint_run: Path, tmp_path: Path):
    demo = DemoService(str(hint_run), work_dir=tmp_path / "results")
    yield demo
    demo.close()


def test_hints_colour_the_point_and_keep_the_photos_lightness(hint_service, tmp_path: Path):
    upload = in_gamut_photo(tmp_path)
    assert hint_service.takes_hints(hint_service.default_model)
    plain = hint_service.colorize_upload(upload)
    hint = Hint(40, 90, HINT_BLUE)
    hinted = hint_service.colorize_upload(upload, hints=[hint])
    assert hinted.hints == (hint,)
    assert "with cnn (ab-regression, torch) and 1 colour hint in" in hinted.message
    with Image.open(plain.download) as without, Image.open(hinted.download) as with_hint:
        before, after = lab(without), lab(with_hint)
    # The lightness is the photo's with and without hints, up to 8-bit rounding.
    np.testing.assert_allclose(after[0], before[0], atol=1.0)
    assert np.hypot(before[1], before[2]).max() < 1.0  # no hints: this model gives grey
    np.testing.assert_allclose(after[1:, 90, 40], hint.ab().numpy(), atol=2.0)
    assert np.hypot(after[1, 10:30, 120:], after[2, 10:30, 120:]).max() < 1.0  # far off
    shown = lab(hinted.colour)  # the page's picture says the same
    np.testing.assert_allclose(shown[1:, 90, 40], hint.ab().numpy(), atol=2.0)


def test_the_hints_file_is_written_with_the_result_and_reads_back(hint_service, tmp_path):
    upload = in_gamut_photo(tmp_path, name="grandma.png")
    assert hint_service.colorize_upload(upload).hints_file is None  # no hints, no file
    hints = [Hint(3, 4, HINT_BLUE), Hint(150, 100, (200, 60, 40), size=12)]
    result = hint_service.colorize_upload(upload, hints=hints)
    assert result.hints_file == result.download.parent / "grandma.hints.json"
    assert read_hints_file(result.hints_file) == hints


def test_clicks_on_a_picture_shown_smaller_map_to_the_photos_own_pixels(hint_run, tmp_path):
    limits = DemoLimits(display_pixels=4800)  # a 240 x 180 photo is shown at 80 x 60
    demo = DemoService(str(hint_run), limits, work_dir=tmp_path / "results")
    upload = in_gamut_photo(tmp_path, 240, 180)
    view = demo.colorize_upload(upload).view
    assert view.image_size == (240, 180) and view.shown_size == (80, 60)
    # Each shown pixel covers 3 x 3 photo pixels; a click means the middle one.
    assert view.image_pixel(0, 0) == (1, 1)
    assert view.image_pixel(20, 50) == (61, 151)
    assert view.image_pixel(79.9, 59.9) == (239, 179)
    assert view.shown_point(61, 151) == pytest.approx((20, 50))
    for outside in ((-1, 5), (5, -0.5), (80, 5), (5, 60)):
        assert view.image_pixel(*outside) is None
    x, y = view.image_pixel(20, 50)
    result = demo.colorize_upload(upload, hints=[Hint(x, y, HINT_BLUE)])
    with Image.open(result.download) as downloaded:
        full = lab(downloaded)
    np.testing.assert_allclose(full[1:, y, x], Hint(x, y, HINT_BLUE).ab().numpy(), atol=2.0)
    # Where the photo is blue, so is the smaller picture the person clicked on.
    shown = lab(result.colour)
    assert shown[2, 50, 20] < -30 and abs(shown[2, 5, 70]) < 1.0
    # A new point starts at the colour the result has there.
    with Image.open(result.download) as downloaded:
        red, green, blue = downloaded.getpixel((x, y))
    assert demo.colour_at(result.view, x, y) == f"#{red:02x}{green:02x}{blue:02x}"


def test_the_points_are_marked_where_they_are_on_the_shown_picture(hint_run, tmp_path):
    demo = DemoService(str(hint_run), DemoLimits(display_pixels=4800), tmp_path / "results")
    upload = in_gamut_photo(tmp_path, 240, 180)
    hints = [Hint(61, 151, "#c03020"), Hint(200, 30, HINT_BLUE)]
    result = demo.colorize_upload(upload, hints=hints)
    assert demo.mark_hints(result.view, []) == result.view.colour_file  # nothing to mark
    marked_file = demo.mark_hints(result.view, hints, selected=1)
    assert marked_file.parent == result.download.parent and marked_file.name == "hints.jpg"
    with Image.open(marked_file) as marked:
        assert marked.size == (80, 60)
        marked = lab(marked)
    # Each marker's middle is its point's colour; far from the points the result shows.
    for hint in hints:
        shown_x, shown_y = (round(value) for value in result.view.shown_point(hint.x, hint.y))
        np.testing.assert_allclose(marked[1:, shown_y, shown_x], hint.ab().numpy(), atol=4.0)
    np.testing.assert_allclose(marked[:, 30, 40], lab(result.colour)[:, 30, 40], atol=2.0)


def test_a_model_without_hints_refuses_them_in_one_line(tmp_path: Path):
    demo = DemoService("photo-unet", work_dir=tmp_path / "results")
    assert demo.takes_hints("photo") and not demo.takes_hints("photo-unet")
    with pytest.raises(ColorcnnError) as caught:
        demo.colorize_upload(in_gamut_photo(tmp_path), hints=[Hint(3, 4, HINT_BLUE)])
    message = str(caught.value)
    assert "was trained without colour hints" in message and "\n" not in message
    assert list((tmp_path / "results").iterdir()) == []  # refused before anything is written


def test_hints_outside_the_photo_or_too_many_are_refused(hint_service, tmp_path: Path):
    upload = in_gamut_photo(tmp_path, 160, 120)
    with pytest.raises(
        ColorcnnError, match=r"hint at \(160, 7\) is outside the 160x120 px image; expected x"
    ):
        hint_service.colorize_upload(upload, hints=[Hint(160, 7, HINT_BLUE)])
    many = [Hint(index % 160, index // 160, HINT_BLUE) for index in range(MAX_HINTS + 1)]
    with pytest.raises(ColorcnnError, match=f"{MAX_HINTS + 1} colour hints is too many"):
        hint_service.colorize_upload(upload, hints=many)


def test_an_upload_is_decoded_once_for_every_change_of_hints(hint_service, tmp_path, monkeypatch):
    decoded = []
    real_read_image = service_module.read_image

    def counting_read_image(path):
        decoded.append(Path(path).name)
        return real_read_image(path)

    monkeypatch.setattr(service_module, "read_image", counting_read_image)
    upload = in_gamut_photo(tmp_path)
    results = [
        hint_service.colorize_upload(upload, hints=[Hint(10 * step, 50, HINT_BLUE)])
        for step in range(4)
    ]
    assert decoded == ["old.png"]
    # The grey side is the same picture each time: written once, then linked.
    first, *later = (result.shown_files[0] for result in results)
    assert all(path.samefile(first) for path in later)
    in_gamut_photo(tmp_path)  # the same name written again: decoded again
    hint_service.colorize_upload(upload)
    assert decoded == ["old.png", "old.png"]


def test_a_result_no_longer_kept_says_to_colourize_again(hint_service, tmp_path: Path):
    view = hint_service.colorize_upload(in_gamut_photo(tmp_path)).view
    folder = tmp_path / "gone"
    gone = ResultView(folder / "colour.jpg", folder / "old.png", view.image_size, view.shown_size)
    for asking in (
        lambda: hint_service.colour_at(gone, 1, 1),
        lambda: hint_service.mark_hints(gone, [Hint(1, 1, HINT_BLUE)]),
    ):
        with pytest.raises(ColorcnnError, match="no longer kept on the server; colourize"):
            asking()


def test_clicks_are_read_only_as_two_numbers():
    from colorcnn.demo.app import HintPoints, _clicked_pixel

    assert _clicked_pixel([12, 7.5]) == (12.0, 7.5)
    for malformed in (None, [], [1], [1, 2, 3], ["1", 2], [True, 2], {"x": 1}):
        assert _clicked_pixel(malformed) is None
    points = HintPoints("old.png", (Hint(3, 4, "#c03020"), Hint(10.5, 2, HINT_BLUE)), 1)
    assert points.point_choices() == [("1: (3, 4) #c03020", 0), ("2: (10.5, 2) #3a78b8", 1)]
