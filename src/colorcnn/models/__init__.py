"""The model zoo: importing this package registers every architecture."""

from colorcnn.models import (  # noqa: F401
    cnn,
    conv_transpose_net,
    efficient_unet,
    photo_unet,
    pool_upsample_net,
    subpixel_net,
    unet,
)
from colorcnn.models.base import ColourNet
from colorcnn.models.registry import (
    create_model,
    list_models,
    model_entry,
    model_objective,
    register_model,
)

__all__ = [
    "ColourNet",
    "create_model",
    "list_models",
    "model_entry",
    "model_objective",
    "register_model",
]
