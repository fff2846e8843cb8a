"""colorcnn: colourize grayscale images with small convolutional networks, on a CPU."""

from colorcnn.color.hints import Hint
from colorcnn.errors import ColorcnnError
from colorcnn.inference.colorize import colorize
from colorcnn.inference.video import colorize_video
from colorcnn.models import create_model, list_models
from colorcnn.trained import TrainedModel, load_model

__version__ = "0.1.0"

__all__ = [
    "ColorcnnError",
    "Hint",
    "TrainedModel",
    "__version__",
    "colorize",
    "colorize_video",
    "create_model",
    "list_models",
    "load_model",
]
