"""Colour: the course's k-means palette and its per-pixel targets."""

from colorcnn.color.palette import fit_palette, nearest_colour, palette_image

__all__ = ["fit_palette", "nearest_colour", "palette_image"]
