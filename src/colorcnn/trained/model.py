"""A trained model, ready to use: `load_model` reads a shipped name, a run folder, a
checkpoint or an exported .onnx file, and returns the network with everything needed to
use it (its formulation, its description, the image sizes it knows)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from colorcnn.color.palette import check_palette
from colorcnn.data.cifar import IMAGE_SIDE as CIFAR_SIDE
from colorcnn.data.datasets import DataSettings
from colorcnn.errors import ColorcnnError, SettingError
from colorcnn.formulations import Formulation, formulation_from_description
from colorcnn.models import create_model
from colorcnn.models.folding import fold_batch_norm
from colorcnn.runtime import resolve_device
from colorcnn.trained.checkpoint import build_model, load_checkpoint, resolve_checkpoint
from colorcnn.trained.onnx_runtime import OnnxModel

# Shorter side, in pixels, at which a model runs on photos when it stores none: 128 scored
# best on held-out photos for PhotoUNet models (docs/results.md), which learnt from 128 px
# crops. Shipped weights store the size chosen for them (`working_size`).
DEFAULT_WORKING_SIZE = 128
# Models trained on 32 px CIFAR-10 images run at their own scale by default: on the same
# held-out photos the course UNet scores 22.06 dB at 32 px against 21.79 at 128 (CNN 21.56
# against 21.02), and its SSIM is higher too (docs/results.md).
CIFAR_WORKING_SIZE = CIFAR_SIDE


def trained_image_side(data: DataSettings) -> int:
    """The side of the square images a model with these data settings learnt from."""
    return CIFAR_SIDE if data.dataset == "cifar10" else data.crop_size


def default_working_size(data: DataSettings) -> int:
    """The shorter side at which a model trained on `data` colourizes photos by default."""
    return CIFAR_WORKING_SIZE if data.dataset == "cifar10" else DEFAULT_WORKING_SIZE


@dataclass
class TrainedModel:
    """A trained network and what using it needs; build it with `load_model`."""

    network: torch.nn.Module | OnnxModel  # in eval mode; batch norm folded unless asked
    formulation: Formulation  # what the network predicts and how it becomes a picture
    info: dict  # the checkpoint's description (model, arguments, palette, data, metrics)
    source: Path  # the file it was read from
    runtime: str  # "torch" or "onnx"
    size_multiple: int  # the network's input sides must be multiples of this
    image_side: int  # the side of the square images it learnt from
    working_size: int  # the shorter side it colourizes photos at unless told otherwise

    @property
    def architecture(self) -> str:
        return self.info["model"]

    @property
    def task(self) -> str:
        """ "colorize" or "superres"."""
        return self.formulation.task

    @property
    def name(self) -> str:
        """The architecture, its formulation and its runtime, for messages."""
        return f"{self.architecture} ({self.formulation.name}, {self.runtime})"

    @property
    def palette(self) -> torch.Tensor:
        return self.formulation.palette

    @property
    def device(self) -> torch.device:
        """Where the network computes (ONNX Runtime: the CPU)."""
        return self.palette.device

    def data_settings(self, data: str | None = None, cifar_data: str | None = None):
        """The data settings the model was trained with; `data` (and, for photos+cifar10,
        `cifar_data`) override where the images are read from."""
        return _data_settings(self.info, self.source, data, cifar_data)


def _data_settings(
    info: dict, source: Path, data: str | None = None, cifar_data: str | None = None
) -> DataSettings:
    try:
        settings = DataSettings.from_dict(info.get("data", {}))
    except (TypeError, ValueError, AttributeError) as error:
        raise ColorcnnError(
            f"{source}: its description lacks valid data settings ({error!r})"
        ) from error
    if data is not None:
        settings = dataclasses.replace(settings, data=data)
    if cifar_data is not None:
        settings = dataclasses.replace(settings, cifar_data=cifar_data)
    return settings


def load_model(
    source: str | Path,
    *,
    prefer: str = "best",
    fold: bool = True,
    device: str | torch.device = "cpu",
    temperature: float | None = None,
    chroma_gain: float | None = None,
) -> TrainedModel:
    """Load a trained model from `source`: a shipped name (`colorcnn models`), a run folder
    (its `prefer` checkpoint, "best" or "last"), a .safetensors checkpoint or an .onnx file
    from `colorcnn export onnx`.

    The network comes in eval mode on `device`, with batch norm folded into its
    convolutions (`fold`; the same function, faster), and its formulation rebuilt from the
    checkpoint; `temperature` (ab-bins) and `chroma_gain` (ab-regression) change how it
    decodes. Checkpoints of earlier versions, which stored no image sizes, load too.

    >>> model = load_model("cifar-horse-unet")
    >>> model.task, model.image_side, model.working_size
    ('colorize', 32, 32)
    """
    if prefer not in ("best", "last"):
        raise SettingError(f"`prefer` must be 'best' or 'last', got {prefer!r}")
    target_device = resolve_device(device)
    checkpoint = None
    if Path(source).suffix.lower() == ".onnx":
        if target_device.type != "cpu":
            raise ColorcnnError(f"ONNX models run on the cpu here, not on {target_device}")
        network: torch.nn.Module | OnnxModel = OnnxModel(source)
        info, path, runtime = network.info, Path(source), "onnx"
    else:
        path = resolve_checkpoint(source, prefer)
        checkpoint = load_checkpoint(path)
        info, runtime = checkpoint.info, "torch"
    # The description first: a damaged header is reported as such, before any weights.
    try:
        palette = check_palette(torch.tensor(info["palette"], dtype=torch.float32))
    except (KeyError, TypeError, ValueError) as error:
        raise ColorcnnError(f"{path}: its description lacks a valid palette ({error!r})") from None
    settings = _data_settings(info, path)
    formulation = formulation_from_description(
        info, palette.to(target_device), temperature, chroma_gain
    )
    if checkpoint is not None:
        network = build_model(checkpoint).eval()
        if fold:
            network = fold_batch_norm(network)
        network = network.to(target_device)
    with torch.device("meta"):  # the network's shape rules, without its weights
        multiple = create_model(info["model"], **info["model_args"]).size_multiple
    return TrainedModel(
        network=network,
        formulation=formulation,
        info=info,
        source=path,
        runtime=runtime,
        size_multiple=multiple,
        image_side=info.get("image_side") or trained_image_side(settings),
        working_size=info.get("working_size") or default_working_size(settings),
    )
