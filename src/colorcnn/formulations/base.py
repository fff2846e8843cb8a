"""What every formulation shares: the interface, the course's palette classes, and the
registry that builds a formulation by name from training settings or a checkpoint's
description.

A formulation is what a network predicts per pixel, its loss, and how a prediction becomes
a picture. Colour (`formulations.colour`) and super-resolution (`formulations.superres`)
formulations both build on this module and never import each other. Images arrive on the
course's scale (uint8 / 256); colour science uses uint8 / 255.
"""

from __future__ import annotations

import fnmatch
from abc import ABC, abstractmethod
from typing import ClassVar

import torch
import torch.nn.functional as F

from colorcnn.color.abbins import ANNEALED_T
from colorcnn.color.palette import nearest_colour, palette_image
from colorcnn.color.spaces import course_rgb, rgb_to_lab, unit_rgb
from colorcnn.errors import ColorcnnError, SettingError


def _pixels_last(outputs: torch.Tensor) -> torch.Tensor | None:
    """(N, H, W, C) view of channels-last outputs, else None.

    torch's CPU softmax and cross-entropy kernels are faster over the last dimension than
    over dim 1 of a channels-last tensor (fwd+bwd: 24 classes 17 -> 10 ms at batch 100,
    32 px; 261 bins 590 -> 470 ms at batch 32, 64 px); the values are the same."""
    if outputs.dim() == 4 and outputs.is_contiguous(memory_format=torch.channels_last):
        return outputs.permute(0, 2, 3, 1)
    return None


def channel_log_softmax(outputs: torch.Tensor) -> torch.Tensor:
    """log_softmax over the channels (N, C, H, W)."""
    pixels = _pixels_last(outputs)
    if pixels is None:
        return F.log_softmax(outputs, dim=1)
    return F.log_softmax(pixels, dim=-1).permute(0, 3, 1, 2)


def pixel_cross_entropy(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of logits (N, C, H, W) against class indices (N, H, W)."""
    pixels = _pixels_last(outputs)
    if pixels is None or targets.shape != pixels.shape[:3]:
        return F.cross_entropy(outputs, targets)  # which also reports wrong shapes
    return F.cross_entropy(pixels.reshape(-1, outputs.shape[1]), targets.reshape(-1))


def best_class(outputs: torch.Tensor) -> torch.Tensor:
    """The highest-scoring class of each pixel, (N, C, H, W) -> (N, H, W).

    max(dim=1) returns the same first-of-equals index as argmax, and takes 2.9 against
    4.1 ms for 24 classes at batch 100, 32 px, channels-last on a CPU."""
    return outputs.max(dim=1).indices


class Formulation(ABC):
    """A per-pixel target: network inputs, training targets, loss and reconstruction."""

    name: ClassVar[str]
    task: ClassVar[str] = "colorize"  # or "superres"
    # Whole-colour formulations are also scored on their own picture, whose lightness is
    # not the photo's (`psnr_raw`).
    scores_own_picture: ClassVar[bool] = False
    # The decoding settings a user may change on a trained model of this kind.
    decoding_settings: ClassVar[frozenset[str]] = frozenset()
    takes_hints = False  # whether the input holds colour hints (formulations.colour)
    # Whether the network itself upscales (its output `scale` times its input's size) and
    # so must be a model whose `output_scale` is that scale (superres-y).
    network_upscales: ClassVar[bool] = False
    can_take_hints: ClassVar[bool] = False  # whether it can be trained with them

    def __init__(self, palette: torch.Tensor):
        self.palette = palette  # (K, 3) course scale: scores every formulation alike

    @classmethod
    def from_description(
        cls, palette: torch.Tensor, described: dict, train_rgb: torch.Tensor | None = None
    ) -> Formulation:
        """The formulation `described` asks for: what `describe` wrote into a checkpoint,
        or a new run's settings, for which formulations that learn from the data (ab-bins'
        colour prior) read `train_rgb`."""
        return cls(palette)

    @property
    def in_channels(self) -> int:
        """Channels of the network input: grey for colourization."""
        return 1

    @property
    @abstractmethod
    def out_channels(self) -> int: ...

    @abstractmethod
    def inputs(self, rgb: torch.Tensor) -> torch.Tensor:
        """Network input (N, in_channels, H, W) from course-scale RGB (N, 3, H, W): grey
        or L for colourizing, the small RGB picture for super-resolution."""

    @abstractmethod
    def targets(self, rgb: torch.Tensor) -> torch.Tensor:
        """What the loss compares outputs with, from course-scale RGB."""

    @abstractmethod
    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor: ...

    def prepare_batch(
        self, inputs: torch.Tensor, targets: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """A training batch's network input: `inputs` as they are, or, for formulations that
        take hints, with hints simulated from the batch's `targets` (drawn from
        `generator`)."""
        return inputs

    def with_hints(self, inputs: torch.Tensor, hints: torch.Tensor) -> torch.Tensor:
        """`inputs` with a user's colour hints (N, 3, H, W); for formulations that take them."""
        raise ColorcnnError(f"this {self.name} model was trained without colour hints")

    def training_inputs(self, rgb: torch.Tensor) -> torch.Tensor:
        """What the training loop keeps resident of the inputs; `prepare_batch` makes each
        batch's network input from it."""
        return self.inputs(rgb)

    def training_targets(self, rgb: torch.Tensor) -> torch.Tensor:
        """`targets`, or a form of them that is cheaper to compute the loss from; what the
        training loop keeps resident. `loss` accepts both."""
        return self.targets(rgb)

    @abstractmethod
    def predict_rgb(
        self, outputs: torch.Tensor, inputs: torch.Tensor, lightness: torch.Tensor | None = None
    ) -> torch.Tensor:
        """RGB in [0, 1] (N, 3, H, W). With `lightness` (Lab L), the output keeps it exactly."""

    def predict_chroma(
        self, outputs: torch.Tensor, inputs: torch.Tensor, temperature: float | None = None
    ) -> torch.Tensor:
        """Predicted Lab chroma ab (N, 2, H, W), to be joined with any lightness."""
        self.check_temperature(temperature)
        return rgb_to_lab(self.predict_rgb(outputs, inputs))[:, 1:]

    def check_temperature(self, temperature: float | None) -> None:
        if temperature is not None:
            raise SettingError(
                f"a `temperature` applies to ab-bins models only; this one predicts {self.name}"
            )

    def colour_indices(
        self, outputs: torch.Tensor, inputs: torch.Tensor, picture: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Palette index (N, H, W) of each predicted pixel, for the course's accuracy.
        `picture` is `predict_rgb(outputs, inputs)` where the caller has it already."""
        if picture is None:
            picture = self.predict_rgb(outputs, inputs)
        return nearest_colour(course_rgb(picture), self.palette)[:, 0]

    def decode_for_scoring(
        self,
        outputs: torch.Tensor,
        inputs: torch.Tensor,
        lightness: torch.Tensor,
        own_picture: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """What evaluation scores of one batch: `colour_indices`, the prediction joined with
        the true `lightness`, and, where `scores_own_picture` and `own_picture` asks for
        it, the formulation's own picture (else None)."""
        own = self.predict_rgb(outputs, inputs)  # the accuracy reads it too: decoded once
        predicted = self.predict_rgb(outputs, inputs, lightness)
        wanted = own_picture and self.scores_own_picture
        return self.colour_indices(outputs, inputs, own), predicted, own if wanted else None

    def scored_truth(self, truth: torch.Tensor) -> torch.Tensor:
        """What a prediction is scored against, from the true RGB in [0, 1]: the picture
        itself, but for formulations that predict the luminance alone."""
        return truth

    def describe(self) -> dict:
        """What a checkpoint must store to rebuild this formulation (besides the palette)."""
        return {"name": self.name}

    def picture_rows(
        self, outputs: torch.Tensor, inputs: torch.Tensor, truth_rgb: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """The labelled rows of a run's per-epoch prediction grid, each (N, C, H, W) in
        [0, 1]: what the network saw, the truth it learns, and its prediction."""
        return {
            "grey input": inputs[:, :1].clamp(0, 1),  # colour hints, if any, follow it
            "ground truth": unit_rgb(truth_rgb),
            "prediction": self.predict_rgb(outputs, inputs),
        }


class PaletteClasses(Formulation):
    """One of the K palette colours per pixel, the course's classification; outputs are
    logits (N, K, H, W). Its colourization and its super-resolution differ only in what
    the network sees."""

    scores_own_picture = True

    @property
    def out_channels(self) -> int:
        return len(self.palette)

    def targets(self, rgb: torch.Tensor) -> torch.Tensor:
        return nearest_colour(rgb, self.palette)[:, 0]  # (N, H, W) int64

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return pixel_cross_entropy(outputs, targets)

    def colour_indices(self, outputs, inputs, picture=None):
        return best_class(outputs)

    def quantized(self, rgb: torch.Tensor) -> torch.Tensor:
        """Course-scale RGB in the palette's colours, each pixel its nearest, in [0, 1]."""
        return unit_rgb(palette_image(self.targets(rgb), self.palette))


_REGISTRY: dict[str, type[Formulation]] = {}


def register_formulation(kind: type[Formulation]) -> type[Formulation]:
    """Register a formulation class under its `name`."""
    if kind.name in _REGISTRY:
        raise ValueError(f"formulation {kind.name!r} is registered twice")
    _REGISTRY[kind.name] = kind
    return kind


def list_formulations(task: str | None = None, pattern: str = "*") -> list[str]:
    """Registered formulation names (of one `task`, if given), in registration order."""
    return [
        name
        for name, kind in _REGISTRY.items()
        if (task is None or kind.task == task) and fnmatch.fnmatch(name, pattern)
    ]


def formulation_class(name: str) -> type[Formulation]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ColorcnnError(
            f"unknown target {name!r}; expected one of {', '.join(list_formulations())}"
        ) from None


def check_target(name: str) -> str:
    formulation_class(name)
    return name


def build_formulation(
    name: str,
    palette: torch.Tensor,
    *,
    train_rgb: torch.Tensor | None = None,
    described: dict | None = None,
    temperature: float = ANNEALED_T,
    regression_loss: str = "huber",
    rebalance: bool = True,
    chroma_gain: float | None = None,
    scale: int | None = None,
    hints: bool = False,
) -> Formulation:
    """A formulation by name, for a new run (ab-bins fits its colour prior on `train_rgb`)
    or rebuilt from what a checkpoint `described`.

    A checkpoint's own settings win over `regression_loss`, `rebalance` and `hints` (colour
    hints in the input; ab-bins and ab-regression), which only describe new runs;
    `temperature`, `chroma_gain` and `scale`, when given, change how a trained model
    decodes."""
    kind = formulation_class(name)
    if chroma_gain is not None and "chroma_gain" not in kind.decoding_settings:
        raise SettingError(f"`chroma_gain` applies to ab-regression models only, not {name}")
    if hints and not kind.can_take_hints:
        raise SettingError(f"`hints` apply to ab-bins and ab-regression models only, not {name}")
    settings = {
        "regression_loss": regression_loss,
        "rebalance": rebalance,
        "hints": hints,
        **(described or {}),
    }
    settings.update(name=name, temperature=temperature)
    if chroma_gain is not None:
        settings["chroma_gain"] = chroma_gain
    if scale is not None:
        settings["scale"] = scale
    return kind.from_description(palette, settings, train_rgb)


# Photos default to ab-regression: on both protocols of benchmarks/quality.py it scored the
# highest PSNR and ab-error AuC of the three formulations (docs/results.md), and its chroma
# gain trades some of that for vividness at decoding time.
PHOTO_TARGET = "ab-regression"


def default_target(objective: str, dataset: str = "cifar10", task: str = "colorize") -> str:
    """The course's target on CIFAR-10 (RGB regression for RegressionCNN, else the
    palette), and PHOTO_TARGET on photos; for super-resolution the course's classes, or the
    residual for regression models."""
    if task == "superres":
        return "superres-rgb" if objective == "regression" else "superres-palette"
    if dataset != "cifar10":
        return PHOTO_TARGET
    return "rgb-regression" if objective == "regression" else "palette-rgb"


def formulation_from_description(
    info: dict,
    palette: torch.Tensor,
    temperature: float | None = None,
    chroma_gain: float | None = None,
) -> Formulation:
    """Rebuild a checkpoint's formulation from its description `info`; `temperature`
    (ab-bins) and `chroma_gain` (ab-regression) override how the saved one decodes."""
    described = info.get("formulation") or {"name": default_target(info.get("objective", ""))}
    if (
        temperature is not None
        and "temperature" not in formulation_class(described["name"]).decoding_settings
    ):
        raise SettingError(
            f"a `temperature` applies to ab-bins models only; this one predicts {described['name']}"
        )
    saved_temperature = described.get("temperature", ANNEALED_T)
    return build_formulation(
        described["name"],
        palette,
        described=described,
        temperature=temperature if temperature is not None else saved_temperature,
        chroma_gain=chroma_gain,
    )


# Images converted at a time when a whole training set is processed: a photo set of tens of
# thousands of crops would otherwise need several copies of itself in Lab at once.
CHUNK_PIXELS = 1 << 22


def images_per_chunk(rgb: torch.Tensor) -> int:
    return max(1, CHUNK_PIXELS // (rgb.shape[-1] * rgb.shape[-2]))
