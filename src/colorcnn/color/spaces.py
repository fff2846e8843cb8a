"""Colour spaces as pure torch functions over (*, C, H, W) that keep device and dtype.

RGB is in [0, 1]; Lab follows CIE (D65): L in [0, 100], a and b roughly in [-110, 110].
The conversions themselves are kornia's.
"""

from __future__ import annotations

import torch
from kornia.color import lab_to_rgb as _kornia_lab_to_rgb
from kornia.color import linear_rgb_to_rgb
from kornia.color import rgb_to_lab as _kornia_rgb_to_lab

L_MAX = 100.0
# |a|, |b| of sRGB colours stay below this; used to scale ab to about [-1, 1] for networks.
AB_SCALE = 110.0


def _check_image(image: torch.Tensor, channels: int, name: str) -> None:
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(image).__name__}")
    if image.ndim < 3 or image.shape[-3] != channels:
        raise ValueError(f"{name} must have shape (*, {channels}, H, W), got {tuple(image.shape)}")
    if not image.is_floating_point():
        raise TypeError(f"{name} must be a floating point tensor, got {image.dtype}")


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] (*, 3, H, W) -> CIE Lab (*, 3, H, W)."""
    _check_image(rgb, 3, "rgb")
    return _kornia_rgb_to_lab(rgb.clamp(0.0, 1.0))


def lab_to_rgb(lab: torch.Tensor, clip: bool = True) -> torch.Tensor:
    """CIE Lab (*, 3, H, W) -> sRGB (*, 3, H, W); clipped to [0, 1] unless `clip` is False."""
    _check_image(lab, 3, "lab")
    return _kornia_lab_to_rgb(lab, clip=clip)


# CIE XYZ (D65) -> linear sRGB, and the D65 white point: kornia's constants.
_XYZ_TO_LINEAR_RGB = (
    (3.2404813432005266, -1.5371515162713185, -0.4985363261688878),
    (-0.9692549499965682, 1.8759900014898907, 0.0415559265582928),
    (0.0556466391351772, -0.2040413383665112, 1.0573110696453443),
)
_WHITE_X, _WHITE_Z = 0.95047, 1.08883
# Linear values tabulated for the sRGB curve of lab_to_rgb_uint8: a step of 1e-6 moves an
# 8-bit output by at most 0.003 of a level.
_GAMMA_STEPS = 1 << 20
_gamma_table: torch.Tensor | None = None


def _lab_f_inverse(f: torch.Tensor) -> torch.Tensor:
    return torch.where(f > 0.2068966, f * f * f, (f - 4.0 / 29.0) / 7.787)


def lab_to_rgb_uint8(lightness: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """8-bit sRGB (H, W, 3) of L (H, W) and ab (2, H, W) on the CPU: what
    `to_uint8(lab_to_rgb(...))` writes, with kornia's constants, but with the sRGB curve
    read from a table of kornia's own values instead of a power per value, and one plane
    at a time: 2-3x faster for a 12-megapixel scan. A value that lies within 0.003 of a
    level's rounding boundary may round the other way (about 1 in 10,000, by one level;
    tests/test_color_spaces.py compares the two)."""
    global _gamma_table
    if _gamma_table is None:
        linear = torch.linspace(0.0, 1.0, _GAMMA_STEPS + 1).view(1, -1, 1).expand(3, -1, 1)
        srgb = linear_rgb_to_rgb(linear.contiguous())[0, :, 0]
        _gamma_table = (srgb * 255.0).round().clamp(0, 255).to(torch.uint8)
    fy = (lightness + 16.0) / 116.0
    fx = ab[0] / 500.0 + fy
    fz = (fy - ab[1] / 200.0).clamp_(min=0.0)
    x = _lab_f_inverse(fx).mul_(_WHITE_X)
    y = _lab_f_inverse(fy)
    z = _lab_f_inverse(fz).mul_(_WHITE_Z)
    output = torch.empty(*lightness.shape, 3, dtype=torch.uint8)
    for channel, (from_x, from_y, from_z) in enumerate(_XYZ_TO_LINEAR_RGB):
        linear = x * from_x
        linear.add_(y, alpha=from_y).add_(z, alpha=from_z)
        # NaN (a diverged network) becomes black, as kornia's path writes it, not an index.
        index = linear.nan_to_num_(0.0).clamp_(0.0, 1.0).mul_(_GAMMA_STEPS).round_().long()
        output[..., channel] = _gamma_table[index]
    return output


def course_grey(rgb: torch.Tensor) -> torch.Tensor:
    """The course's grey: the plain mean of R, G and B (*, 1, H, W)."""
    _check_image(rgb, 3, "rgb")
    return rgb.mean(dim=-3, keepdim=True)


def lab_lightness(rgb: torch.Tensor) -> torch.Tensor:
    """CIE L of sRGB (*, 1, H, W), in [0, 100]."""
    return rgb_to_lab(rgb)[..., :1, :, :]


# Row Y of kornia's linear-RGB -> XYZ matrix (D65), which rgb_to_lab uses: Lab L depends on
# the luminance Y alone (the white point's Y is 1).
_LUMINANCE_WEIGHTS = (0.212671, 0.715160, 0.072169)
_srgb_linear_table: torch.Tensor | None = None


def _srgb_to_linear(rgb: torch.Tensor) -> torch.Tensor:
    """kornia's sRGB -> linear RGB of values in [0, 1]."""
    return torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055).pow(2.4), rgb / 12.92)


def rgb_lightness(rgb: torch.Tensor) -> torch.Tensor:
    """CIE L (*, 1, H, W) of sRGB (*, 3, H, W): what `lab_lightness` gives, to within float
    rounding, from the luminance Y alone (no a, b, X or Z). Floats are read in [0, 1]
    (clamped, as rgb_to_lab does); uint8 in [0, 255], linearized from a 256-entry table."""
    global _srgb_linear_table
    if isinstance(rgb, torch.Tensor) and rgb.dtype == torch.uint8:
        if rgb.ndim < 3 or rgb.shape[-3] != 3:
            raise ValueError(f"rgb must have shape (*, 3, H, W), got {tuple(rgb.shape)}")
        if _srgb_linear_table is None:
            _srgb_linear_table = _srgb_to_linear(torch.arange(256, dtype=torch.float32) / 255.0)
        linear = _srgb_linear_table.to(device=rgb.device)[rgb.long()]
    else:
        _check_image(rgb, 3, "rgb")
        linear = _srgb_to_linear(rgb.clamp(0.0, 1.0))
    r, g, b = linear.unbind(dim=-3)
    y = r * _LUMINANCE_WEIGHTS[0] + g * _LUMINANCE_WEIGHTS[1] + b * _LUMINANCE_WEIGHTS[2]
    y = y.unsqueeze(-3)
    f = torch.where(y > 0.008856, y.clamp(min=0.008856).pow(1 / 3.0), 7.787 * y + 4.0 / 29.0)
    return 116.0 * f - 16.0


# Grey levels tabulated for grey_lightness: 8- and 16-bit inputs land exactly on an entry.
_GREY_LEVELS = 65535
_grey_lightness_table: torch.Tensor | None = None


def grey_lightness(grey: torch.Tensor) -> torch.Tensor:
    """CIE L (*, 1, H, W) of grey pixels in [0, 1] (*, 1, H, W), as `lab_lightness` gives
    for R = G = B, read from a table of kornia's values: for a 12-megapixel scan this is a
    lookup instead of a full Lab conversion of three identical planes. Values between the
    65536 levels are rounded to the nearest, which moves L by less than 0.01."""
    global _grey_lightness_table
    _check_image(grey, 1, "grey")
    if _grey_lightness_table is None:
        levels = torch.linspace(0.0, 1.0, _GREY_LEVELS + 1).view(1, 1, -1)
        _grey_lightness_table = lab_lightness(levels.expand(3, 1, -1)).flatten()
    index = (grey.clamp(0.0, 1.0) * _GREY_LEVELS).round_().long()
    table = _grey_lightness_table.to(device=grey.device)
    return table[index].to(grey.dtype)


def join_lightness_and_ab(lightness: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """RGB from L (*, 1, H, W) and ab (*, 2, H, W): the output keeps exactly this lightness
    wherever the colour is in gamut."""
    _check_image(lightness, 1, "lightness")
    _check_image(ab, 2, "ab")
    return lab_to_rgb(torch.cat((lightness, ab), dim=-3))


def replace_lightness(rgb: torch.Tensor, lightness: torch.Tensor) -> torch.Tensor:
    """Keep the chroma of `rgb` and take the lightness L (*, 1, H, W) from elsewhere."""
    return join_lightness_and_ab(lightness, rgb_to_lab(rgb)[..., 1:, :, :])


# The course's pixels are uint8 / 256 (a white pixel is 255/256); colour science uses
# uint8 / 255.
COURSE_TO_UNIT = 256.0 / 255.0


def unit_rgb(course_rgb: torch.Tensor) -> torch.Tensor:
    """Course-scale RGB (uint8 / 256) -> RGB in [0, 1] (uint8 / 255)."""
    return (course_rgb * COURSE_TO_UNIT).clamp(0.0, 1.0)


def course_rgb(rgb: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] -> the course's scale (uint8 / 256)."""
    return rgb / COURSE_TO_UNIT


def true_lightness(course_rgb_images: torch.Tensor) -> torch.Tensor:
    """Lab L (N, 1, H, W) of course-scale RGB: the luminance a grey photo really carries."""
    return rgb_to_lab(unit_rgb(course_rgb_images))[:, :1]
