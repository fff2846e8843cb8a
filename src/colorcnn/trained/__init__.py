"""Trained models: self-describing checkpoint files (checkpoint), and `load_model`, the one
way every command gets a trained network with what using it needs (model)."""

from colorcnn.trained.model import TrainedModel, load_model

__all__ = ["TrainedModel", "load_model"]
