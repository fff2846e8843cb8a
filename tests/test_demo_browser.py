"""The web demo end to end: `colorcnn serve` in a subprocess, driven by a real headless
Chromium through Playwright, and by ten concurrent API clients. A second server runs a
small model that takes colour hints (tests/test_demo_hints.py), to place them in the page.

Needs the demo extra (Gradio), Playwright's Python package and a Chromium on the machine
(Debian: `apt-get install chromium`; Playwright never downloads a browser here). Without
them these tests skip, saying what is missing, unless COLORCNN_REQUIRE_BROWSER=1 (set by
.ci/run), which turns the skip into a failure. The screenshot goes to COLORCNN_ARTIFACTS
(default: test-artifacts/ in the repository); README's docs/images/demo.png is a copy.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import start_demo_server
from PIL import Image
from test_demo_hints import HINT_BLUE, in_gamut_photo, lab, save_hint_following_model
from test_demo_video import write_clip

from colorcnn.color.hints import Hint
from colorcnn.color.spaces import rgb_to_lab
from colorcnn.inference.colorize import sample_photos
from colorcnn.inference.hints import read_hints_file

REPOSITORY = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("COLORCNN_ARTIFACTS", REPOSITORY / "test-artifacts"))
CHROMIUM = os.environ.get("COLORCNN_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# The background-networking flags keep Chromium from calling home: the test machine has no
# network beyond localhost, and the demo must not need one.
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-domain-reliability", "--metrics-recording-only",
]  # fmt: skip
REQUIRED = os.environ.get("COLORCNN_REQUIRE_BROWSER") == "1"
# The server under test runs with tighter limits than the defaults, so that the refusals
# are tested with small files.
UPLOAD_LIMIT_MB = 2
PIXEL_LIMIT = 3_000_000


def _missing(what: str) -> None:
    if REQUIRED:
        pytest.fail(f"COLORCNN_REQUIRE_BROWSER=1 but {what}")
    pytest.skip(what)


def _need_gradio() -> None:
    try:
        import gradio  # noqa: F401
        import gradio_client  # noqa: F401
    except ImportError:
        _missing("Gradio is not installed (pip install -e '.[demo]')")


def _need_browser() -> None:
    _need_gradio()
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _missing("Playwright is not installed (pip install playwright)")
    if not Path(CHROMIUM).is_file():
        _missing(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set COLORCNN_CHROMIUM)")


def _serve(folder: Path, *arguments: str) -> Iterator[str]:
    """`colorcnn serve` on a free local port, as a user starts it; its address while it
    runs. It must stop on SIGTERM and leave nothing in its temporary folder."""
    _need_gradio()
    temporary = folder / "tmp"  # the server's own temporary folder, checked at the end
    temporary.mkdir()
    process, url = start_demo_server(folder / "serve.log", *arguments,
                                     env={"TMPDIR": str(temporary)})  # fmt: skip
    yield url
    process.terminate()  # SIGTERM, as a service manager stops it
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail("colorcnn serve did not stop on SIGTERM")
    leftovers = [path.name for path in temporary.glob("colorcnn-demo-*")]
    assert leftovers == [], f"colorcnn serve left {leftovers} behind"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """The demo with its default model, and limits tighter than the defaults."""
    yield from _serve(
        tmp_path_factory.mktemp("serve"),
        "--max-upload-mb", str(UPLOAD_LIMIT_MB), "--max-pixels", str(PIXEL_LIMIT),
    )  # fmt: skip


@pytest.fixture(scope="module")
def hints_server(tmp_path_factory: pytest.TempPathFactory):
    """The demo with a model that takes colour hints (tests/test_demo_hints.py)."""
    model = save_hint_following_model(tmp_path_factory.mktemp("hint-model"))
    yield from _serve(tmp_path_factory.mktemp("serve-hints"), "--model", str(model))


@pytest.fixture(scope="module")
def chromium():
    """Headless Chromium."""
    _need_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


def _open_demo(chromium, server: str) -> Iterator:
    """The demo, freshly loaded in a browser context of its own; every request it makes
    beyond the local server is recorded, and there must be none."""
    context = chromium.new_context(viewport={"width": 1280, "height": 860})
    outside_requests = []
    context.on(
        "request",
        lambda request: (
            None
            if request.url.startswith((server, "data:", "blob:"))
            else outside_requests.append(request.url)
        ),
    )
    page = context.new_page()
    page.goto(server)
    page.wait_for_selector("#upload input[type=file]", state="attached", timeout=60_000)
    yield page
    context.close()
    assert outside_requests == []  # nothing but the local server was asked


@pytest.fixture
def page(chromium, server: str):
    yield from _open_demo(chromium, server)


@pytest.fixture
def hints_page(chromium, hints_server: str):
    yield from _open_demo(chromium, hints_server)


def _chroma(image: Image.Image) -> float:
    rgb = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255)
    lab = rgb_to_lab(rgb.permute(2, 0, 1)[None])[0]
    return float(lab[1:].norm(dim=0).mean())


def _wait_for_status(page, text: str) -> str:
    page.wait_for_function(
        "text => (document.querySelector('#status')?.innerText || '').includes(text)",
        arg=text, timeout=120_000,
    )  # fmt: skip
    return page.inner_text("#status")


def test_an_uploaded_grey_photo_comes_back_in_colour_at_its_size(page, server: str):
    sample = sample_photos()[0]
    with Image.open(sample) as original:
        size, mode = original.size, original.mode
    assert mode == "L"  # the bundled sample is a grey photo
    page.set_input_files("#upload input[type=file]", str(sample))
    status = _wait_for_status(page, "Colourized")
    assert f"Colourized {sample.name} ({size[0]}x{size[1]} px)" in status

    page.wait_for_function(
        "() => { const images = [...document.querySelectorAll('#result img')];"
        " return images.length === 2 && images.every(i => i.complete && i.naturalWidth > 0); }",
        timeout=60_000,
    )
    shown = page.eval_on_selector_all(
        "#result img", "images => images.map(i => [i.src, i.naturalWidth, i.naturalHeight])"
    )
    assert len(shown) == 2
    pictures = []
    for source, width, height in shown:
        assert (width, height) == size
        with urllib.request.urlopen(source) as response:
            pictures.append(Image.open(response).convert("RGB"))
    assert all(picture.size == size for picture in pictures)
    grey_side, colour_side = sorted(pictures, key=_chroma)
    assert _chroma(grey_side) < 1.0 and _chroma(colour_side) > 3.0

    button = page.locator("#download")
    assert button.inner_text().strip() == f"Download {size[0]}x{size[1]} PNG"
    with page.expect_download() as pending:
        button.click()
    downloaded = Path(pending.value.path())
    with Image.open(downloaded) as full:
        assert full.size == size and _chroma(full) > 3.0

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "demo.png"), full_page=True)


def test_a_corrupt_upload_gets_a_friendly_message_in_the_page(page, tmp_path: Path):
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    page.set_input_files("#upload input[type=file]", str(corrupt))
    status = _wait_for_status(page, "Could not colourize")
    assert "corrupt.png could not be read as an image" in status
    assert str(tmp_path) not in status and "/gradio/" not in status
    assert not page.locator("#download").is_visible()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "demo-corrupt.png"), full_page=True)


def test_a_bundled_sample_is_one_click_away(page):
    sample = sample_photos()[0]
    page.locator(".gallery").get_by_text(sample.name).click()
    status = _wait_for_status(page, "Colourized")
    assert f"Colourized {sample.name}" in status and "efficient_unet" in status


def test_choosing_another_model_colourizes_again_with_it(page):
    page.set_input_files("#upload input[type=file]", str(sample_photos()[0]))
    _wait_for_status(page, "efficient_unet")
    temperature = page.locator("#temperature input[type=number]")
    assert temperature.is_disabled()  # the photo model decodes without a temperature
    page.locator("#model input").click()
    page.get_by_role("option", name="cifar-horse-unet", exact=True).click()
    status = _wait_for_status(page, "with unet (palette-rgb")
    assert "Colourized wrasse.jpg" in status
    # The course model learnt from 32 px horses and runs at that size (photo at its own 160).
    page.get_by_text("More settings").click()
    assert page.locator("#size input[type=number]").input_value() == "32"


def _colour_side(page) -> Image.Image:
    page.wait_for_function(
        "() => { const images = [...document.querySelectorAll('#result img')];"
        " return images.length === 2 && images.every(i => i.complete && i.naturalWidth > 0); }",
        timeout=60_000,
    )
    pictures = []
    for source in page.eval_on_selector_all("#result img", "images => images.map(i => i.src)"):
        with urllib.request.urlopen(source) as response:
            pictures.append(Image.open(response).convert("RGB"))
    return max(pictures, key=_chroma)


def test_the_temperature_of_the_vivid_model_changes_the_colours(page):
    page.set_input_files("#upload input[type=file]", str(sample_photos()[0]))
    _wait_for_status(page, "efficient_unet (ab-regression")
    page.locator("#model input").click()
    page.get_by_role("option", name="photo-vivid", exact=True).click()
    _wait_for_status(page, "photo_unet (ab-bins, torch) at temperature 0.38")
    usual = _colour_side(page)
    temperature = page.locator("#temperature input[type=number]")
    assert temperature.is_enabled()
    temperature.fill("0.2")
    temperature.press("Enter")
    page.locator("#run").click()
    _wait_for_status(page, "at temperature 0.2 ")
    cooler = _colour_side(page)
    assert cooler.size == usual.size
    # The page shows what the model gives at that temperature (through JPEG), which
    # differs from what it gave at 0.38.
    from colorcnn.inference import Colorizer

    expected = Colorizer.load("photo-vivid").colorize(sample_photos()[0], 128, 0.2)
    assert abs(_chroma(cooler) - _chroma(expected)) < 0.3
    assert abs(_chroma(cooler) - _chroma(usual)) > 0.5


def test_uploads_over_the_limits_are_refused_in_the_page(page, tmp_path: Path):
    # Too many bytes: refused by the upload itself, before the server stores the file.
    noise = np.random.default_rng(0).integers(0, 256, (1600, 1600), dtype=np.uint8)
    heavy = tmp_path / "heavy.png"
    Image.fromarray(noise).save(heavy)
    assert heavy.stat().st_size > UPLOAD_LIMIT_MB * 1e6
    page.set_input_files("#upload input[type=file]", str(heavy))
    page.get_by_text("exceed the maximum allowed size").wait_for(timeout=30_000)
    # Too many pixels in a small file: refused before it is decoded.
    page.goto(page.url)
    page.wait_for_selector("#upload input[type=file]", state="attached", timeout=60_000)
    wide = tmp_path / "wide.png"
    Image.new("L", (2000, 2000), 128).save(wide)
    page.set_input_files("#upload input[type=file]", str(wide))
    status = _wait_for_status(page, "Could not colourize")
    assert "wide.png is 2000x2000 px (4.0 MP); this demo accepts at most 3.0 MP" in status


def test_a_clip_in_the_video_tab_comes_back_as_a_playable_colour_video(page, tmp_path: Path):
    clip = write_clip(tmp_path / "clip.mp4")  # 12 frames of 64x48 px, 2 s
    page.get_by_role("tab", name="Video", exact=True).click()
    assert page.locator("#video-steady input").is_checked()  # steady colours by default
    page.set_input_files("#video-upload input[type=file]", str(clip))
    page.locator("#video-upload").get_by_text("clip.mp4").wait_for(timeout=30_000)
    page.locator("#video-run").click()
    page.wait_for_function(
        "() => (document.querySelector('#video-status')?.innerText || '').includes('Colourized')",
        timeout=120_000,
    )
    status = page.inner_text("#video-status")
    assert "Colourized clip.mp4 (12 frames, 64x48 px, 2.0 s)" in status, status
    # The browser plays it: it reads the clip's size from the H.264 MP4 the page shows.
    page.wait_for_function(
        "() => { const video = document.querySelector('#video-result video');"
        " return video && video.readyState >= 1 && video.videoWidth === 64; }",
        timeout=60_000,
    )
    assert page.locator("#video-download").inner_text().strip() == "Download 64x48 MP4"


def test_a_photo_in_the_upscale_tab_comes_back_twice_as_large(page, tmp_path: Path):
    photo = tmp_path / "small.png"
    rows = np.linspace(0, 255, 40, dtype=np.uint8)[:, None].repeat(60, axis=1)
    Image.fromarray(np.dstack((rows, rows[::-1], np.full_like(rows, 90)))).save(photo)
    page.get_by_role("tab", name="Upscale", exact=True).click()
    page.locator("#upscale-scale").get_by_text("x2", exact=True).click()
    page.set_input_files("#upscale-upload input[type=file]", str(photo))  # upscales at once
    page.wait_for_function(
        "() => (document.querySelector('#upscale-status')?.innerText || '').includes('x2 to')",
        timeout=120_000,
    )
    status = page.inner_text("#upscale-status")
    assert "Upscaled small.png (60x40 px) x2 to 120x80 px" in status, status
    downloaded = Image.open(_download(page, "#upscale-download"))
    assert downloaded.size == (120, 80) and downloaded.mode == "RGB"
    # Colour stays colour: the picture's own red-to-blue ramp, twice as large.
    pixels = np.asarray(downloaded, dtype=int)
    assert pixels[2, 60, 0] < 60 < pixels[-3, 60, 0]


def test_a_model_without_hints_says_so_in_the_hints_tab(page):
    page.locator(".gallery").get_by_text(sample_photos()[0].name).click()
    _wait_for_status(page, "Colourized")
    page.get_by_role("tab", name="Colour hints").click()
    assert page.locator("#hint-picture").is_visible()  # the default photo model takes hints
    page.locator("#model input").click()
    page.get_by_role("option", name="photo-unet", exact=True).click()
    _wait_for_status(page, "photo_unet (ab-regression")
    note = page.locator("#hint-note")
    note.get_by_text("trained without colour hints").wait_for(timeout=30_000)
    assert not page.locator("#hint-picture").is_visible()


def _download(page, selector: str) -> Path:
    with page.expect_download() as pending:
        page.locator(selector).click()
    return Path(pending.value.path())


def _chosen_point(page) -> tuple[int, int, str]:
    """x, y and colour of the point chosen in the list ("1: (x, y) #rrggbb")."""
    label = page.locator("#hint-points input").input_value()
    match = re.fullmatch(r"\d+: \((\d+), (\d+)\) (#[0-9a-f]{6})", label)
    assert match, f"the chosen point reads {label!r}"
    return int(match[1]), int(match[2]), match[3]


def _click_picture(picture, across: float, down: float) -> None:
    """Click at a fraction of the way across and down the picture as drawn: in the middle
    of its element's box, shrunk to fit but never enlarged (object-fit: scale-down)."""
    picture.scroll_into_view_if_needed()
    box = picture.bounding_box()
    width, height = picture.evaluate("image => [image.naturalWidth, image.naturalHeight]")
    scale = min(box["width"] / width, box["height"] / height, 1.0)
    left, top = (box["width"] - width * scale) / 2, (box["height"] - height * scale) / 2
    picture.click(position={"x": left + width * scale * across, "y": top + height * scale * down})


def test_a_hint_placed_on_the_picture_colours_the_photo_there(hints_page, tmp_path: Path):
    page = hints_page
    photo = in_gamut_photo(tmp_path, 360, 480, "portrait.png")  # narrower than its frame
    page.set_input_files("#upload input[type=file]", str(photo))
    _wait_for_status(page, "Colourized portrait.png (360x480 px) with cnn")
    page.get_by_role("tab", name="Colour hints").click()
    picture = page.locator("#hint-picture img")
    picture.wait_for(timeout=30_000)
    _click_picture(picture, 0.3, 0.6)
    message = _wait_for_status(page, "and 1 colour hint in").splitlines()[-1]
    x, y, start = _chosen_point(page)
    # A click beside the picture, in its frame, places nothing.
    frame, box = page.locator("#hint-picture").bounding_box(), picture.bounding_box()
    assert box["x"] - frame["x"] > 20
    page.locator("#hint-picture").click(position={"x": 10, "y": frame["height"] / 2})
    page.wait_for_timeout(1000)
    assert page.inner_text("#status").endswith(message)  # the one before, above its timer
    assert _chosen_point(page) == (x, y, start)
    # The page shows the photo at its own size, but smaller: the point is in its pixels.
    assert abs(x - 0.3 * 360) <= 2 and abs(y - 0.6 * 480) <= 2
    red, green, blue = (int(start[index : index + 2], 16) for index in (1, 3, 5))
    assert max(red, green, blue) - min(red, green, blue) <= 2  # the model's own: grey here

    page.locator("#hint-colour button.dialog-button").click()
    colour_field = page.locator("#hint-colour input[type=text]")
    colour_field.fill(HINT_BLUE)
    colour_field.press("Enter")
    page.wait_for_function(
        "colour => document.querySelector('#hint-points input').value.endsWith(colour)",
        arg=HINT_BLUE, timeout=30_000,
    )  # fmt: skip
    page.mouse.click(5, 5)  # closes the colour picker
    # With "a click moves the chosen point", the point moves and keeps its colour.
    page.locator("#hint-move input").check()
    _click_picture(picture, 0.7, 0.2)
    page.wait_for_function(
        "place => !document.querySelector('#hint-points input').value.startsWith(place)",
        arg=f"1: ({x}, {y})", timeout=30_000,
    )  # fmt: skip
    old_x, old_y = x, y
    x, y, colour = _chosen_point(page)
    assert colour == HINT_BLUE and abs(x - 0.7 * 360) <= 2 and abs(y - 0.2 * 480) <= 2
    with Image.open(photo) as grey, Image.open(_download(page, "#download")) as result:
        photo_lab, result_lab = lab(grey), lab(result)
    hint_ab = Hint(x, y, HINT_BLUE).ab().numpy()
    np.testing.assert_allclose(result_lab[1:, y, x], hint_ab, atol=2.0)  # blue there
    assert np.hypot(*result_lab[1:, old_y, old_x]) < 1.0  # and grey where it was
    np.testing.assert_allclose(result_lab[0], photo_lab[0], atol=1.0)  # the photo's lightness
    # One point, moved: the hints file holds it where it is now.
    assert read_hints_file(_download(page, "#hints-download")) == [Hint(x, y, HINT_BLUE)]
    # The point is marked on the picture in its colour.
    with urllib.request.urlopen(picture.get_attribute("src")) as response:
        marked = lab(Image.open(response))
    shown_x, shown_y = (round(value * marked.shape[2] / 360) for value in (x, y))
    np.testing.assert_allclose(marked[1:, shown_y, shown_x], hint_ab, atol=4.0)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "demo-hints.png"), full_page=True)

    page.locator("#hint-clear").click()
    page.wait_for_function("() => !document.querySelector('#hint-points input').value")
    assert "colour hint" not in page.inner_text("#status")
    with Image.open(_download(page, "#download")) as result:
        assert np.hypot(*lab(result)[1:]).max() < 1.0


def _megapixel_photos(folder: Path, count: int) -> list[tuple[Path, tuple[int, int]]]:
    """`count` different grey pictures of about one megapixel, each with its own shape."""
    photos = []
    for index in range(count):
        width = 1000 + 24 * index
        height = 1_000_000 // width
        ys, xs = np.mgrid[0:height, 0:width]
        pixels = 128 + 100 * np.sin(xs / (30 + 7 * index)) * np.cos(ys / (45 + 5 * index))
        path = folder / f"photo{index}.png"
        Image.fromarray(pixels.astype(np.uint8), "L").save(path)
        photos.append((path, (width, height)))
    return photos


def _lightness(image: Image.Image) -> np.ndarray:
    rgb = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255)
    return rgb_to_lab(rgb.permute(2, 0, 1)[None])[0, 0].numpy()


@pytest.mark.slow
def test_ten_concurrent_megapixel_requests_all_come_back_right(server: str, tmp_path: Path):
    from gradio_client import Client, handle_file

    photos = _megapixel_photos(tmp_path, 10)
    client = Client(server, verbose=False, download_files=str(tmp_path / "downloads"))

    def request(photo: tuple[Path, tuple[int, int]]):
        path, _ = photo
        return client.predict(handle_file(str(path)), "photo", 0.38, 128, api_name="/colorize")

    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(request, photos))
    for (path, size), (_, message, download) in zip(photos, answers, strict=True):
        assert f"Colourized {path.name} ({size[0]}x{size[1]} px)" in message
        with Image.open(download["value"]) as result, Image.open(path) as grey:
            assert result.size == size and _chroma(result) > 3.0
            # Each answer carries its own photo's lightness, not another request's.
            reference = _lightness(grey)
            assert np.abs(_lightness(result) - reference).mean() < 1.0
