"""Training: the loop, self-describing checkpoints, and the pictures of a run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from colorcnn.training.config import TrainConfig, resumed_config

if TYPE_CHECKING:
    from colorcnn.training.loop import fit

__all__ = ["TrainConfig", "fit", "resumed_config"]


def __getattr__(name: str):
    # The loop is imported on first use: it brings matplotlib and the evaluation code, while
    # the command line reads TrainConfig's defaults at every start.
    if name == "fit":
        from colorcnn.training.loop import fit

        return fit
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
