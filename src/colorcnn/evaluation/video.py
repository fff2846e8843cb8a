"""Temporal steadiness of colourized video, as pure functions over sequences of frames.

Every frame is 8-bit RGB, a NumPy array (H, W, 3) uint8, and all frames of a sequence have
one size. Lower is steadier for every measure here; each is worth reading beside the same
measure of the true colour video, which moves too.

- `cdc`: colour distribution consistency (Liu et al., "Temporally consistent video
  colorization with deep feature propagation and self-regularization learning", 2021).
- `warping_error`: Lai et al., "Learning blind video temporal consistency" (ECCV 2018).
- `static_chroma_flicker`: the chroma change where the lightness stays put.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

CDC_DILATIONS = (1, 2, 4)  # frame gaps CDC compares, averaged with equal weights
HISTOGRAM_BINS = 256
# Pixels whose lightness changes by less than this (Lab L units) count as standing still.
STATIC_LIGHTNESS = 2.0
# Ruder et al.'s forward-backward test (as Lai et al. use it): a pixel is occluded when
# |F + B|^2 > OCCLUSION_SHARE (|F|^2 + |B|^2) + OCCLUSION_FLOOR_PX2.
OCCLUSION_SHARE = 0.01
OCCLUSION_FLOOR_PX2 = 0.5


def _check_frames(frames: Sequence[np.ndarray], name: str, least: int = 2) -> None:
    if len(frames) < least:
        raise ValueError(f"`{name}` must hold at least {least} frames, got {len(frames)}")
    shape = frames[0].shape
    for index, frame in enumerate(frames):
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8:
            raise TypeError(
                f"`{name}`[{index}] must be a uint8 NumPy array, got "
                f"{getattr(frame, 'dtype', type(frame).__name__)}"
            )
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape != shape:
            raise ValueError(
                f"`{name}`[{index}] must be RGB (H, W, 3) of the first frame's shape "
                f"{shape}, got {frame.shape}"
            )


def _js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence (natural log, as scipy.stats.entropy) along the last axis."""
    middle = (p + q) / 2

    def kl(x: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(x > 0, x * np.log(x / middle), 0.0)
        return terms.sum(axis=-1)

    return 0.5 * kl(p) + 0.5 * kl(q)


def cdc(frames: Sequence[np.ndarray], dilations: Sequence[int] = CDC_DILATIONS) -> float:
    """Colour distribution consistency: for each gap d, the JS divergence of the per-channel
    256-bin histograms of frames i and i + d, averaged over the R, G, B channels and over
    the frames; then averaged over the gaps (1, 2, 4), as in Liu et al.'s evaluation code.
    0 for identical frames; gaps longer than the sequence are left out."""
    _check_frames(frames, "frames")
    histograms = np.stack(
        [
            np.stack(
                [np.bincount(frame[..., c].ravel(), minlength=HISTOGRAM_BINS) for c in range(3)]
            )
            for frame in frames
        ]
    ).astype(np.float64)  # (T, 3, 256)
    histograms /= histograms.sum(axis=-1, keepdims=True)
    by_gap = [
        float(_js_divergence(histograms[:-gap], histograms[gap:]).mean())
        for gap in dilations
        if gap < len(frames)
    ]
    return float(np.mean(by_gap))


def _grey(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def truth_flows(truth: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(forward, backward) optical flow (H, W, 2) between each pair of consecutive true
    frames, from their grey, by OpenCV's DIS (medium preset): forward takes a pixel of
    frame t to frame t + 1, backward one of frame t + 1 back to frame t."""
    _check_frames(truth, "truth")
    method = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    greys = [_grey(frame) for frame in truth]
    return [
        (method.calc(before, after, None), method.calc(after, before, None))
        for before, after in zip(greys[:-1], greys[1:], strict=True)
    ]


def _pull(image: np.ndarray, flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`image` sampled at x + flow(x), and where that lies inside it."""
    height, width = flow.shape[:2]
    columns, rows = np.meshgrid(
        np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)
    )
    map_x, map_y = columns + flow[..., 0], rows + flow[..., 1]
    inside = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
    warped = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return warped, inside


def visible_mask(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """Pixels (H, W) of frame t seen again in frame t + 1: inside it, and with forward and
    backward flow that agree (Ruder et al.'s test)."""
    backward_there, inside = _pull(backward, forward)
    mismatch = ((forward + backward_there) ** 2).sum(axis=-1)
    scale = (forward**2).sum(axis=-1) + (backward_there**2).sum(axis=-1)
    return inside & (mismatch <= OCCLUSION_SHARE * scale + OCCLUSION_FLOOR_PX2)


def warping_error(
    frames: Sequence[np.ndarray],
    truth: Sequence[np.ndarray] | None = None,
    flows: Sequence[tuple[np.ndarray, np.ndarray]] | None = None,
) -> float:
    """Lai et al.'s warping error: frame t + 1 warped back onto frame t along the flow of
    the true video, then the mean squared RGB difference (RGB in [0, 1]) over the pixels
    visible in both, averaged over the pairs of frames. `flows` are `truth_flows(truth)`
    (pass them to score several outputs of one video); without either, the frames' own
    flow is used."""
    _check_frames(frames, "frames")
    if flows is None:
        flows = truth_flows(frames if truth is None else truth)
    if len(flows) != len(frames) - 1:
        raise ValueError(f"`flows` must hold {len(frames) - 1} pairs, got {len(flows)}")
    errors = []
    for (forward, backward), before, after in zip(flows, frames[:-1], frames[1:], strict=True):
        if forward.shape != (*before.shape[:2], 2) or backward.shape != forward.shape:
            raise ValueError(
                f"flows must be (H, W, 2) of the frames' size {before.shape[:2]}, got "
                f"{forward.shape} and {backward.shape}"
            )
        warped, _ = _pull(after.astype(np.float32) / 255, forward.astype(np.float32))
        visible = visible_mask(forward, backward)
        if not visible.any():
            continue
        squared = ((warped - before.astype(np.float32) / 255) ** 2).sum(axis=-1)
        errors.append(float(squared[visible].sum() / (3 * visible.sum())))
    return float(np.mean(errors)) if errors else 0.0


def lab_of(frame: np.ndarray) -> np.ndarray:
    """CIE Lab (H, W, 3) float32 of an 8-bit RGB frame: L 0-100, a and b in Lab units."""
    return cv2.cvtColor(frame.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)


def static_chroma_flicker(
    frames: Sequence[np.ndarray],
    static_lightness: float = STATIC_LIGHTNESS,
    flows: Sequence[tuple[np.ndarray, np.ndarray]] | None = None,
) -> float:
    """Mean Lab ab distance |ab_t - ab_{t-1}| over the pixels whose lightness changed by
    less than `static_lightness` L units (so that real motion is not counted), over all
    pairs of consecutive frames. Compare it with the true video's own value: what a
    colourizer adds beyond that is flicker.

    With `flows` (`truth_flows` of the true video) each frame is first warped back onto the
    one before it along the true motion, and only pixels visible in both count: in a pan,
    a textured truth changes colour under a fixed pixel even where its lightness does not,
    which the plain measure would count as the truth's own flicker."""
    _check_frames(frames, "frames")
    if flows is not None and len(flows) != len(frames) - 1:
        raise ValueError(f"`flows` must hold {len(frames) - 1} pairs, got {len(flows)}")
    total, count = 0.0, 0
    previous = lab_of(frames[0])
    for index, frame in enumerate(frames[1:]):
        current = lab_of(frame)
        compared = current
        usable = np.ones(current.shape[:2], dtype=bool)
        if flows is not None:
            forward, backward = flows[index]
            compared, _ = _pull(current, forward.astype(np.float32))
            usable = visible_mask(forward, backward)
        still = usable & (np.abs(compared[..., 0] - previous[..., 0]) < static_lightness)
        distance = np.linalg.norm(compared[..., 1:] - previous[..., 1:], axis=-1)
        total += float(distance[still].sum())
        count += int(still.sum())
        previous = current
    return total / count if count else 0.0
