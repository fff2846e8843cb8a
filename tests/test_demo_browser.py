"""The web demo end to end: `colorcnn serve` in a subprocess, driven by a real headless
Chromium through Playwright, and by ten concurrent API clients.

Needs the demo extra (Gradio), Playwright's Python package and a Chromium on the machine
(Debian: `apt-get install chromium`; Playwright never downloads a browser here). Without
them these tests skip, saying what is missing, unless COLORCNN_REQUIRE_BROWSER=1 (set by
.ci/run), which turns the skip into a failure. The screenshot goes to COLORCNN_ARTIFACTS
(default: test-artifacts/ in the repository); README's docs/images/demo.png is a copy.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from colorcnn.color.spaces import rgb_to_lab
from colorcnn.inference.colorize import sample_photos

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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """`colorcnn serve` on a free local port, as a user starts it."""
    _need_gradio()
    port = _free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    temporary = log.parent / "tmp"  # the server's own temporary folder, checked at the end
    temporary.mkdir()
    env = {**os.environ, "GRADIO_TEMP_DIR": str(log.parent / "gradio"), "TMPDIR": str(temporary)}
    with open(log, "w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "colorcnn", "serve", "--port", str(port),
             "--max-upload-mb", str(UPLOAD_LIMIT_MB), "--max-pixels", str(PIXEL_LIMIT)],
            stdout=output, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"colorcnn serve did not start:\n{log.read_text()}")
            time.sleep(0.5)
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
def browser(server: str):
    """Headless Chromium; every request it makes beyond the local server is recorded."""
    _need_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        context = chromium.new_context(viewport={"width": 1280, "height": 860})
        context.outside_requests = []
        context.on(
            "request",
            lambda request: (
                None
                if request.url.startswith((server, "data:", "blob:"))
                else context.outside_requests.append(request.url)
            ),
        )
        yield context
        chromium.close()


@pytest.fixture
def page(browser, server: str):
    """The demo, freshly loaded."""
    page = browser.new_page()
    page.goto(server)
    page.wait_for_selector("#upload input[type=file]", state="attached", timeout=60_000)
    yield page
    page.close()
    assert browser.outside_requests == []  # nothing but the local server was asked


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
