"""Colour formulations: what a colourizing network predicts per pixel.

- `palette-rgb`: the course's classification over the k-means palette (cross-entropy),
  from the course's grey (mean of RGB).
- `rgb-regression`: the course's RegressionCNN target, RGB with mean squared error.
- `ab-bins`: Lab chroma as classes over the in-gamut ab bins with soft targets and class
  rebalancing, decoded by the annealed mean (Zhang et al. 2016), from Lab L.
- `ab-regression`: Lab chroma regressed with a Huber, L1 or MSE loss, from Lab L.

Every formulation is scored by the course's accuracy (the share of pixels whose predicted
colour, snapped to the palette, is the target colour) and reconstructs an RGB picture.
"""

from __future__ import annotations

from abc import abstractmethod

import torch
import torch.nn.functional as F

from colorcnn.color.abbins import ANNEALED_T, SOFT_NEIGHBOURS, ABBins, positive_temperature
from colorcnn.color.hints import (
    HINT_CHANNELS,
    PROPAGATION_LIGHTNESS,
    PROPAGATION_REACH,
    PROPAGATION_STRENGTH,
    blend_hints,
    no_hints,
    simulate_hints,
)
from colorcnn.color.palette import palette_image, rows_at
from colorcnn.color.spaces import (
    AB_SCALE,
    L_MAX,
    course_grey,
    join_lightness_and_ab,
    replace_lightness,
    rgb_to_lab,
    true_lightness,
    unit_rgb,
)
from colorcnn.errors import ColorcnnError, SettingError
from colorcnn.formulations.base import (
    Formulation,
    PaletteClasses,
    best_class,
    channel_log_softmax,
    images_per_chunk,
    register_formulation,
)


@register_formulation
class PaletteClassification(PaletteClasses):
    """One of K palette colours per pixel from the course's grey; outputs are logits
    (N, K, H, W)."""

    name = "palette-rgb"

    def inputs(self, rgb: torch.Tensor) -> torch.Tensor:
        return course_grey(rgb)

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


@register_formulation
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
    """Input L / 100; the prediction is chroma, always joined with the input's own L.

    With `hints`, the input also holds colour hints (colorcnn.color.hints): none from
    `inputs`, which is what automatic colourization and validation see; simulated from the
    truth for every training batch (`prepare_batch`); a user's through `with_hints`."""

    can_take_hints = True

    def __init__(self, palette: torch.Tensor, hints: bool = False, propagation: dict | None = None):
        super().__init__(palette)
        self.takes_hints = hints
        # How hints spread when decoding (blend_hints' settings), kept in the description.
        self.propagation = {
            "reach": PROPAGATION_REACH,
            "lightness_sigma": PROPAGATION_LIGHTNESS,
            "strength": PROPAGATION_STRENGTH,
            **(propagation or {}),
        }

    def _described_hints(self, described: dict) -> dict:
        if not self.takes_hints:
            return described
        return {**described, "hints": True, "propagation": dict(self.propagation)}

    @property
    def in_channels(self) -> int:
        return 1 + HINT_CHANNELS if self.takes_hints else 1

    def inputs(self, rgb: torch.Tensor) -> torch.Tensor:
        lightness = true_lightness(rgb) / L_MAX  # (N, 1, H, W)
        if not self.takes_hints:
            return lightness
        return torch.cat((lightness, no_hints(len(rgb), *rgb.shape[-2:], like=lightness)), dim=1)

    def with_hints(self, inputs: torch.Tensor, hints: torch.Tensor) -> torch.Tensor:
        """`inputs` with the hint channels `hints` (N, 3, H, W) in place of their own."""
        if not self.takes_hints:
            raise ColorcnnError(f"this {self.name} model was trained without colour hints")
        return torch.cat((inputs[:, :1], hints.to(inputs)), dim=1)

    def training_ab(self, targets: torch.Tensor) -> torch.Tensor:
        """The true chroma (N, 2, H, W) behind a batch of training targets."""
        return targets

    def training_inputs(self, rgb: torch.Tensor) -> torch.Tensor:
        # The lightness alone: every batch gets its hints anew (`prepare_batch`), and four
        # resident channels would hold 4 times the memory (7 GB for 53000 crops at 96 px).
        return true_lightness(rgb) / L_MAX

    def prepare_batch(self, inputs, targets, generator):
        if not self.takes_hints:
            return inputs
        hints = simulate_hints(self.training_ab(targets), generator)
        # In the layout the resident inputs and the network use (channels-last by default).
        return self.with_hints(inputs, hints).contiguous(memory_format=torch.channels_last)

    def targets(self, rgb: torch.Tensor) -> torch.Tensor:
        return rgb_to_lab(unit_rgb(rgb))[:, 1:]  # (N, 2, H, W) ab

    @abstractmethod
    def predict_ab(self, outputs: torch.Tensor) -> torch.Tensor: ...

    def predict_chroma(self, outputs, inputs, temperature=None):
        self.check_temperature(temperature)
        return self.guided(self.predict_ab(outputs), inputs)

    def predict_rgb(self, outputs, inputs, lightness=None):
        return self._join(self.guided(self.predict_ab(outputs), inputs), inputs, lightness)

    def guided(self, ab: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """The network's chroma `ab` (N, 2, H, W) with the input's colour hints spread over
        it by lightness (colorcnn.color.hints.blend_hints); as it is without hints."""
        if not self.takes_hints or inputs.shape[1] == 1:
            return ab
        hints = inputs[:, 1:]
        blended = blend_hints(ab / AB_SCALE, hints, inputs[:, :1] * L_MAX, **self.propagation)
        return blended * AB_SCALE

    def decode_for_scoring(self, outputs, inputs, lightness, own_picture=True):
        # The chroma is decoded once for both pictures (for ab-bins, a softmax over
        # hundreds of bins); the accuracy reads the picture with the input's own L.
        ab = self.guided(self.predict_ab(outputs), inputs)
        own = self._join(ab, inputs)
        return self.colour_indices(outputs, inputs, own), self._join(ab, inputs, lightness), None

    @staticmethod
    def _join(ab: torch.Tensor, inputs: torch.Tensor, lightness: torch.Tensor | None = None):
        own = inputs[:, :1] * L_MAX  # the hint channels, if any, follow the lightness
        return join_lightness_and_ab(own if lightness is None else lightness, ab)


@register_formulation
class ABBinsClassification(_LabFormulation):
    """Classes over the in-gamut ab bins, soft-encoded, rebalanced, annealed-mean decoded."""

    name = "ab-bins"
    decoding_settings = frozenset({"temperature"})

    def __init__(
        self,
        palette: torch.Tensor,
        bins: ABBins,
        class_weights: torch.Tensor | None = None,
        temperature: float = ANNEALED_T,
        hints: bool = False,
        propagation: dict | None = None,
    ):
        super().__init__(palette, hints, propagation)
        self.bins = bins
        self.class_weights = class_weights  # (Q,) rebalancing; None = every class alike
        self.temperature = temperature

    @classmethod
    def from_description(cls, palette, described, train_rgb=None):
        temperature = described.get("temperature", ANNEALED_T)
        hints, propagation = described.get("hints", False), described.get("propagation")
        if "bins" in described:  # a trained model's own bins and weights
            bins = ABBins(torch.tensor(described["bins"], dtype=torch.float32))
            weights = described.get("class_weights")
            class_weights = None if weights is None else torch.tensor(weights, dtype=torch.float32)
            return cls(palette, bins, class_weights, temperature, hints, propagation)
        bins = ABBins.in_gamut()
        class_weights = None
        if described.get("rebalance", True):
            if train_rgb is None:
                raise ValueError("ab-bins needs the training images to fit its colour prior")
            class_weights = bins.rebalancing_weights(_colour_prior(bins, train_rgb))
        return cls(palette, bins, class_weights, temperature, hints, propagation)

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

    def training_ab(self, targets: torch.Tensor) -> torch.Tensor:
        """ab, or the packed encoding's weighted mean of the nearest bins' centres: within
        a bin's width of the truth, near enough for a simulated hint."""
        if targets.shape[1] == 2:
            return targets
        indices, weights = targets[:, :SOFT_NEIGHBOURS].long(), targets[:, SOFT_NEIGHBOURS:]
        centres = self.bins.centres.to(targets)[indices]  # (N, 5, H, W, 2)
        return (weights.unsqueeze(-1) * centres).sum(dim=1).permute(0, 3, 1, 2)

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
        return self.guided(self.predict_ab(outputs, temperature), inputs)

    def check_temperature(self, temperature: float | None) -> None:
        if temperature is not None:
            positive_temperature(temperature)

    def describe(self) -> dict:
        weights = None if self.class_weights is None else self.class_weights.cpu().tolist()
        described = {
            "name": self.name,
            "bins": self.bins.centres.cpu().tolist(),
            "class_weights": weights,
            "temperature": self.temperature,
        }
        return self._described_hints(described)


REGRESSION_LOSSES = ("huber", "l1", "mse")


@register_formulation
class ABRegression(_LabFormulation):
    """ab / 110 per pixel, (N, 2, H, W), with a Huber (default), L1 or MSE loss."""

    name = "ab-regression"
    decoding_settings = frozenset({"chroma_gain"})
    HUBER_DELTA = 0.1  # in ab / 110 units: errors under 11 ab units are squared

    def __init__(
        self,
        palette: torch.Tensor,
        regression_loss: str = "huber",
        chroma_gain: float = 1.0,
        hints: bool = False,
        propagation: dict | None = None,
    ):
        super().__init__(palette, hints, propagation)
        if regression_loss not in REGRESSION_LOSSES:
            raise SettingError(
                f"`regression_loss` must be one of {', '.join(REGRESSION_LOSSES)}, "
                f"got {regression_loss!r}"
            )
        if not chroma_gain > 0:
            raise SettingError(f"`chroma_gain` must be a positive number, got {chroma_gain}")
        self.regression_loss = regression_loss
        # Regression predicts the mean of plausible colours, which is paler than any of them;
        # a gain above 1 scales the predicted chroma back up when decoding (training ignores it).
        self.chroma_gain = chroma_gain

    @classmethod
    def from_description(cls, palette, described, train_rgb=None):
        return cls(
            palette,
            described.get("regression_loss", "huber"),
            described.get("chroma_gain", 1.0),
            described.get("hints", False),
            described.get("propagation"),
        )

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
        described = {
            "name": self.name,
            "regression_loss": self.regression_loss,
            "chroma_gain": self.chroma_gain,
        }
        return self._described_hints(described)


def _colour_prior(bins: ABBins, train_rgb: torch.Tensor) -> torch.Tensor:
    """The empirical prior of `train_rgb`, chunk by chunk on the images' own device."""
    counts = torch.zeros(bins.num_bins, dtype=torch.float64)
    step = images_per_chunk(train_rgb)
    for start in range(0, len(train_rgb), step):
        ab = rgb_to_lab(unit_rgb(train_rgb[start : start + step]))[:, 1:]
        counts += bins.empirical_prior(ab).double().cpu() * ab[:, 0].numel()
    return (counts / counts.sum()).float()
