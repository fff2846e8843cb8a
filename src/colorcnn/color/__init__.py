"""Colour: colour spaces, the course's scale and the two grey definitions (spaces), the
course's k-means palette (palette), and quantized ab bins (abbins). What a network predicts
from them is in colorcnn.formulations."""

from colorcnn.color.palette import fit_palette, nearest_colour, palette_image

__all__ = ["fit_palette", "nearest_colour", "palette_image"]
