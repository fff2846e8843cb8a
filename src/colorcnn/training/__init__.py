"""Training: the loop, self-describing checkpoints, and the pictures of a run."""

from colorcnn.training.config import TrainConfig
from colorcnn.training.loop import fit

__all__ = ["TrainConfig", "fit"]
