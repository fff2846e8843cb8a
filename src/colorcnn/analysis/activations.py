"""Pictures of what a trained network computes for one image: the input, the truth, the
output, and every channel of every intermediate activation, tiled per layer."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from colorcnn.color.spaces import course_rgb, unit_rgb
from colorcnn.data.datasets import load_course_data
from colorcnn.errors import ColorcnnError, SettingError
from colorcnn.formulations import Formulation
from colorcnn.inference.colorize import working_shape
from colorcnn.inference.images import from_uint8, read_image
from colorcnn.trained import load_model
from colorcnn.training.pictures import save_figure


@dataclass
class ActivationPictures:
    overview: Path
    layers: dict[str, Path]


def _tile_channels(activation: torch.Tensor) -> np.ndarray:
    """(C, H, W) -> one mosaic of C tiles, each scaled to its own range, NaN gutters."""
    channels, height, width = activation.shape
    columns = math.ceil(math.sqrt(channels))
    rows = math.ceil(channels / columns)
    mosaic = np.full((rows * (height + 1) - 1, columns * (width + 1) - 1), np.nan, np.float32)
    for index, channel in enumerate(activation.float().cpu().numpy()):
        low, high = float(channel.min()), float(channel.max())
        scaled = (channel - low) / (high - low) if high > low else np.zeros_like(channel)
        top, left = (index // columns) * (height + 1), (index % columns) * (width + 1)
        mosaic[top : top + height, left : left + width] = scaled
    return mosaic


def _show(axis, picture: np.ndarray, title: str, cmap: str | None = None) -> None:
    axis.imshow(picture, cmap=cmap, interpolation="nearest")
    axis.set_title(title, fontsize=8)
    axis.set_xticks([])
    axis.set_yticks([])


def picture_checkpoint_activations(
    checkpoint: str | Path,
    *,
    image: Path | None = None,
    index: int = 0,
    size: int | None = None,
    data: str | None = None,
    output: Path | None = None,
    cache_dir: Path | None = None,
) -> ActivationPictures:
    """`save_activation_pictures` for a saved network (run folder, checkpoint or shipped
    name) and one image: the validation image at `index` of the run's own data, or the file
    `image`, resized to `size` (the shorter side; default the training images' side). The
    pictures go to `output`, by default RUN/activations/<image> beside a run folder."""
    # Unfolded: every layer as trained, batch norms included, gets its picture.
    trained = load_model(checkpoint, fold=False)
    if trained.runtime != "torch":
        raise ColorcnnError(f"activations need a PyTorch checkpoint, not {checkpoint}")
    network, formulation, info = trained.network, trained.formulation, trained.info
    settings = trained.data_settings(data)
    if image is not None:
        loaded = read_image(image)
        side = size or trained.image_side
        height, width = working_shape(loaded.height, loaded.width, side, trained.size_multiple)
        picture = loaded.to_uint8_pil().convert("RGB").resize((width, height))
        rgb, truth_known, label = (
            course_rgb(from_uint8(picture)),
            loaded.was_colour,
            Path(image).stem,
        )
    else:
        test_rgb = load_course_data(settings, cache_dir).test_rgb
        if index >= len(test_rgb):
            raise SettingError(
                f"`index` {index} is out of range; the validation set has {len(test_rgb)} images"
            )
        rgb, truth_known, label = test_rgb[index : index + 1], True, f"index_{index}"
    if output is None:
        run_folder = Path(checkpoint)
        output = (
            run_folder / "activations" if run_folder.is_dir() else Path("activations")
        ) / label
    title = f"{info['model']} ({formulation.name}), {label}"
    return save_activation_pictures(network, formulation, rgb, output, title, truth_known)


@torch.inference_mode()
def save_activation_pictures(
    model: torch.nn.Module,
    formulation: Formulation,
    rgb: torch.Tensor,
    out_dir: Path,
    title: str,
    truth_known: bool = True,
) -> ActivationPictures:
    """`rgb` is one course-scale image (1, 3, H, W). Writes `overview.png` and one
    `layer_<name>.png` per activation into `out_dir`."""
    if rgb.ndim != 4 or rgb.shape[:2] != (1, 3):
        raise ColorcnnError(f"expected one RGB image (1, 3, H, W), got {tuple(rgb.shape)}")
    multiple = getattr(model, "size_multiple", 1)
    if rgb.shape[-1] % multiple or rgb.shape[-2] % multiple:
        raise ColorcnnError(
            f"this network needs image sides that are multiples of {multiple}, "
            f"got {rgb.shape[-2]}x{rgb.shape[-1]}"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.eval()
    inputs = formulation.inputs(rgb)
    activations = model.forward_activations(inputs)
    prediction = formulation.predict_rgb(activations["output"], inputs)
    layers = {key: value for key, value in activations.items() if key != "output"}

    written: dict[str, Path] = {}
    for key, activation in layers.items():
        figure = Figure(figsize=(8, 8))
        axis = figure.subplots()
        channels, height, width = activation.shape[1:]
        _show(axis, _tile_channels(activation[0]), f"{title}: {key}, {channels} channels of "
              f"{height}x{width}", cmap="viridis")  # fmt: skip
        written[key] = out_dir / f"layer_{key}.png"
        save_figure(figure, written[key])

    pictures = [("grey input", inputs[0, 0].cpu().numpy(), "gray")]
    if truth_known:
        pictures.append(("ground truth", unit_rgb(rgb)[0].permute(1, 2, 0).cpu().numpy(), None))
    pictures.append(("output", prediction[0].permute(1, 2, 0).clamp(0, 1).cpu().numpy(), None))
    for key, activation in layers.items():
        mean_map = activation[0].abs().mean(dim=0).cpu().numpy()
        pictures.append((f"{key}: mean |a|, {activation.shape[1]} ch", mean_map, "magma"))
    columns = min(len(pictures), 5)
    rows = math.ceil(len(pictures) / columns)
    figure = Figure(figsize=(2.4 * columns, 2.5 * rows))
    axes = figure.subplots(rows, columns, squeeze=False)
    for axis, (label, picture, cmap) in zip(axes.flat, pictures, strict=False):
        _show(axis, picture, label, cmap)
    for axis in list(axes.flat)[len(pictures) :]:
        axis.axis("off")
    figure.suptitle(title, fontsize=10)
    overview = out_dir / "overview.png"
    save_figure(figure, overview)
    return ActivationPictures(overview, written)
