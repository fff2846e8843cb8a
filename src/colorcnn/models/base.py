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

    def __init__(
        self,
        kernel: int,
        num_filters: int,
        in_channels: int,
        out_channels: int,
        colour_width: int | None = None,
    ):
        super().__init__()
        colour_width = out_channels if colour_width is None else colour_width
        sizes = (kernel, num_filters, in_channels, out_channels, colour_width)
        if min(sizes) < 1:
            raise ValueError(
                "kernel, num_filters, in_channels, out_channels and colour_width must be "
                f"positive, got {', '.join(map(str, sizes))}"
            )
        self.kernel = kernel
        self.num_filters = num_filters
        self.in_channels = in_channels
        self.out_channels = out_channels
        # The course's last layers are as wide as the output (NC colours). Hundreds of ab
        # bins would make them the costliest layers by far, so they can stay narrower and
        # a 1x1 convolution widens the result to `out_channels`.
        self.colour_width = colour_width
        self.head = (
            nn.Identity()
            if colour_width == out_channels
            else nn.Conv2d(colour_width, out_channels, kernel_size=1)
        )

    @property
    def output_scale(self) -> int:
        """How many times larger than its input the output is (super-resolution networks
        upscale; every colourization network keeps the size)."""
        return 1

    @property
    def size_multiple(self) -> int:
        """Image sides must be multiples of this; the course nets pool twice."""
        return 4

    def check_sides(self, x: torch.Tensor) -> None:
        """Refuse an input whose sides are not multiples of `size_multiple`, in one line."""
        height, width = x.shape[-2:]
        if height % self.size_multiple or width % self.size_multiple:
            raise ValueError(
                f"{type(self).__name__} needs sides that are multiples of {self.size_multiple}, "
                f"got {height}x{width}"
            )

    @property
    def hyperparameters(self) -> dict[str, int]:
        """The constructor arguments: with the registered name they rebuild this network."""
        return {
            "kernel": self.kernel,
            "num_filters": self.num_filters,
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "colour_width": self.colour_width,
        }

    def forward_activations(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def _finish(
        self, activations: dict[str, torch.Tensor], last: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Name the last layer's result `output`, or pass it through the widening head."""
        if isinstance(self.head, nn.Identity):
            activations["output"] = last
        else:
            activations[f"out{len(activations) + 1}"] = last
            activations["output"] = self.head(last)
        return activations

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_activations(x)["output"]
