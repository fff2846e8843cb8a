"""What a network predicts per pixel, its loss, and how a prediction becomes a colour.

The course has two formulations: classification over the k-means palette (cross-entropy)
and direct RGB regression (mean squared error). Both are scored by the course's accuracy:
the share of pixels whose predicted palette colour is the target colour.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from colorcnn.color.palette import nearest_colour, palette_image


@dataclass
class PaletteClassification:
    """One of K palette colours per pixel; outputs are logits (N, K, H, W)."""

    palette: torch.Tensor  # (K, 3) RGB on the /256 scale
    name: str = "palette-classification"

    def targets(self, rgb: torch.Tensor) -> torch.Tensor:
        return nearest_colour(rgb, self.palette)[:, 0]  # (N, H, W) int64

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(outputs, targets)

    def colour_indices(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs.argmax(dim=1)  # (N, H, W)

    def to_rgb(self, outputs: torch.Tensor) -> torch.Tensor:
        return palette_image(self.colour_indices(outputs), self.palette)


@dataclass
class RGBRegression:
    """RGB per pixel, on the course's /256 scale; outputs are (N, 3, H, W)."""

    palette: torch.Tensor  # used only to score predictions with the course's accuracy
    name: str = "rgb-regression"

    def targets(self, rgb: torch.Tensor) -> torch.Tensor:
        return rgb

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(outputs, targets)

    def colour_indices(self, outputs: torch.Tensor) -> torch.Tensor:
        return nearest_colour(outputs.float(), self.palette)[:, 0]

    def to_rgb(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs.clamp(0.0, 1.0)


Formulation = PaletteClassification | RGBRegression


def formulation_for(objective: str, palette: torch.Tensor) -> Formulation:
    formulations = {"classification": PaletteClassification, "regression": RGBRegression}
    return formulations[objective](palette)
