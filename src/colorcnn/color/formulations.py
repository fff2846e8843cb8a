"""What a network predicts per pixel, its loss, and how a prediction becomes a colour.

- `palette-rgb`: the course's classification over the k-means palette (cross-entropy),
  from the course's grey (mean of RGB).
- `rgb-regression`: the course's RegressionCNN target, RGB with mean squared error.
- `ab-bins`: Lab chroma as classes over the in-gamut ab bins with soft targets and class
  rebalancing, decoded by the annealed mean (Zhang et al. 2016), from Lab L.
- `ab-regression`: Lab chroma regressed with a Huber or L1 loss, from Lab L.

Every formulation is scored by the course's accuracy (the share of pixels whose predicted
colour, snapped to the palette, is the target colour) and reconstructs an RGB picture.
Images arrive on the course's scale (uint8 / 256); colour science uses uint8 / 255.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch
import torch.nn.functional as F

from colorcnn.color.abbins import ANNEALED_T, SOFT_NEIGHBOURS, ABBins, positive_temperature
from colorcnn.color.palette import nearest_colour, palette_image, rows_at
from colorcnn.color.spaces import (
    AB_SCALE,
    L_MAX,
    course_grey,
    join_lightness_and_ab,
    replace_lightness,
    rgb_to_lab,
)
from colorcnn.errors import ColorcnnError

COURSE_TO_UNIT = 256.0 / 255.0  # course pixels are uint8 / 256


def unit_rgb(course_rgb: torch.Tensor) -> torch.Tensor:
    """Course-scale RGB (uint8 / 256) -> RGB in [0, 1] (uint8 / 255)."""
    return (course_rgb * COURSE_TO_UNIT).clamp(0.0, 1.0)


def course_rgb(rgb: torch.Tensor) -> torch.Tensor:
    return rgb / COURSE_TO_UNIT


def true_lightness(course_rgb_images: torch.Tensor) -> torch.Tensor:
    """Lab L (N, 1, H, W) of course-scale RGB: the luminance a grey photo really carries."""
    return rgb_to_lab(unit_rgb(course_rgb_images))[:, :1]


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
    task: ClassVar[str] = "colorize"  # or "superres" (colorcnn.superres)
    # Whole-colour formulations are also scored on their own picture, whose lightness is
    # not the photo's (`psnr_raw`).
    scores_own_picture: ClassVar[bool] = False

    def __init__(self, palette: torch.Tensor):
        self.palette = palette  # (K, 3) course scale: scores every formulation alike

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
            raise ColorcnnError(
                f"a temperature applies to ab-bins models only; this one predicts {self.name}"
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

    def describe(self) -> dict:
        """What a checkpoint must store to rebuild this formulation (besides the palette)."""
        return {"name": self.name}

    def picture_rows(
        self, outputs: torch.Tensor, inputs: torch.Tensor, truth_rgb: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """The labelled rows of a run's per-epoch prediction grid, each (N, C, H, W) in
        [0, 1]: what the network saw, the truth it learns, and its prediction."""
        return {
            "grey input": inputs.clamp(0, 1),
            "ground truth": unit_rgb(truth_rgb),
            "prediction": self.predict_rgb(outputs, inputs),
        }


class PaletteClassification(Formulation):
    """One of K palette colours per pixel; outputs are logits (N, K, H, W)."""

    name = "palette-rgb"
    scores_own_picture = True

    @property
    def out_channels(self) -> int:
        return len(self.palette)

    def inputs(self, rgb: torch.Tensor) -> torch.Tensor:
        return course_grey(rgb)

    def targets(self, rgb: torch.Tensor) -> torch.Tensor:
        return nearest_colour(rgb, self.palette)[:, 0]  # (N, H, W) int64

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return pixel_cross_entropy(outputs, targets)

    def colour_indices(self, outputs, inputs, picture=None):
        return best_class(outputs)

    def predict_rgb(self, outputs, inputs, lightness=None):
        indices = best_class(outputs)
        if lightness is None:
            return unit_rgb(palette_image(indices, self.palette))
        return self._with_lightness(indices, lightness)

    def decode_for_scoring(self, outputs, inputs, lightness, own_picture=True):
        # One arg-max over the classes for all three: it costs about as much as the rest.
        indices = best_class(outputs)
        own = unit_rgb(palette_image(indices, self.palette)) if own_picture else None
        return indices, self._with_lightness(indices, lightness), own

    def quantized(self, rgb: torch.Tensor) -> torch.Tensor:
        """Course-scale RGB in the palette's colours, each pixel its nearest, in [0, 1]."""
        return unit_rgb(palette_image(self.targets(rgb), self.palette))

    def picture_rows(self, outputs, inputs, truth_rgb):
        """The course's rows (grey input, the truth in palette colours, the prediction), and
        the prediction's chroma with the true lightness beside them."""
        return {
            "grey input": inputs.clamp(0, 1),
            "ground truth\n(palette)": self.quantized(truth_rgb),
            "prediction": self.predict_rgb(outputs, inputs),
            "prediction,\ntrue lightness": self.predict_rgb(
                outputs, inputs, true_lightness(truth_rgb)
            ),
        }

    def _with_lightness(self, indices: torch.Tensor, lightness: torch.Tensor) -> torch.Tensor:
        """The palette colours' chroma joined with `lightness`: the K colours are converted
        to Lab once instead of every pixel's colour."""
        palette_ab = rgb_to_lab(unit_rgb(self.palette)[:, :, None, None])[:, 1:, 0, 0]
        ab = rows_at(palette_ab.to(lightness), indices).permute(0, 3, 1, 2)
        return join_lightness_and_ab(lightness, ab)


class RGBRegression(Formulation):
    """RGB per pixel on the course's scale; outputs are (N, 3, H, W); mean squared error."""

    name = "rgb-regression"
    scores_own_picture = True

    @property
    def out_channels(self) -> int:
        return 3

    def inputs(self, rgb: torch.Tensor) -> torch.Tensor:
        return course_grey(rgb)

    def targets(self, rgb: torch.Tensor) -> torch.Tensor:
        return rgb

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(outputs, targets)

    def predict_rgb(self, outputs, inputs, lightness=None):
        rgb = unit_rgb(outputs.float())
        return rgb if lightness is None else replace_lightness(rgb, lightness)


class _LabFormulation(Formulation):
    """Input L / 100; the prediction is chroma, always joined with the input's own L."""

    def inputs(self, rgb: torch.Tensor) -> torch.Tensor:
        return true_lightness(rgb) / L_MAX

    def targets(self, rgb: torch.Tensor) -> torch.Tensor:
        return rgb_to_lab(unit_rgb(rgb))[:, 1:]  # (N, 2, H, W) ab

    @abstractmethod
    def predict_ab(self, outputs: torch.Tensor) -> torch.Tensor: ...

    def predict_chroma(self, outputs, inputs, temperature=None):
        self.check_temperature(temperature)
        return self.predict_ab(outputs)

    def predict_rgb(self, outputs, inputs, lightness=None):
        return self._join(self.predict_ab(outputs), inputs, lightness)

    def decode_for_scoring(self, outputs, inputs, lightness, own_picture=True):
        # The chroma is decoded once for both pictures (for ab-bins, a softmax over
        # hundreds of bins); the accuracy reads the picture with the input's own L.
        ab = self.predict_ab(outputs)
        own = self._join(ab, inputs)
        return self.colour_indices(outputs, inputs, own), self._join(ab, inputs, lightness), None

    @staticmethod
    def _join(ab: torch.Tensor, inputs: torch.Tensor, lightness: torch.Tensor | None = None):
        return join_lightness_and_ab(inputs * L_MAX if lightness is None else lightness, ab)


class ABBinsClassification(_LabFormulation):
    """Classes over the in-gamut ab bins, soft-encoded, rebalanced, annealed-mean decoded."""

    name = "ab-bins"

    def __init__(
        self,
        palette: torch.Tensor,
        bins: ABBins,
        class_weights: torch.Tensor | None = None,
        temperature: float = ANNEALED_T,
    ):
        super().__init__(palette)
        self.bins = bins
        self.class_weights = class_weights  # (Q,) rebalancing; None = every class alike
        self.temperature = temperature

    @property
    def out_channels(self) -> int:
        return self.bins.num_bins

    _ENCODE_CHUNK_PIXELS = 1 << 16  # bounds the (pixels x bins) distance matrix to ~70 MB

    def training_targets(self, rgb: torch.Tensor) -> torch.Tensor:
        """The soft encoding computed once: (N, 10, H, W) = 5 bin indices, then 5 weights.

        Finding the 5 nearest of 261 bins for every pixel costs as much as the network's
        forward pass, so it is not redone every epoch.
        """
        packed = []
        images_per_chunk = max(1, self._ENCODE_CHUNK_PIXELS // (rgb.shape[-1] * rgb.shape[-2]))
        for start in range(0, len(rgb), images_per_chunk):
            ab = self.targets(rgb[start : start + images_per_chunk])
            indices, weights = self.bins.sparse_soft_encode(ab)
            packed.append(torch.cat((indices.to(weights.dtype), weights), dim=1))
        return torch.cat(packed)

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Rebalanced soft cross-entropy; `targets` are ab (N, 2, H, W) or the packed
        encoding of `training_targets`."""
        if targets.shape[1] == 2:
            indices, weights = self.bins.sparse_soft_encode(targets)  # (N, 5, H, W) each
        else:
            indices, weights = targets[:, :SOFT_NEIGHBOURS].long(), targets[:, SOFT_NEIGHBOURS:]
        log_probabilities = channel_log_softmax(outputs)
        per_pixel = -(weights * log_probabilities.gather(1, indices)).sum(dim=1)  # (N, H, W)
        if self.class_weights is not None:
            per_pixel = per_pixel * self.class_weights.to(outputs)[indices[:, 0]]
        return per_pixel.mean()

    def predict_ab(self, outputs: torch.Tensor, temperature: float | None = None) -> torch.Tensor:
        temperature = self.temperature if temperature is None else temperature
        return self.bins.decode(outputs, "annealed", temperature)

    def predict_chroma(self, outputs, inputs, temperature=None):
        self.check_temperature(temperature)
        return self.predict_ab(outputs, temperature)

    def check_temperature(self, temperature: float | None) -> None:
        if temperature is not None:
            positive_temperature(temperature)

    def describe(self) -> dict:
        weights = None if self.class_weights is None else self.class_weights.cpu().tolist()
        return {
            "name": self.name,
            "bins": self.bins.centres.cpu().tolist(),
            "class_weights": weights,
            "temperature": self.temperature,
        }


REGRESSION_LOSSES = ("huber", "l1", "mse")


class ABRegression(_LabFormulation):
    """ab / 110 per pixel, (N, 2, H, W), with a Huber (default), L1 or MSE loss."""

    name = "ab-regression"
    HUBER_DELTA = 0.1  # in ab / 110 units: errors under 11 ab units are squared

    def __init__(
        self, palette: torch.Tensor, regression_loss: str = "huber", chroma_gain: float = 1.0
    ):
        super().__init__(palette)
        if regression_loss not in REGRESSION_LOSSES:
            raise ColorcnnError(
                f"regression loss must be one of {', '.join(REGRESSION_LOSSES)}, "
                f"got {regression_loss!r}"
            )
        if not chroma_gain > 0:
            raise ColorcnnError(f"chroma gain must be a positive number, got {chroma_gain}")
        self.regression_loss = regression_loss
        # Regression predicts the mean of plausible colours, which is paler than any of them;
        # a gain above 1 scales the predicted chroma back up when decoding (training ignores it).
        self.chroma_gain = chroma_gain

    @property
    def out_channels(self) -> int:
        return 2

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        scaled = targets / AB_SCALE
        if self.regression_loss == "l1":
            return F.l1_loss(outputs, scaled)
        if self.regression_loss == "mse":  # the conditional mean: what PSNR rewards
            return F.mse_loss(outputs, scaled)
        return F.huber_loss(outputs, scaled, delta=self.HUBER_DELTA)

    def predict_ab(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs.float() * (AB_SCALE * self.chroma_gain)

    def describe(self) -> dict:
        return {
            "name": self.name,
            "regression_loss": self.regression_loss,
            "chroma_gain": self.chroma_gain,
        }


TARGETS = ("palette-rgb", "ab-bins", "ab-regression", "rgb-regression")
# Super-resolution targets (colorcnn.superres.formulations), for --task superres.
SUPERRES_TARGETS = ("superres-palette", "superres-rgb")


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


def check_target(name: str) -> str:
    if name not in TARGETS + SUPERRES_TARGETS:
        raise ColorcnnError(
            f"unknown target {name!r}; expected one of {', '.join(TARGETS + SUPERRES_TARGETS)}"
        )
    return name


# Images converted at a time when a whole training set is processed: a photo set of tens of
# thousands of crops would otherwise need several copies of itself in Lab at once.
CHUNK_PIXELS = 1 << 22


def images_per_chunk(rgb: torch.Tensor) -> int:
    return max(1, CHUNK_PIXELS // (rgb.shape[-1] * rgb.shape[-2]))


def _colour_prior(bins: ABBins, train_rgb: torch.Tensor) -> torch.Tensor:
    """The empirical prior of `train_rgb`, chunk by chunk on the images' own device."""
    counts = torch.zeros(bins.num_bins, dtype=torch.float64)
    step = images_per_chunk(train_rgb)
    for start in range(0, len(train_rgb), step):
        ab = rgb_to_lab(unit_rgb(train_rgb[start : start + step]))[:, 1:]
        counts += bins.empirical_prior(ab).double().cpu() * ab[:, 0].numel()
    return (counts / counts.sum()).float()


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
) -> Formulation:
    """A formulation by name; ab-bins fits its colour prior on `train_rgb`, or reuses the
    bins and weights a checkpoint `described`; super-resolution takes its `scale`."""
    check_target(name)
    if name in SUPERRES_TARGETS:
        from colorcnn.superres.formulations import COURSE_SCALE, build_superres

        described_scale = (described or {}).get("scale")
        return build_superres(name, palette, scale or described_scale or COURSE_SCALE)
    if chroma_gain is not None and name != "ab-regression":
        raise ColorcnnError(f"a chroma gain applies to ab-regression models only, not {name}")
    if name == "palette-rgb":
        return PaletteClassification(palette)
    if name == "rgb-regression":
        return RGBRegression(palette)
    if name == "ab-regression":
        loss = (described or {}).get("regression_loss", regression_loss)
        gain = chroma_gain if chroma_gain is not None else (described or {}).get("chroma_gain", 1.0)
        return ABRegression(palette, loss, gain)
    if described is not None:
        bins = ABBins(torch.tensor(described["bins"], dtype=torch.float32))
        weights = described.get("class_weights")
        class_weights = None if weights is None else torch.tensor(weights, dtype=torch.float32)
        return ABBinsClassification(palette, bins, class_weights, temperature)
    bins = ABBins.in_gamut()
    class_weights = None
    if rebalance:
        if train_rgb is None:
            raise ValueError("ab-bins needs the training images to fit its colour prior")
        class_weights = bins.rebalancing_weights(_colour_prior(bins, train_rgb))
    return ABBinsClassification(palette, bins, class_weights, temperature)
