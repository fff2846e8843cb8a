"""The shipped upscalers on held-out photos: quality against bicubic, speed, a crop picture,
and the order of colourizing and upscaling (`python benchmarks/superres.py --shipped`)."""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from _machine import cpu_model, describe_machine, replace_section, save_results
from PIL import Image, ImageDraw

from colorcnn.data.folders import open_rgb
from colorcnn.data.photos import list_photos, split_photos
from colorcnn.evaluation import metrics
from colorcnn.formulations.superres import bicubic_up, grey_picture, luma, shrink
from colorcnn.inference.colorize import Colorizer
from colorcnn.inference.images import from_uint8, load_any, to_uint8
from colorcnn.superres.upscale import Upscaler

REPO_ROOT = Path(__file__).resolve().parent.parent
PICTURE = REPO_ROOT / "docs" / "images" / "upscale_crops.png"
SIDE_MULTIPLE = 4  # every photo is cropped to this, so that x2 and x4 score the same pixels
SPEED_OUTPUT_SIDE = 1000  # 1 megapixel results
SPEED_REPEATS = 5
WORST_SHOWN = 3
CROP_SIDE = 72  # full-size pixels of the picture's crops, shown 3 times larger
CROP_ZOOM = 3


def truth_of(path: Path) -> torch.Tensor:
    """The photo as RGB in [0, 1] (1, 3, H, W), sides cut down to multiples of 4."""
    picture = from_uint8(open_rgb(path))
    height, width = picture.shape[-2:]
    return picture[..., : height - height % SIDE_MULTIPLE, : width - width % SIDE_MULTIPLE]


def eight_bit(rgb: torch.Tensor) -> torch.Tensor:
    """RGB as it would be saved: rounded to 8 bits, back in [0, 1]."""
    return (rgb.clamp(0, 1) * 255).round() / 255


def scores(picture: torch.Tensor, truth: torch.Tensor, border: int) -> dict[str, float]:
    """PSNR and SSIM on Y and on RGB, `border` pixels cropped on every side."""
    inner = (..., slice(border, -border), slice(border, -border))
    picture, truth = picture[inner], truth[inner]
    y_picture, y_truth = grey_picture(luma(picture)), grey_picture(luma(truth))
    return {
        "y_psnr": float(metrics.psnr_per_image(y_picture, y_truth)[0]),
        "y_ssim": float(metrics.ssim_per_image(y_picture, y_truth)[0]),
        "rgb_psnr": float(metrics.psnr_per_image(picture, truth)[0]),
        "rgb_ssim": float(metrics.ssim_per_image(picture, truth)[0]),
    }


def quality(upscaler: Upscaler, photos: list[Path]) -> dict:
    """Per photo and on average: the model's scores, bicubic's, and the gains."""
    scale = upscaler.scale
    per_photo = []
    for path in photos:
        truth = truth_of(path)
        small = shrink(truth, scale)  # (1, 3, H/scale, W/scale), 8-bit values
        ours = from_uint8(upscaler.upscale(to_uint8(small[0])))
        bicubic = eight_bit(bicubic_up(small, scale))
        model_scores, bicubic_scores = scores(ours, truth, scale), scores(bicubic, truth, scale)
        row = {"photo": path.name, "model": model_scores, "bicubic": bicubic_scores}
        row["gain"] = {key: model_scores[key] - bicubic_scores[key] for key in model_scores}
        per_photo.append(row)
    mean = {
        side: {
            key: statistics.fmean(row[side][key] for row in per_photo) for key in per_photo[0][side]
        }
        for side in ("model", "bicubic", "gain")
    }
    worst = sorted(per_photo, key=lambda row: row["gain"]["y_psnr"])[:WORST_SHOWN]
    below = sum(row["gain"]["y_psnr"] < 0 for row in per_photo)
    return {"photos": len(per_photo), "mean": mean, "worst": worst, "below_bicubic": below,
            "per_photo": per_photo}  # fmt: skip


def speed(upscaler: Upscaler, photo: Path) -> dict:
    """Seconds for a 1-megapixel result from a photo shrunk to 1000 / scale px square,
    reading and writing nothing: the median of SPEED_REPEATS after one warm-up."""
    side = SPEED_OUTPUT_SIDE // upscaler.scale
    small = np.asarray(open_rgb(photo).resize((side, side), Image.Resampling.BICUBIC))
    loaded = load_any(small)
    upscaler.upscale_loaded(loaded)
    times = []
    for _ in range(SPEED_REPEATS):
        started = time.perf_counter()
        upscaler.upscale_loaded(loaded)
        times.append(time.perf_counter() - started)
    return {"input": f"{side}x{side}", "output": f"{side * upscaler.scale}x"
            f"{side * upscaler.scale}", "seconds": statistics.median(times),
            "threads": torch.get_num_threads()}  # fmt: skip


def detailed_crop(truth: torch.Tensor, side: int) -> tuple[int, int]:
    """Top-left corner of the square of `side` px with the most detail (Y variance)."""
    y = luma(truth)[0, 0]
    best, corner = -1.0, (0, 0)
    for top in range(0, y.shape[0] - side + 1, side // 2):
        for left in range(0, y.shape[1] - side + 1, side // 2):
            variance = float(y[top : top + side, left : left + side].var())
            if variance > best:
                best, corner = variance, (top, left)
    return corner


def crop_picture(upscalers: list[Upscaler], photo: Path, target: Path) -> None:
    """For each upscaler a row: bicubic, the model, the truth, of the photo's most
    detailed square, enlarged CROP_ZOOM times by nearest neighbour."""
    truth = truth_of(photo)
    top, left = detailed_crop(truth, CROP_SIDE)
    shown = CROP_SIDE * CROP_ZOOM
    label_height = 16
    sheet = Image.new("RGB", (3 * shown + 4, len(upscalers) * (shown + label_height)), "white")
    draw = ImageDraw.Draw(sheet)
    for row, upscaler in enumerate(upscalers):
        scale = upscaler.scale
        small = shrink(truth, scale)
        pictures = {
            f"bicubic x{scale}": eight_bit(bicubic_up(small, scale)),
            f"upscale-x{scale}": from_uint8(upscaler.upscale(to_uint8(small[0]))),
            "truth": truth,
        }
        y = row * (shown + label_height)
        for column, (label, picture) in enumerate(pictures.items()):
            crop = picture[0, :, top : top + CROP_SIDE, left : left + CROP_SIDE]
            enlarged = Image.fromarray(to_uint8(crop)).resize((shown, shown), Image.NEAREST)
            x = column * (shown + 2)
            sheet.paste(enlarged, (x, y + label_height))
            draw.text((x + 2, y + 2), label, fill="black")
    target.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(target)


def order_of_colourizing_and_upscaling(
    colorizer: Colorizer, upscaler: Upscaler, photos: list[Path]
) -> dict:
    """A colour photo's shrunk grey copy is the input; colourize then upscale, or upscale
    then colourize, and score both against the colour photo (RGB, border cropped)."""
    scale = upscaler.scale
    totals: dict[str, list[dict]] = {"colourize, then upscale": [], "upscale, then colourize": []}
    for path in photos:
        truth = truth_of(path)
        grey = to_uint8(grey_picture(luma(shrink(truth, scale)))[0])[..., 0]  # (h, w) 8-bit
        coloured_small = colorizer.colorize(grey)
        first_colour = from_uint8(upscaler.upscale(coloured_small))
        first_upscale = from_uint8(colorizer.colorize(upscaler.upscale(grey).convert("L")))
        totals["colourize, then upscale"].append(scores(first_colour, truth, scale))
        totals["upscale, then colourize"].append(scores(first_upscale, truth, scale))
    return {
        order: {key: statistics.fmean(row[key] for row in rows) for key in rows[0]}
        for order, rows in totals.items()
    }


def benchmark_shipped(
    photos_folder: Path, names: list[str], colorizer_name: str, results: Path
) -> None:
    load = os.getloadavg()
    split = split_photos(list_photos(photos_folder))
    photos = split.test
    upscalers = [Upscaler.load(name) for name in names]
    colorizer = Colorizer.load(colorizer_name, precision="fp32")
    rows = []
    for name, upscaler in zip(names, upscalers, strict=True):
        row = {"name": name, "scale": upscaler.scale, "model": upscaler.name,
               "precision": upscaler.precision}  # fmt: skip
        row["quality"] = quality(upscaler, photos)
        row["speed"] = speed(upscaler, photos[0])
        row["order"] = order_of_colourizing_and_upscaling(colorizer, upscaler, photos)
        rows.append(row)
        mean = row["quality"]["mean"]
        print(
            f"{name}: Y PSNR {mean['model']['y_psnr']:.2f} dB against bicubic "
            f"{mean['bicubic']['y_psnr']:.2f} ({mean['gain']['y_psnr']:+.2f} dB); "
            f"{row['speed']['output']} in {row['speed']['seconds']:.2f} s",
            flush=True,
        )
    # The photo of median x4 gain, so that the picture shows a typical result, not the best.
    by_gain = sorted(rows[-1]["quality"]["per_photo"], key=lambda row: row["gain"]["y_psnr"])
    picture_photo = photos_folder / by_gain[len(by_gain) // 2]["photo"]
    crop_picture(upscalers, picture_photo, PICTURE)
    payload = {
        "machine": describe_machine(), "cpu": cpu_model(), "load_average_at_start": load,
        "split": "test", "sources_photos": len(photos), "picture_photo": picture_photo.name,
        "rows": rows,
    }  # fmt: skip
    save_results("superres_shipped", payload)
    replace_section(results, "superres-shipped", _markdown(payload))
    print(_markdown(payload))


def _markdown(payload: dict) -> str:
    rows = payload["rows"]
    lines = [
        "## The shipped upscalers",
        "",
        f"Machine: {payload['machine']}; load average at the start "
        f"{payload['load_average_at_start'][0]:.1f}.",
        "",
        "Command: `python benchmarks/superres.py --shipped --photos path/to/photos`",
        "",
        f"Every photo of the held-out test sources ({payload['sources_photos']} photos, "
        "never trained on nor used to pick a checkpoint), its sides cut to multiples of 4, "
        "shrunk by bicubic interpolation with antialiasing to 8-bit (the training's "
        "degradation), then upscaled back. Scored against the photo with `scale` pixels of "
        "border cropped: on Y (kornia's full-range YCbCr, 0.299 R + 0.587 G + 0.114 B) and "
        "on RGB. Means over the photos; gains are over bicubic (torch's, a = -0.75).",
        "",
        "| model | scale | Y PSNR dB | bicubic | gain | Y SSIM | bicubic | RGB PSNR dB | "
        "bicubic | gain | photos below bicubic | 1 MP result s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        mean, quality = row["quality"]["mean"], row["quality"]
        model, bicubic, gain = mean["model"], mean["bicubic"], mean["gain"]
        lines.append(
            f"| {row['name']} | x{row['scale']} | {model['y_psnr']:.2f} | "
            f"{bicubic['y_psnr']:.2f} | **{gain['y_psnr']:+.2f}** | {model['y_ssim']:.4f} | "
            f"{bicubic['y_ssim']:.4f} | {model['rgb_psnr']:.2f} | {bicubic['rgb_psnr']:.2f} | "
            f"{gain['rgb_psnr']:+.2f} | {quality['below_bicubic']} of {quality['photos']} | "
            f"{row['speed']['seconds']:.2f} ({row['speed']['input']} -> "
            f"{row['speed']['output']}) |"
        )
    lines += ["", "The photos that gain least (Y PSNR gain, dB):", ""]
    for row in rows:
        worst = ", ".join(
            f"{item['photo']} {item['gain']['y_psnr']:+.2f}" for item in row["quality"]["worst"]
        )
        lines.append(f"- {row['name']}: {worst}")
    lines += [
        "",
        f"Speed: the median of {SPEED_REPEATS} runs of the whole upscaling (colour "
        f"conversion, tiles, network, 8-bit result) on {payload['cpu']}, "
        f"{rows[0]['speed']['threads']} threads; the networks in {rows[0]['precision']} "
        "(`--precision auto` here).",
        "",
        "Colourizing and upscaling in one go: the photo's shrunk grey copy is the input, the "
        "colour photo the truth (RGB, border cropped), colourized by the shipped `photo`:",
        "",
        "| scale | order | RGB PSNR dB | RGB SSIM |",
        "|---|---|---|---|",
    ]
    for row in rows:
        for order, values in row["order"].items():
            lines.append(
                f"| x{row['scale']} | {order} | {values['rgb_psnr']:.2f} | "
                f"{values['rgb_ssim']:.4f} |"
            )
    lines += [
        "",
        f"The most detailed {CROP_SIDE} px square of {payload['picture_photo']}, the photo "
        f"of median x4 gain, shown {CROP_ZOOM} times larger:",
        "",
        f"![bicubic, the shipped upscaler and the truth, on {payload['picture_photo']}]"
        f"(images/{PICTURE.name})",
    ]
    return "\n".join(lines)
