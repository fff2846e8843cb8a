"""What every colourization network shares: its settings and its named activations."""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from torch import nn

Objective = Literal["classification", "regression"]


class ColourNet(nn.Module):
    """A fully convolutional network from grey (N, in_channels, H, W) to per-pixel outputs.

    Subclasses build their layers in `__init__` and compute `forward_activations`, which
    returns every intermediate activation by name (out1, out2, ...) and the final
    `output`; the activation pictures and the model summary read them.
    """

    objective: ClassVar[Objective] = "classification"

    def __init__(self, kernel: int, num_filters: int, in_channels: int, out_channels: int):
        super().__init__()
        if kernel < 1 or num_filters < 1 or in_channels < 1 or out_channels < 1:
            raise ValueError(
                "kernel, num_filters, in_channels and out_channels must be positive, got "
                f"{kernel}, {num_filters}, {in_channels}, {out_channels}"
            )
        self.kernel = kernel
        self.num_filters = num_filters
        self.in_channels = in_channels
        self.out_channels = out_channels

    @property
    def hyperparameters(self) -> dict[str, int]:
        """The constructor arguments: with the registered name they rebuild this network."""
        return {
            "kernel": self.kernel,
            "num_filters": self.num_filters,
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
        }

    def forward_activations(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_activations(x)["output"]
