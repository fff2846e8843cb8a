"""Inference: read any image safely and colourize it at any size."""

from colorcnn.inference.colorize import DEFAULT_WORKING_SIZE, Colorizer, colorize

__all__ = ["DEFAULT_WORKING_SIZE", "Colorizer", "colorize"]
