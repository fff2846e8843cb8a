"""Steady colour in video: per-frame colourizing against chroma smoothed over time.

Usage:
    python benchmarks/video.py --video path/to/bigbuckbunny.mp4 --photos path/to/photos
        [--model photo] [--frames 132] [--clip-frames 48] [--tune]
        [--results docs/results.md] [--json benchmarks/results/video.json]

The protocol:
- A video is made grey with exactly its own Lab lightness, colourized frame by frame by
  `Colorizer.predict_ab` at the model's working size, and the chroma is joined to the
  full-size lightness by `Colorizer.join_chroma`, either as it comes ("per-frame") or after
  `ChromaStabilizer.step` ("stabilized"). Both are scored against the colour original.
- Videos: the first `--frames` frames of bigbuckbunny.mp4 (1280x720; (c) Blender
  Foundation, CC-BY 3.0), and synthetic clips of `--clip-frames` frames at 640x360 cut
  from held-out photos (`split_photos(...).test`, sources no model trained on) by a
  window that pans or zooms smoothly, so that truth and motion are known exactly.
- Measures (colorcnn.evaluation.video): PSNR against the original (mean over frames), CDC,
  warping error along the true video's flow, static-chroma flicker and its excess over
  the true video's own flicker. The acceptance: the flicker excess drops by >= 40 % and
  PSNR falls by <= 0.3 dB.
- Speed: frames per second of decoding + colourizing + stabilizing + joining for the
  1280x720 video, through `colorcnn.inference.video.colorize_video` when it exists
  (decoding and encoding included), otherwise through the steps above on decoded frames.
- `--tune` first tries a grid of stabilizer settings on the synthetic clips and reports
  the per-setting scores; the defaults of `StabilizerSettings` were chosen that way.
"""

from __future__ import annotations

import argparse
import importlib.util
import shlex
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import av
import cv2
import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe_machine, replace_section, save_results  # noqa: E402

from colorcnn.color.spaces import grey_lightness  # noqa: E402
from colorcnn.data.photos import list_photos, split_photos  # noqa: E402
from colorcnn.evaluation import video as steadiness  # noqa: E402
from colorcnn.inference import Colorizer  # noqa: E402
from colorcnn.inference.colorize import working_shape  # noqa: E402
from colorcnn.inference.images import from_array  # noqa: E402
from colorcnn.inference.stabilize import ChromaStabilizer, StabilizerSettings  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RESULTS = REPO_ROOT / "docs" / "results.md"
DEFAULT_JSON = REPO_ROOT / "benchmarks" / "results" / "video.json"
CLIP_SIZE = (640, 360)  # (width, height) of the synthetic clips
# Held-out photos wide enough for a 16:9 window to pan across (names in split_photos.test).
CLIP_PHOTOS = {
    "pan": "gcompris__details__Louvre_2007_02_24_c_background.png",
    "zoom": "gcompris__details__TowerBridgeLondon_background.png",
    "diagonal pan": "gcompris__explore_world_animals__crocodile.png",
}
TUNING_GRID = {"memory": (0.6, 0.75, 0.85, 0.9), "occlusion_lightness": (4.0, 8.0)}
ACCEPT_FLICKER_DROP = 40.0  # %
ACCEPT_PSNR_LOSS = 0.3  # dB


def read_video(path: Path, limit: int) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        frames = []
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == limit:
                break
    return frames


def clip_from_photo(photo: Path, motion: str, count: int) -> list[np.ndarray]:
    """`count` frames (H, W, 3) uint8 of a 16:9 window gliding over the photo."""
    picture = np.asarray(Image.open(photo).convert("RGB"))
    height, width = picture.shape[:2]
    out_width, out_height = CLIP_SIZE
    frames = []
    for step in range(count):
        progress = step / max(count - 1, 1)
        if motion == "zoom":  # window shrinks from 95 % to 75 % of the height, centred
            window_height = height * (0.95 - 0.2 * progress)
            left = (width - window_height * 16 / 9) / 2
            top = (height - window_height) / 2
        else:
            window_height = height * 0.82
            room_x = width - window_height * 16 / 9 - 1
            room_y = height - window_height - 1
            left = room_x * progress
            top = room_y * progress if motion == "diagonal pan" else room_y / 2
        scale = window_height / out_height
        # Output pixel (u, v) shows the photo at (left + s u, top + s v): the motion is exact.
        to_photo = np.array([[scale, 0, left], [0, scale, top]], dtype=np.float64)
        frames.append(
            cv2.warpAffine(
                picture,
                to_photo,
                CLIP_SIZE,
                flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                borderMode=cv2.BORDER_REFLECT,
            )
        )
    return frames


def grey_of(frame: np.ndarray) -> np.ndarray:
    """A grey frame (H, W) uint8 with the colour frame's own Lab lightness."""
    lab = steadiness.lab_of(frame)
    lab[..., 1:] = 0
    rgb = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)
    return np.clip(rgb[..., 0] * 255 + 0.5, 0, 255).astype(np.uint8)


@dataclass
class Predicted:
    """What the network said about each frame of a clip, kept to try many stabilizers."""

    greys: list[np.ndarray]
    lightness: list[torch.Tensor]  # (1, 1, h, w) at the working size
    chroma: list[torch.Tensor]  # (1, 2, h, w)
    seconds_network: float


def small_lightness(grey: np.ndarray, shape: tuple[int, int]) -> torch.Tensor:
    """Lab L (1, 1, h, w) of a grey frame shrunk to the working size as predict_ab does."""
    height, width = shape
    small = Image.fromarray(grey).resize(
        (width, height), Image.Resampling.BICUBIC, reducing_gap=3.0
    )
    pixels = torch.from_numpy(np.asarray(small, dtype=np.float32) / 255)[None, None]
    return grey_lightness(pixels)


def predict(colorizer: Colorizer, frames: list[np.ndarray]) -> Predicted:
    greys = [grey_of(frame) for frame in frames]
    shape = working_shape(*greys[0].shape, colorizer.working_size, colorizer.size_multiple)
    lightness, chroma = [], []
    started = time.perf_counter()
    for grey in greys:
        chroma.append(colorizer.predict_ab(from_array(grey), colorizer.working_size, None))
        lightness.append(small_lightness(grey, shape))
    return Predicted(greys, lightness, chroma, time.perf_counter() - started)


def join_all(colorizer: Colorizer, predicted: Predicted, chroma: list[torch.Tensor]):
    return [
        np.asarray(colorizer.join_chroma(from_array(grey), ab))
        for grey, ab in zip(predicted.greys, chroma, strict=True)
    ]


def stabilized_chroma(predicted: Predicted, **settings) -> tuple[list[torch.Tensor], float]:
    stabilizer = ChromaStabilizer(**settings)
    started = time.perf_counter()
    chroma = [
        stabilizer.step(lightness, ab)
        for lightness, ab in zip(predicted.lightness, predicted.chroma, strict=True)
    ]
    return chroma, (time.perf_counter() - started) / len(chroma)


def mean_psnr(frames: list[np.ndarray], truth: list[np.ndarray]) -> float:
    values = []
    for frame, true in zip(frames, truth, strict=True):
        error = np.mean((frame.astype(np.float64) - true.astype(np.float64)) ** 2)
        values.append(100.0 if error == 0 else 10 * np.log10(255.0**2 / error))
    return float(np.mean(values))


def flickers(frames: list[np.ndarray], flows) -> dict[str, float]:
    return {
        "flicker": steadiness.static_chroma_flicker(frames),
        "warped_flicker": steadiness.static_chroma_flicker(frames, flows=flows),
    }


def score(frames, truth, flows, truth_flicker: dict[str, float]) -> dict[str, float]:
    row = {
        "psnr": mean_psnr(frames, truth),
        "cdc": steadiness.cdc(frames),
        "warping_error": steadiness.warping_error(frames, flows=flows),
        **flickers(frames, flows),
    }
    row["flicker_excess"] = row["flicker"] - truth_flicker["flicker"]
    row["warped_flicker_excess"] = row["warped_flicker"] - truth_flicker["warped_flicker"]
    return row


def evaluate_clip(colorizer: Colorizer, truth: list[np.ndarray], settings: dict) -> dict:
    predicted = predict(colorizer, truth)
    flows = steadiness.truth_flows(truth)
    truth_flicker = flickers(truth, flows)
    own = {
        "cdc": steadiness.cdc(truth),
        "warping_error": steadiness.warping_error(truth, flows=flows),
        **truth_flicker,
    }
    per_frame = score(join_all(colorizer, predicted, predicted.chroma), truth, flows, truth_flicker)
    chroma, stabilizer_seconds = stabilized_chroma(predicted, **settings)
    steady = score(join_all(colorizer, predicted, chroma), truth, flows, truth_flicker)
    return {
        "frames": len(truth),
        "size": f"{truth[0].shape[1]}x{truth[0].shape[0]}",
        "working_size": "x".join(str(s) for s in predicted.chroma[0].shape[-2:]),
        "truth": own,
        "per_frame": per_frame,
        "stabilized": steady,
        "flicker_excess_drop_percent": 100
        * (1 - steady["flicker_excess"] / per_frame["flicker_excess"]),
        "warped_flicker_excess_drop_percent": 100
        * (1 - steady["warped_flicker_excess"] / per_frame["warped_flicker_excess"]),
        "psnr_change_db": steady["psnr"] - per_frame["psnr"],
        "stabilizer_ms_per_frame": 1000 * stabilizer_seconds,
        "network_ms_per_frame": 1000 * predicted.seconds_network / len(truth),
    }


def tune(colorizer: Colorizer, clips: dict[str, list[np.ndarray]]) -> list[dict]:
    """Every setting of TUNING_GRID on every clip: mean drop of the flow-compensated flicker
    excess, and PSNR change."""
    prepared = []
    for truth in clips.values():
        predicted = predict(colorizer, truth)
        flows = steadiness.truth_flows(truth)
        truth_flicker = steadiness.static_chroma_flicker(truth, flows=flows)
        per_frame = join_all(colorizer, predicted, predicted.chroma)
        excess = steadiness.static_chroma_flicker(per_frame, flows=flows) - truth_flicker
        prepared.append(
            (truth, predicted, flows, truth_flicker, excess, mean_psnr(per_frame, truth))
        )
    rows = []
    for memory in TUNING_GRID["memory"]:
        for occlusion in TUNING_GRID["occlusion_lightness"]:
            drops, changes = [], []
            for truth, predicted, flows, truth_flicker, excess, psnr in prepared:
                chroma, _ = stabilized_chroma(
                    predicted, memory=memory, occlusion_lightness=occlusion
                )
                output = join_all(colorizer, predicted, chroma)
                steady = steadiness.static_chroma_flicker(output, flows=flows) - truth_flicker
                drops.append(100 * (1 - steady / excess))
                changes.append(mean_psnr(output, truth) - psnr)
            rows.append(
                {
                    "memory": memory,
                    "occlusion_lightness": occlusion,
                    "flicker_excess_drop_percent": float(np.mean(drops)),
                    "worst_drop_percent": float(np.min(drops)),
                    "psnr_change_db": float(np.mean(changes)),
                    "worst_psnr_change_db": float(np.min(changes)),
                }
            )
            print(rows[-1], flush=True)
    return rows


def measure_speed(colorizer: Colorizer, video: Path, frames: int, settings: dict) -> dict:
    """Frames per second at the video's size: decode, grey, colourize, stabilize, join."""
    if importlib.util.find_spec("colorcnn.inference.video") is not None:
        from colorcnn.inference.video import colorize_video

        with tempfile.TemporaryDirectory() as folder:
            target = Path(folder) / "out.mp4"
            started = time.perf_counter()
            colorize_video(video, target, colorizer, stabilize=True, show_progress=False)
            seconds = time.perf_counter() - started
        with av.open(str(video)) as container:
            count = container.streams.video[0].frames
        return {
            "how": "colorize_video end to end, all frames (decode, colourize, stabilize, "
            "encode H.264, copy audio)",
            "frames_per_second": count / seconds,
        }
    stabilizer = ChromaStabilizer(**settings)
    stages = {"decode": 0.0, "network": 0.0, "stabilizer": 0.0, "join": 0.0}
    count = 0
    shape = None
    with av.open(str(video)) as container:
        clock = time.perf_counter()
        for frame in container.decode(video=0):
            grey = frame.to_ndarray(format="gray")  # the decoder's own luma plane
            now = time.perf_counter()
            stages["decode"] += now - clock
            image = from_array(grey)
            shape = shape or working_shape(
                *grey.shape, colorizer.working_size, colorizer.size_multiple
            )
            ab = colorizer.predict_ab(image, colorizer.working_size, None)
            lightness = small_lightness(grey, shape)
            clock, now = now, time.perf_counter()
            stages["network"] += now - clock
            ab = stabilizer.step(lightness, ab)
            clock, now = now, time.perf_counter()
            stages["stabilizer"] += now - clock
            colorizer.join_chroma(image, ab)
            clock, now = now, time.perf_counter()
            stages["join"] += now - clock
            count += 1
            if count == frames:
                break
    total = sum(stages.values())
    return {
        "how": "own loop on decoded frames (decode to grey, predict_ab, stabilizer, "
        "join_chroma; no encoding): colorize_video did not exist yet",
        "frames_per_second": count / total,
        "ms_per_frame": {k: 1000 * v / count for k, v in stages.items()},
    }


def report(results: dict, command: str) -> str:
    lines = [
        f"Machine: {results['machine']}",
        f"Command: `{command}`",
        f"Model `{results['model']}`; stabilizer settings {results['settings']} (chosen on the "
        "synthetic clips with `--tune`, so the synthetic rows are scored on the clips the "
        "settings were tuned on; bigbuckbunny was not used for tuning).",
        "",
        "| clip | output | PSNR dB | CDC | warping error | flicker (excess) | "
        "warped flicker (excess) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, clip in results["clips"].items():
        truth = clip["truth"]
        lines.append(
            f"| {name} ({clip['size']}, {clip['frames']} frames) | truth | - | "
            f"{truth['cdc']:.5f} | {truth['warping_error']:.5f} | "
            f"{truth['flicker']:.3f} | {truth['warped_flicker']:.3f} |"
        )
        for output in ("per_frame", "stabilized"):
            row = clip[output]
            lines.append(
                f"| | {output.replace('_', '-')} | {row['psnr']:.2f} | "
                f"{row['cdc']:.5f} | {row['warping_error']:.5f} | "
                f"{row['flicker']:.3f} ({row['flicker_excess']:+.3f}) | "
                f"{row['warped_flicker']:.3f} ({row['warped_flicker_excess']:+.3f}) |"
            )
    lines += [
        "",
        "| clip | flicker excess drop | warped flicker excess drop | PSNR change | "
        "stabilizer ms/frame | accepted (warped) |",
        "|---|---|---|---|---|---|",
    ]
    for name, clip in results["clips"].items():
        accepted = (
            clip["warped_flicker_excess_drop_percent"] >= ACCEPT_FLICKER_DROP
            and clip["psnr_change_db"] >= -ACCEPT_PSNR_LOSS
        )
        lines.append(
            f"| {name} | {clip['flicker_excess_drop_percent']:.0f} % | "
            f"{clip['warped_flicker_excess_drop_percent']:.0f} % | "
            f"{clip['psnr_change_db']:+.2f} dB | "
            f"{clip['stabilizer_ms_per_frame']:.1f} | {'yes' if accepted else 'no'} |"
        )
    speed = results["speed"]
    lines += [
        "",
        f"Speed at 1280x720: {speed['frames_per_second']:.1f} frames/s "
        f"({speed['how']}; acceptance >= 8).",
    ]
    if "ms_per_frame" in speed:
        lines.append(
            "ms per frame: "
            + ", ".join(f"{stage} {ms:.1f}" for stage, ms in speed["ms_per_frame"].items())
        )
    if results.get("tuning"):
        lines += [
            "",
            "Tuning on the synthetic clips (mean over clips, worst in brackets):",
            "",
            "| memory | occlusion L | flicker excess drop | PSNR change dB |",
            "|---|---|---|---|",
        ]
        for row in results["tuning"]:
            lines.append(
                f"| {row['memory']} | {row['occlusion_lightness']} | "
                f"{row['flicker_excess_drop_percent']:.0f} % "
                f"({row['worst_drop_percent']:.0f} %) | "
                f"{row['psnr_change_db']:+.3f} ({row['worst_psnr_change_db']:+.3f}) |"
            )
    lines += [
        "",
        "Flicker: mean Lab ab change between consecutive frames where L moved by "
        "< 2; warped flicker: the same after warping along the true video's flow, over "
        "pixels visible in both (in a pan the plain measure counts the truth's own "
        "texture moving past, so the truth can score above a smooth colourizer and the "
        "excess turns negative). Excess: over the true video's own. "
        "Big Buck Bunny (c) copyright 2008, "
        "Blender Foundation, www.bigbuckbunny.org, CC-BY 3.0.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--video", type=Path, required=True, help="bigbuckbunny.mp4")
    parser.add_argument("--photos", type=Path, required=True, help="the photo folder")
    parser.add_argument("--model", default="photo", help="(default: photo)")
    parser.add_argument("--frames", type=int, default=132, help="(default: 132)")
    parser.add_argument("--clip-frames", type=int, default=48, help="(default: 48)")
    parser.add_argument("--tune", action="store_true", help="try TUNING_GRID first")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args(argv)

    machine = describe_machine()
    print(machine, flush=True)
    colorizer = Colorizer.load(args.model)
    test_photos = {path.name: path for path in split_photos(list_photos(args.photos)).test}
    clips = {
        f"{motion} ({CLIP_PHOTOS[motion].split('__')[-1].split('.')[0]})": clip_from_photo(
            test_photos[CLIP_PHOTOS[motion]], motion, args.clip_frames
        )
        for motion in CLIP_PHOTOS
    }
    tuning = tune(colorizer, clips) if args.tune else []
    settings = asdict(StabilizerSettings())
    results = {"machine": machine, "model": args.model, "settings": settings, "clips": {}}
    results["clips"]["bigbuckbunny"] = evaluate_clip(
        colorizer, read_video(args.video, args.frames), settings
    )
    print(results["clips"]["bigbuckbunny"], flush=True)
    for name, truth in clips.items():
        results["clips"][name] = evaluate_clip(colorizer, truth, settings)
        print(name, results["clips"][name], flush=True)
    results["speed"] = measure_speed(colorizer, args.video, args.frames, settings)
    results["tuning"] = tuning
    print(results["speed"], flush=True)
    command = "python benchmarks/video.py --video path/to/bigbuckbunny.mp4 --photos path/to/photos"
    command += f" --model {shlex.quote(args.model)} --frames {args.frames}"
    command += f" --clip-frames {args.clip_frames}" + (" --tune" if args.tune else "")
    text = report(results, command)
    print(text)
    replace_section(args.results, "video", "## Video: steady colour\n\n" + text)
    save_results("video", results, args.json)


if __name__ == "__main__":
    main()
