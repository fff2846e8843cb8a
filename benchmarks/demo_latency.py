"""Latency of the web demo under ten concurrent 1-megapixel requests.

Usage:
    python benchmarks/demo_latency.py [--photos DIR] [--concurrency 1 2] [--requests 10]

For each server setting, `colorcnn serve --concurrency N` starts in its own process on a
free local port, answers one warm-up request, then three requests one after another (the
latency of a lone user), then `--requests` different photos sent at once from as many
client threads through the demo's API (`gradio_client`, the same endpoint the page uses:
upload, colourize, picture for the slider, full-size PNG). Each request is timed from
its upload to its answer, and checked: the full-size result has the photo's size and
colour, and its lightness is that photo's. Photos are the first images of --photos,
made grey and resized to about one megapixel, or smooth made-up pictures without it.
Results go into docs/results.md and benchmarks/results/demo_latency.json.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe_machine, replace_section, save_results  # noqa: E402

from colorcnn.color.spaces import rgb_to_lab  # noqa: E402

MEGAPIXEL = 1_000_000


def _test_photos(folder: Path, source: Path | None, count: int) -> list[Path]:
    photos = []
    originals = sorted(source.glob("*.png"))[:count] if source else []
    for index in range(count):
        if originals:
            with Image.open(originals[index % len(originals)]) as opened:
                grey = opened.convert("L")
        else:
            ys, xs = np.mgrid[0:600, 0:800]
            pixels = 128 + 100 * np.sin(xs / (40 + 5 * index)) * np.cos(ys / (60 + 3 * index))
            grey = Image.fromarray(pixels.astype(np.uint8), "L")
        scale = (MEGAPIXEL / (grey.width * grey.height)) ** 0.5
        grey = grey.resize((round(grey.width * scale), round(grey.height * scale)))
        path = folder / f"photo{index:02d}.png"
        grey.save(path)
        photos.append(path)
    return photos


def _lightness(image: Image.Image) -> np.ndarray:
    rgb = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255)
    return rgb_to_lab(rgb.permute(2, 0, 1)[None])[0].numpy()


def _check(photo: Path, answer) -> bool:
    _, message, download = answer
    with Image.open(photo) as grey, Image.open(download["value"]) as result:
        lab = _lightness(result)
        same_light = np.abs(lab[0] - _lightness(grey)[0]).mean() < 1.0
        coloured = float(np.hypot(lab[1], lab[2]).mean()) > 3.0
        return result.size == grey.size and same_light and coloured and photo.name in message


def start_server(log: Path, *options: str) -> tuple[subprocess.Popen, str]:
    """`colorcnn serve` with `options` on a free local port, once its page answers; its
    output goes to `log`."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with open(log, "w") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "colorcnn", "serve", "--port", str(port), *options],
            stdout=output, stderr=subprocess.STDOUT,
            env={**os.environ, "GRADIO_TEMP_DIR": str(log.parent / "gradio")},
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    for _ in range(240):
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return server, url
        except OSError:
            if server.poll() is not None:
                break
            time.sleep(0.5)
    server.kill()
    raise SystemExit(f"colorcnn serve did not start:\n{log.read_text()}")


def measure(concurrency: int, photos: list[Path], work: Path) -> dict:
    from gradio_client import Client, handle_file

    server, url = start_server(work / f"serve-{concurrency}.log", "--concurrency", str(concurrency))
    try:
        client = Client(url, verbose=False, download_files=str(work / f"answers-{concurrency}"))

        def request(photo: Path):
            return client.predict(handle_file(str(photo)), "photo", 0.38, 128, api_name="/colorize")

        request(photos[0])  # warm-up: first-call allocations
        alone = []
        for photo in photos[:3]:
            start = time.perf_counter()
            request(photo)
            alone.append(time.perf_counter() - start)

        latencies: dict[int, float] = {}
        answers: dict[int, object] = {}
        barrier = threading.Barrier(len(photos))

        def one(index: int) -> None:
            barrier.wait()  # all requests leave together
            start = time.perf_counter()
            answers[index] = request(photos[index])
            latencies[index] = time.perf_counter() - start

        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(photos))]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - start
        correct = sum(_check(photos[i], answers[i]) for i in answers)
    finally:
        server.terminate()
        server.wait(timeout=30)
    ordered = sorted(latencies.values())
    return {
        "concurrency": concurrency,
        "alone_median_s": statistics.median(alone),
        "requests": len(photos),
        "correct": correct,
        "min_s": ordered[0],
        "median_s": statistics.median(ordered),
        "p90_s": ordered[int(0.9 * (len(ordered) - 1))],
        "max_s": ordered[-1],
        "wall_s": wall,
        "per_second": len(photos) / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--photos", type=Path, help="folder of colour photos (PNG)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--results", default=str(Path(__file__).parent.parent / "docs/results.md"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        photos = _test_photos(work, args.photos, args.requests)
        sizes = set()
        for photo in photos:
            with Image.open(photo) as opened:
                sizes.add(opened.size)
        rows = [measure(concurrency, photos, work) for concurrency in args.concurrency]

    machine = describe_machine()
    source = "photos" if args.photos else "made-up pictures"
    lines = [
        f"Machine: {machine}. {args.requests} different grey {source} of about 1 MP "
        f"({min(w * h for w, h in sizes) / 1e6:.2f}-{max(w * h for w, h in sizes) / 1e6:.2f} MP), "
        "model `photo`, sent at once through the demo's API; latency from upload to answer "
        "(`python benchmarks/demo_latency.py --photos path/to/photos`).",
        "",
        "| server --concurrency | one request alone | all correct | min | median | 90% | max "
        "| all done | requests/s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['concurrency']} | {row['alone_median_s']:.2f} s "
            f"| {row['correct']}/{row['requests']} | {row['min_s']:.2f} s "
            f"| {row['median_s']:.2f} s | {row['p90_s']:.2f} s | {row['max_s']:.2f} s "
            f"| {row['wall_s']:.2f} s | {row['per_second']:.2f} |"
        )
    print("\n".join(lines))
    replace_section(Path(args.results), "demo-latency", "\n".join(lines))
    save_results("demo_latency", {"machine": machine, "rows": rows})


if __name__ == "__main__":
    main()
