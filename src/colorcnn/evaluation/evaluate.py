"""Scoring a model over a whole split: the course's loss and accuracy, and the field's metrics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from colorcnn.color.abbins import ABBins, positive_temperature
from colorcnn.color.palette import nearest_colour
from colorcnn.color.spaces import (
    course_rgb,
    join_lightness_and_ab,
    rgb_to_lab,
    true_lightness,
    unit_rgb,
)
from colorcnn.data.datasets import load_course_data
from colorcnn.errors import ColorcnnError, SettingError
from colorcnn.evaluation import metrics
from colorcnn.formulations import Formulation
from colorcnn.models.folding import fold_batch_norm
from colorcnn.runtime import check_precision, resolve_precision, run_network
from colorcnn.trained import load_model


@dataclass
class _Totals:
    """Running sums over batches, so that no split-sized output tensor is ever held."""

    losses: list[float] = field(default_factory=list)
    correct: int = 0
    pixels: int = 0
    psnr: list[torch.Tensor] = field(default_factory=list)
    psnr_raw: list[torch.Tensor] = field(default_factory=list)
    ssim: list[torch.Tensor] = field(default_factory=list)
    colourfulness: list[torch.Tensor] = field(default_factory=list)
    colourfulness_truth: list[torch.Tensor] = field(default_factory=list)
    ab_errors: list[torch.Tensor] = field(default_factory=list)
    truth_ab: list[torch.Tensor] = field(default_factory=list)
    baseline_psnr: list[torch.Tensor] = field(default_factory=list)
    baseline_ssim: list[torch.Tensor] = field(default_factory=list)

    def add_pictures(
        self,
        predicted: torch.Tensor,
        truth: torch.Tensor,
        full: bool,
        raw: torch.Tensor | None,
        truth_colourfulness: torch.Tensor,  # of `truth`, from TrueImages
    ) -> None:
        self.psnr.append(metrics.psnr_per_image(predicted, truth))
        self.colourfulness.append(metrics.colourfulness(predicted))
        self.colourfulness_truth.append(truth_colourfulness)
        if full:
            self.ssim.append(metrics.ssim_per_image(predicted, truth))
            self.ab_errors.append(metrics.ab_errors(predicted, truth).cpu())
            self.truth_ab.append(rgb_to_lab(truth)[:, 1:].cpu())
            if raw is not None:
                self.psnr_raw.append(metrics.psnr_per_image(raw, truth))

    def summary(self) -> dict[str, float]:
        result: dict[str, float] = {}
        if self.losses:
            result["val_loss"] = sum(self.losses) / len(self.losses)
        result["val_acc"] = metrics.accuracy_percent(self.correct, self.pixels)
        result["psnr"] = float(torch.cat(self.psnr).mean())
        predicted_cf = float(torch.cat(self.colourfulness).mean())
        truth_cf = float(torch.cat(self.colourfulness_truth).mean())
        result["colourfulness"] = predicted_cf
        result["colourfulness_truth"] = truth_cf
        result["colourfulness_gap"] = truth_cf - predicted_cf
        if self.ssim:
            result["ssim"] = float(torch.cat(self.ssim).mean())
            errors = torch.cat(self.ab_errors)
            bins = ABBins.in_gamut()
            truth_bins = bins.nearest(torch.cat(self.truth_ab))
            result["auc"] = metrics.error_curve_auc(errors)
            weights = metrics.rebalanced_pixel_weights(truth_bins, bins.num_bins)
            result["auc_rebalanced"] = metrics.error_curve_auc(errors, weights)
        if self.psnr_raw:
            result["psnr_raw"] = float(torch.cat(self.psnr_raw).mean())
        if self.baseline_psnr:  # super-resolution: bicubic, or the course's bilinear
            result["psnr_baseline"] = float(torch.cat(self.baseline_psnr).mean())
        if self.baseline_ssim:
            result["ssim_baseline"] = float(torch.cat(self.baseline_ssim).mean())
        return result


@dataclass(frozen=True, eq=False)
class TrueImages:
    """What scoring needs of a split's true images, computed once (`prepare`) instead of
    in every epoch's evaluation: they never change, and finding each true pixel's nearest
    palette colour alone costs a fifth of an evaluation."""

    rgb: torch.Tensor  # course scale (N, 3, H, W)
    palette: torch.Tensor  # the palette that `colour_indices` refer to
    colour_indices: torch.Tensor  # (N, H, W) nearest palette colour of each pixel
    lightness: torch.Tensor  # (N, 1, H, W) Lab L
    colourfulness: torch.Tensor  # (N,)

    @classmethod
    @torch.inference_mode()
    def prepare(cls, rgb: torch.Tensor, palette: torch.Tensor, batch_size: int = 100):
        indices, lightness, colourfulness = [], [], []
        for start in range(0, len(rgb), batch_size):
            batch = rgb[start : start + batch_size]
            indices.append(nearest_colour(batch, palette)[:, 0])
            lightness.append(true_lightness(batch))
            colourfulness.append(metrics.colourfulness(unit_rgb(batch)))
        return cls(rgb, palette, torch.cat(indices), torch.cat(lightness), torch.cat(colourfulness))


@torch.inference_mode()
def evaluate(
    model: torch.nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    truth_rgb: torch.Tensor | TrueImages,
    formulation: Formulation,
    batch_size: int = 100,
    full: bool = False,
    precision: str = "fp32",
) -> dict[str, float]:
    """Loss (mean of per-batch losses, as the course averages it), the course's accuracy,
    and PSNR and colourfulness of the reconstruction with the true lightness (for
    super-resolution, of the prediction itself, beside its baseline's PSNR).

    `truth_rgb` is course-scale RGB (N, 3, H, W), or those images already prepared
    (`TrueImages.prepare`, as training does once per run). With `full`, also SSIM, the AuC
    of the ab-error curve (plain and rebalanced) and, where the formulation predicts whole
    colours, the PSNR of its raw picture (`psnr_raw`). `precision` (fp32, bf16 or fp16,
    resolved) is the network's; losses and metrics are computed in fp32.
    """
    device = next(model.parameters()).device
    if isinstance(truth_rgb, TrueImages):
        truth = truth_rgb
        if not torch.equal(truth.palette.cpu(), formulation.palette.cpu()):
            raise ColorcnnError(
                f"the true images were prepared with another palette ({len(truth.palette)} "
                f"colours) than the formulation's ({len(formulation.palette)} colours); "
                "expected the same palette"
            )
    else:
        truth = TrueImages.prepare(truth_rgb.to(device), formulation.palette.to(device))
    network = fold_batch_norm(model)  # the same function, faster; `model` stays as it is
    totals = _Totals()
    for start in range(0, len(inputs), batch_size):
        batch = slice(start, start + batch_size)
        batch_inputs = inputs[batch].to(device)
        batch_truth = truth.rgb[batch].to(device)
        batch_unit = formulation.scored_truth(unit_rgb(batch_truth))
        outputs = run_network(network, batch_inputs, precision)
        totals.losses.append(float(formulation.loss(outputs, targets[batch].to(device))))
        lightness = truth.lightness[batch].to(device)
        indices, predicted, raw = formulation.decode_for_scoring(
            outputs, batch_inputs, lightness, own_picture=full
        )
        truth_indices = truth.colour_indices[batch].to(device)
        totals.correct += metrics.correct_pixels(indices, truth_indices)
        totals.pixels += truth_indices.numel()
        totals.add_pictures(predicted, batch_unit, full, raw, truth.colourfulness[batch])
        if formulation.task == "superres":
            baseline = formulation.baseline_rgb(batch_truth)
            totals.baseline_psnr.append(metrics.psnr_per_image(baseline, batch_unit))
            if full:
                totals.baseline_ssim.append(metrics.ssim_per_image(baseline, batch_unit))
    return totals.summary()


@torch.inference_mode()
def evaluate_baselines(
    truth_rgb: torch.Tensor,
    train_rgb: torch.Tensor,
    palette: torch.Tensor,
    batch_size: int = 100,
    show_progress: bool = False,
) -> dict[str, dict[str, float]]:
    """Colourizers without a network, for context.

    - `grey`: no colour at all (ab = 0) with the true lightness;
    - `mean_training_colour`: the mean training chroma everywhere, with the true lightness;
    - `course_grey`: the course's grey input itself (the mean of R, G and B in every
      channel). It is the grey closest to the truth in RGB, so it scores the highest PSNR
      of any grey picture, though its lightness is not the photo's.

    The grey pictures score a high course accuracy: many true pixels are of low chroma (44%
    of the CIFAR-10 test horses' pixels have a chroma below 10, 74% below 20), and a grey
    pixel of the true lightness snaps to the same palette colour as they do, so a picture
    without colour is often "right" at 24 colours (grey: 52.6% against the course UNet's
    48.4%). PSNR, the AuC and the
    colourfulness gap tell a model from grey; the course's accuracy alone does not.
    """
    mean_ab = rgb_to_lab(unit_rgb(train_rgb))[:, 1:].mean(dim=(0, 2, 3))  # (2,)

    def with_chroma(ab_value: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        def predict(truth: torch.Tensor) -> torch.Tensor:
            ab = ab_value.to(truth).view(1, 2, 1, 1).expand(len(truth), 2, *truth.shape[-2:])
            return join_lightness_and_ab(true_lightness(truth), ab)

        return predict

    def course_grey_picture(truth: torch.Tensor) -> torch.Tensor:
        return unit_rgb(truth).mean(dim=1, keepdim=True).expand(-1, 3, -1, -1)

    baselines = {
        "grey": with_chroma(torch.zeros(2)),
        "mean_training_colour": with_chroma(mean_ab),
        "course_grey": course_grey_picture,
    }
    prepared = TrueImages.prepare(truth_rgb, palette, batch_size)  # once for every baseline
    results = {}
    progress = tqdm(
        total=len(baselines) * len(truth_rgb),
        desc="Baselines",
        unit="img",
        leave=False,
        disable=not show_progress,
    )
    for name, predict in baselines.items():
        totals = _Totals()
        for start in range(0, len(truth_rgb), batch_size):
            progress.update(len(truth_rgb[start : start + batch_size]))
            batch = slice(start, start + batch_size)
            truth = truth_rgb[batch]
            predicted = predict(truth)
            predicted_indices = nearest_colour(course_rgb(predicted), palette)[:, 0]
            truth_indices = prepared.colour_indices[batch]
            totals.correct += metrics.correct_pixels(predicted_indices, truth_indices)
            totals.pixels += truth_indices.numel()
            totals.add_pictures(
                predicted, unit_rgb(truth), full=True, raw=None,
                truth_colourfulness=prepared.colourfulness[batch],
            )  # fmt: skip
        results[name] = totals.summary()
    progress.close()
    return results


def evaluate_checkpoint(
    checkpoint_path: str | Path,
    data: str | None = None,
    *,
    prefer: str = "best",
    batch_size: int = 100,
    cache_dir: Path | None = None,
    device: str = "cpu",
    temperature: float | None = None,
    chroma_gain: float | None = None,
    baselines: bool = True,
    cifar_data: str | None = None,
    show_progress: bool = True,
    precision: str | None = None,
) -> dict:
    """Every metric of a saved model on the test split of its category, and the baselines.

    The palette, formulation, category and shuffle seed come from the checkpoint, so the
    numbers are those of training; `data` and `cifar_data` override only where the images
    are read from. `precision` is the network's; None, the default, takes the run's own
    (fp32 for runs from before mixed precision, and for an fp16 run away from CUDA), so
    that the numbers are those of training; the result names the one used.
    """
    if batch_size < 1:
        raise SettingError(f"`batch_size` must be a positive integer, got {batch_size}")
    if temperature is not None:
        positive_temperature(temperature)
    if precision is not None:
        check_precision(precision)
    # Unfolded: evaluate() folds batch norm on the device itself, as training's scores do.
    trained = load_model(
        checkpoint_path, prefer=prefer, fold=False, device=device,
        temperature=temperature, chroma_gain=chroma_gain,
    )  # fmt: skip
    if trained.runtime != "torch":
        raise ColorcnnError(f"{checkpoint_path} is an ONNX file; expected a PyTorch checkpoint")
    model, formulation, info = trained.network, trained.formulation, trained.info
    palette = formulation.palette
    precision = _scoring_precision(precision, info, palette.device)  # before the data loads
    settings = trained.data_settings(data, cifar_data)
    tensor_path = trained.source
    target_device = palette.device
    course_data = load_course_data(settings, cache_dir, show_progress)
    test_rgb = course_data.test_rgb.to(target_device)
    scores = evaluate(
        model,
        formulation.inputs(test_rgb),
        formulation.training_targets(test_rgb),
        test_rgb,
        formulation,
        batch_size,
        full=True,
        precision=precision,
    )
    result = {
        "checkpoint": str(tensor_path),
        "model": info["model"],
        "target": formulation.name,
        "epoch": info["epoch"],
        "category": settings.category if settings.dataset == "cifar10" else "held-out photo views",
        "num_images": len(test_rgb),
        "precision": precision,
        **scores,
    }
    if baselines:
        result["baselines"] = evaluate_baselines(
            course_data.test_rgb, course_data.train_rgb, palette.cpu(), batch_size, show_progress
        )
    return result


def _scoring_precision(asked: str | None, info: dict, device: torch.device) -> str:
    """The precision to score in: the one asked for, else the run's own where `device` can
    compute it (an fp16 run is scored in fp32 away from CUDA)."""
    if asked is not None:
        return resolve_precision(asked, device)
    own = info.get("train_config", {}).get("precision", "fp32")
    if own == "fp16" and device.type != "cuda":
        return "fp32"
    return resolve_precision(own, device)
