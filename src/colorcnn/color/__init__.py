"""Colour: colour spaces and the two grey definitions (spaces), the course's k-means palette
(palette), quantized ab bins (abbins), and what a network predicts and how it is scored
(formulations)."""

from colorcnn.color.palette import fit_palette, nearest_colour, palette_image

__all__ = ["fit_palette", "nearest_colour", "palette_image"]
