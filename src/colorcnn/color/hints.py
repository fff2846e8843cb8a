"""Colour hints: points where someone says which colour a part of the picture is, given to
the network beside the lightness (Zhang, Zhu et al., "Real-Time User-Guided Image
Colorization with Learned Deep Priors", SIGGRAPH 2017).

A network that takes hints sees three more input channels: the hints' chroma a and b
(divided by AB_SCALE) where there is a hint and 0 elsewhere, and a mask that is 1 where
there is a hint, so that "no hint" differs from "the user chose grey". Only a hint's chroma
is used: the lightness always comes from the photo.

Training simulates hints from the true image, as the paper does: the number of points is
geometric (a coin with p = 1/8 says stop; mean 7, and 1/8 of the images get none), each a
square patch of 1-9 px placed around the centre (Gaussian, sigma a quarter of the side),
its colour the patch's mean true chroma.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from colorcnn.color.spaces import AB_SCALE, rgb_to_lab
from colorcnn.errors import ColorcnnError

HINT_CHANNELS = 3  # a / AB_SCALE, b / AB_SCALE, mask
STOP_PROBABILITY = 1 / 8  # of the geometric number of simulated points
MAX_PATCH = 9  # simulated patches are 1 to MAX_PATCH pixels wide
# A user's point without a size covers this many pixels of the picture the network sees:
# within the sizes training showed, and large enough to survive the first stride-2 layers.
DEFAULT_WORKING_PATCH = 3

_HEX = re.compile(r"^#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})$")


def parse_colour(text: str) -> tuple[int, int, int]:
    """ "#c03020", "c03020" or "#c32" as 8-bit sRGB."""
    match = _HEX.match(str(text).strip())
    if match is None:
        raise ColorcnnError(f"colour {text!r} is not a hex colour; expected e.g. '#c03020'")
    digits = match.group(1)
    if len(digits) == 3:
        digits = "".join(digit * 2 for digit in digits)
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


@dataclass(frozen=True)
class Hint:
    """One colour hint: the point (x, y) in the input image's own pixels (origin top-left,
    x to the right), its colour (hex text or 8-bit sRGB), and optionally the side of the
    square it covers, in the same pixels."""

    x: float
    y: float
    colour: str | tuple[int, int, int]
    size: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.colour, str):
            object.__setattr__(self, "colour", parse_colour(self.colour))
        elif len(self.colour) != 3 or not all(0 <= int(c) <= 255 for c in self.colour):
            raise ColorcnnError(f"colour {self.colour!r} is not 8-bit sRGB; expected 3 of 0-255")
        if self.size is not None and not self.size > 0:
            raise ColorcnnError(f"hint size must be a positive number of pixels, got {self.size}")

    @property
    def hex(self) -> str:
        return "#" + "".join(f"{int(c):02x}" for c in self.colour)

    def ab(self) -> torch.Tensor:
        """The colour's Lab chroma (2,): all a hint contributes."""
        rgb = torch.tensor(self.colour, dtype=torch.float32).view(1, 3, 1, 1) / 255.0
        return rgb_to_lab(rgb)[0, 1:, 0, 0]

    def check_inside(self, width: int, height: int) -> None:
        if not (0 <= self.x < width and 0 <= self.y < height):
            raise ColorcnnError(
                f"hint at ({self.x:g}, {self.y:g}) is outside the {width}x{height} px image; "
                f"expected x in 0-{width - 1} and y in 0-{height - 1}"
            )


def no_hints(batch: int, height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """Hint channels (N, 3, H, W) that say nothing."""
    return like.new_zeros(batch, HINT_CHANNELS, height, width)


def render_hints(
    hints: list[Hint], image_size: tuple[int, int], working_shape: tuple[int, int]
) -> torch.Tensor:
    """The hint channels (1, 3, h, w) of `hints` on a picture of `image_size` (width, height)
    seen by the network at `working_shape` (h, w): each hint a square of its colour's
    chroma, the mask 1 under it. Later hints cover earlier ones where they overlap."""
    width, height = image_size
    rows, columns = working_shape
    maps = torch.zeros(1, HINT_CHANNELS, rows, columns)
    scale_y, scale_x = rows / height, columns / width
    for hint in hints:
        hint.check_inside(width, height)
        if hint.size is None:
            side = DEFAULT_WORKING_PATCH
        else:
            side = max(1, round(hint.size * min(scale_x, scale_y)))
        centre_y, centre_x = int(hint.y * scale_y), int(hint.x * scale_x)
        top, left = centre_y - (side - 1) // 2, centre_x - (side - 1) // 2
        bottom, right = min(top + side, rows), min(left + side, columns)
        top, left = max(top, 0), max(left, 0)  # a square at the border loses what lies outside
        maps[0, :2, top:bottom, left:right] = (hint.ab() / AB_SCALE).view(2, 1, 1)
        maps[0, 2, top:bottom, left:right] = 1.0
    return maps


def _hint_square(hints: torch.Tensor, ab: torch.Tensor, top: int, left: int, side: int) -> None:
    """Mark the square of `side` at (top, left) in one picture's hint channels (3, H, W) as
    a hint of the square's mean true chroma `ab` (2, H, W)."""
    rows, columns = slice(top, top + side), slice(left, left + side)
    mean = ab[:, rows, columns].mean(dim=(1, 2))
    hints[:2, rows, columns] = (mean / AB_SCALE).view(2, 1, 1)
    hints[2, rows, columns] = 1.0


def simulate_hints(
    ab: torch.Tensor,
    generator: torch.Generator,
    stop_probability: float = STOP_PROBABILITY,
    max_points: int | None = None,
) -> torch.Tensor:
    """Hint channels (N, 3, H, W) taken from the true chroma `ab` (N, 2, H, W), as training
    shows them: a geometric number of points (at most `max_points`), each a square patch of
    1-MAX_PATCH px around the centre, its colour the patch's mean true chroma."""
    count, _, height, width = ab.shape
    hints = ab.new_zeros(count, HINT_CHANNELS, height, width)
    # Every draw comes from `generator` on the CPU, so a seed gives the same hints anywhere.
    for index in range(count):
        points = 0
        while torch.rand((), generator=generator) >= stop_probability:
            points += 1
            if max_points is not None and points >= max_points:
                break
        if not points:
            continue
        sides = torch.randint(1, MAX_PATCH + 1, (points,), generator=generator)
        centres = torch.randn(points, 2, generator=generator) * 0.25 + 0.5  # (y, x) in [0, 1]
        for side, (centre_y, centre_x) in zip(sides.tolist(), centres.tolist(), strict=True):
            top = min(max(round(centre_y * height) - side // 2, 0), height - side)
            left = min(max(round(centre_x * width) - side // 2, 0), width - side)
            _hint_square(hints[index], ab[index], top, left, side)
    return hints


def sample_hints_from_truth(
    ab: torch.Tensor, points: int, patch: int, generator: torch.Generator
) -> torch.Tensor:
    """Hint channels (N, 3, H, W) for measuring: `points` patches of `patch` x `patch`
    pixels at uniformly random places (drawn from `generator`), each of the patch's mean
    true chroma; the protocol of Zhang et al.'s table (6 x 6 patches at 256 px)."""
    count, _, height, width = ab.shape
    hints = ab.new_zeros(count, HINT_CHANNELS, height, width)
    if points == 0:
        return hints
    patch = min(patch, height, width)
    tops = torch.randint(0, height - patch + 1, (count, points), generator=generator)
    lefts = torch.randint(0, width - patch + 1, (count, points), generator=generator)
    for index in range(count):
        for top, left in zip(tops[index].tolist(), lefts[index].tolist(), strict=True):
            _hint_square(hints[index], ab[index], top, left, patch)
    return hints


def pool_hints(hints: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Hint channels at a coarser `size` (h, w): each cell's chroma is the mean over the
    hinted pixels it covers, and its mask the share of them, so that coarse layers of a
    network see where hints are and what they say."""
    mask = hints[:, 2:]
    weight = F.adaptive_avg_pool2d(mask, size)
    chroma = F.adaptive_avg_pool2d(hints[:, :2] * mask, size) / weight.clamp_min(1e-6)
    return torch.cat((chroma * (weight > 0), weight), dim=1)


# Spreading hints by lightness (after Levin, Lischinski and Weiss, "Colorization using
# Optimization", 2004: neighbours of similar lightness tend to share a colour). Chosen on 20
# photos of the validation sources, 10 and 50 hints, from reach 0.5-1.5, lightness 6-10,
# strength 1-4 (docs/results.md, "Colour hints"); the test sources never took part.
PROPAGATION_REACH = 1.0  # spatial sigma, as a share of sqrt(picture area / hinted squares)
PROPAGATION_LIGHTNESS = 6.0  # lightness sigma, in L units
PROPAGATION_STRENGTH = 4.0  # how fast a hint's weight takes over from the network's colour
_POINTS_PER_CHUNK = 1 << 22  # bounds the (pixels x hinted pixels) weights to ~16 MB a chunk


def propagate_hints(
    hints: torch.Tensor,
    lightness: torch.Tensor,
    reach: float = PROPAGATION_REACH,
    lightness_sigma: float = PROPAGATION_LIGHTNESS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every pixel's hint colour and how sure it is: the hinted pixels' chroma averaged with
    weights that fall with distance (Gaussian, sigma `reach` times the typical spacing of
    the hints) and with difference in lightness (sigma `lightness_sigma` L units), so that
    a colour spreads over what looks like the same surface and stops at its edges.

    `hints` (N, 3, H, W) are hint channels (a, b / AB_SCALE, mask), `lightness` (N, 1, H, W)
    Lab L. Returns the chroma field (N, 2, H, W), in the same units as the hints, and the
    weight of the nearest hint (N, 1, H, W): 1 on a hint, falling to 0 far from any."""
    count, _, height, width = hints.shape
    field = hints.new_zeros(count, 2, height, width)
    nearest = hints.new_zeros(count, 1, height, width)
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=hints.dtype, device=hints.device),
        torch.arange(width, dtype=hints.dtype, device=hints.device),
        indexing="ij",
    )
    pixels = torch.stack((ys.flatten(), xs.flatten()), dim=1)  # (H W, 2)
    for index in range(count):
        hinted = hints[index, 2].flatten().nonzero()[:, 0]
        if not len(hinted):
            continue
        # The spacing of the hints, from the hinted area's share: squares of side s cover
        # count * s^2 pixels; k hints over H W pixels lie about sqrt(H W / k) apart.
        squares = max(1.0, float(hints[index, 2].sum()) / 9.0)
        sigma = reach * (height * width / squares) ** 0.5
        sources = pixels[hinted]  # (P, 2)
        source_ab = hints[index, :2].flatten(1)[:, hinted]  # (2, P)
        source_l = lightness[index, 0].flatten()[hinted]  # (P,)
        target_l = lightness[index, 0].flatten()
        rows = max(1, _POINTS_PER_CHUNK // len(hinted))
        for start in range(0, height * width, rows):
            span = slice(start, start + rows)
            distance = torch.cdist(pixels[span], sources).square()  # (rows, P)
            near = torch.exp(-distance / (2 * sigma * sigma))
            alike = torch.exp(-(target_l[span, None] - source_l[None]).square()
                              / (2 * lightness_sigma**2))  # fmt: skip
            weights = near * alike
            total = weights.sum(dim=1).clamp_min(1e-12)
            field[index].view(2, -1)[:, span] = (source_ab @ weights.T) / total
            nearest[index].view(-1)[span] = weights.max(dim=1).values
    return field, nearest


def blend_hints(
    ab: torch.Tensor,
    hints: torch.Tensor,
    lightness: torch.Tensor,
    strength: float = PROPAGATION_STRENGTH,
    **propagation: float,
) -> torch.Tensor:
    """The network's chroma `ab` (N, 2, H, W) pulled towards the hints spread by
    `propagate_hints`: all the way on a hint and where its weight is above 1 / `strength`,
    not at all far from every hint; unchanged where there are no hints."""
    if not hints[:, 2].any():
        return ab
    field, nearest = propagate_hints(hints, lightness, **propagation)
    share = (nearest * strength).clamp(max=1.0)
    return ab * (1 - share) + field.to(ab) * share
