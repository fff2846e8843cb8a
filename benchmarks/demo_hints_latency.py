"""How soon the web demo's result follows a change of colour hints, for a 1 MP photo.

Usage:
    python benchmarks/demo_hints_latency.py [--photo PHOTO] [--changes 10] [--no-browser]

It times the shipped `photo` model, which takes hints (spreading them by lightness when
decoding included). Two numbers per change (a point added, or its colour changed):

- service: the server's work, in-process: colourizing the decoded upload again with the
  hints, writing the result and the page's pictures, and marking the points;
- page: in headless Chromium (Playwright, /usr/bin/chromium), from the click or the new
  colour to the marked picture shown anew, through `colorcnn serve`.

Prints the medians and the slowest, with the machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe_machine  # noqa: E402
from demo_latency import start_server  # noqa: E402

from colorcnn.color.hints import Hint  # noqa: E402
from colorcnn.demo import DemoService  # noqa: E402

MEGAPIXEL = 1_000_000
CHROMIUM = os.environ.get("COLORCNN_CHROMIUM", "/usr/bin/chromium")
COLOURS = ["#3a78b8", "#c03020", "#40a040", "#d0a020", "#8040a0"]


def one_megapixel_photo(folder: Path, source: Path | None) -> Path:
    if source is not None:
        with Image.open(source) as opened:
            grey = opened.convert("L")
    else:
        ys, xs = np.mgrid[0:600, 0:800]
        pixels = 128 + 100 * np.sin(xs / 40) * np.cos(ys / 60)
        grey = Image.fromarray(pixels.astype(np.uint8), "L")
    scale = (MEGAPIXEL / (grey.width * grey.height)) ** 0.5
    grey = grey.resize((round(grey.width * scale), round(grey.height * scale)))
    path = folder / "photo.png"
    grey.save(path)
    return path


def places(width: int, height: int, count: int) -> list[tuple[int, int]]:
    rng = np.random.default_rng(0)
    return [(int(rng.integers(width)), int(rng.integers(height))) for _ in range(count)]


def time_service(model: str, photo: Path, changes: int, work: Path) -> list[float]:
    service = DemoService(str(model), work_dir=work / "results")
    try:
        view = service.colorize_upload(photo).view  # decodes and keeps the upload
        hints: list[Hint] = []
        seconds = []
        for index, (x, y) in enumerate(places(*view.image_size, changes)):
            start = time.perf_counter()
            if index % 2 == 0:  # a new point, at the result's own colour there
                hints.append(Hint(x, y, service.colour_at(view, x, y)))
            else:  # the last point's colour changed
                hints[-1] = Hint(hints[-1].x, hints[-1].y, COLOURS[index % len(COLOURS)])
            view = service.colorize_upload(photo, hints=hints).view
            service.mark_hints(view, hints, len(hints) - 1)
            seconds.append(time.perf_counter() - start)
        return seconds
    finally:
        service.close()


def time_page(model: str, photo: Path, changes: int, work: Path) -> list[float]:
    from playwright.sync_api import sync_playwright

    server, url = start_server(work / "serve.log", "--model", str(model))
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--headless", "--no-sandbox"]
            )
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.goto(url)
            page.set_input_files("#upload input[type=file]", str(photo))
            page.get_by_text("Colourized photo.png").wait_for(timeout=120_000)
            page.get_by_role("tab", name="Colour hints").click()
            picture = page.locator("#hint-picture img")
            picture.wait_for(timeout=60_000)

            def shown_anew(action) -> float:
                before = picture.get_attribute("src")
                start = time.perf_counter()
                action()
                page.wait_for_function(
                    "before => { const image = document.querySelector('#hint-picture img');"
                    " return image && image.src !== before && image.complete"
                    " && image.naturalWidth > 0; }",
                    arg=before, timeout=60_000, polling=10,
                )  # fmt: skip
                return time.perf_counter() - start

            seconds = []
            for index, (percent_x, percent_y) in enumerate(places(100, 100, changes)):
                if index % 2 == 0:  # the picture fills its element's box at 1 MP
                    picture.scroll_into_view_if_needed()
                    box = picture.bounding_box()
                    at = {"x": box["width"] * percent_x / 100, "y": box["height"] * percent_y / 100}
                    seconds.append(shown_anew(lambda at=at: picture.click(position=at)))
                else:
                    page.locator("#hint-colour button.dialog-button").click()
                    field = page.locator("#hint-colour input[type=text]")
                    field.fill(COLOURS[index % len(COLOURS)])
                    seconds.append(shown_anew(lambda field=field: field.press("Enter")))
                    page.mouse.click(5, 5)  # closes the colour picker
                page.wait_for_timeout(300)  # the picker's echo of the new colour settles
            browser.close()
            return seconds
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--photo", type=Path, help="a photo to use (made grey, resized to 1 MP)")
    parser.add_argument("--changes", type=int, default=10)
    parser.add_argument("--no-browser", action="store_true", help="time the service only")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        model = "photo"
        photo = one_megapixel_photo(work, args.photo)
        with Image.open(photo) as opened:
            width, height = opened.size
        rows = {"service": time_service(model, photo, args.changes, work)}
        if not args.no_browser:
            rows["page"] = time_page(model, photo, args.changes, work)

    print(f"Machine: {describe_machine()}")
    print(f"Photo: {width}x{height} px; {args.changes} changes, a new point or a new colour")
    for name, seconds in rows.items():
        print(
            f"{name:8s} median {statistics.median(seconds):.2f} s, fastest {min(seconds):.2f} s, "
            f"slowest {max(seconds):.2f} s"
        )


if __name__ == "__main__":
    main()
