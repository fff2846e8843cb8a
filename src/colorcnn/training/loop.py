"""The training loop: train_one_epoch, evaluate, and fit with checkpoints, pictures and resume."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from colorcnn.color.palette import check_palette, fit_palette, load_palette
from colorcnn.data.cache import default_cache_dir
from colorcnn.data.cifar import IMAGE_SIDE as CIFAR_SIDE
from colorcnn.data.datasets import load_course_data, resolve_categories
from colorcnn.errors import ColorcnnError, first_line
from colorcnn.evaluation.evaluate import TrueImages, evaluate
from colorcnn.files import atomic_open, write_json
from colorcnn.formulations import Formulation, build_formulation, default_target
from colorcnn.formulations.base import images_per_chunk
from colorcnn.models import create_model, model_entry, model_objective
from colorcnn.runtime import fast_layout, resolve_device, set_determinism
from colorcnn.trained import checkpoint as ckpt
from colorcnn.training import distributed
from colorcnn.training.config import TrainConfig
from colorcnn.training.pictures import save_loss_curves, save_prediction_grid

PICTURE_IMAGES = 10  # the course's grids show 10 validation images
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"


@dataclass
class RunPaths:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def metrics(self) -> Path:
        return self.root / METRICS_FILE

    @property
    def palette(self) -> Path:
        return self.root / "palette.json"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def pictures(self) -> Path:
        return self.root / "pictures"

    @property
    def loss_curves(self) -> Path:
        return self.root / "loss_curves.png"

    def picture(self, epoch: int) -> Path:
        return self.pictures / f"epoch_{epoch:03d}.png"


class NonFiniteLoss(ColorcnnError):
    """The loss became NaN or infinite; nothing of that step was applied or saved."""


def train_one_epoch(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    formulation: Formulation,
    batch_size: int,
    order: torch.Tensor | None = None,
    progress: tqdm | None = None,
    group: distributed.Group | None = None,
) -> float:
    """One pass over the training set; returns the mean of the per-batch losses.

    With a process `group`, each process trains on its share of every batch and the
    gradients are summed, so that each step is the step on the whole batch."""
    model.train()
    losses: list[float] = []
    for start in range(0, len(inputs), batch_size):
        if order is None:
            batch = slice(start, start + batch_size)
            batch_inputs, batch_targets = inputs[batch], targets[batch]
        else:
            indices = order[start : start + batch_size]
            batch_inputs, batch_targets = inputs[indices], targets[indices]
        optimizer.zero_grad(set_to_none=True)
        if group is None:
            loss = formulation.loss(model(batch_inputs), batch_targets)
            value = loss.item()
            if math.isfinite(value):
                loss.backward()
        else:
            whole = len(batch_inputs)
            batch_inputs = distributed.share(batch_inputs, group)
            batch_targets = distributed.share(batch_targets, group)
            outputs = model(batch_inputs)  # every process runs it: batch norm shares sums
            if len(batch_inputs):
                loss = formulation.loss(outputs, batch_targets) * (len(batch_inputs) / whole)
            else:
                loss = outputs.sum() * 0.0
            loss.backward()
            value = distributed.sum_gradients_and_loss(model, loss.item())
        if not math.isfinite(value):
            # Stepping on it would poison every weight; the run stops with its last good
            # checkpoint (saved at the end of the previous epoch) untouched.
            raise NonFiniteLoss(
                f"the training loss became {value} at batch {start // batch_size + 1}; "
                "the run stops and keeps its last good checkpoint (try a lower --lr)"
            )
        optimizer.step()
        losses.append(value)
        if progress is not None:
            progress.update(len(batch_inputs))
            progress.set_postfix(loss=f"{losses[-1]:.4f}")
    return sum(losses) / len(losses)


def _in_chunks(convert: Callable[[torch.Tensor], torch.Tensor], rgb: torch.Tensor) -> torch.Tensor:
    """`convert` over a whole set a chunk at a time, so that its temporaries stay small."""
    step = images_per_chunk(rgb)
    return torch.cat([convert(rgb[start : start + step]) for start in range(0, len(rgb), step)])


def _write_metrics(paths: RunPaths, history: list[dict]) -> None:
    # Rewritten whole each epoch, so the file always matches a checkpointed history.
    with atomic_open(paths.metrics) as handle:
        for record in history:
            handle.write(json.dumps(record, sort_keys=True) + "\n")


def _save_picture(
    paths: RunPaths,
    model: torch.nn.Module,
    formulation: Formulation,
    inputs: torch.Tensor,
    truth_rgb: torch.Tensor,
    epoch: int,
    record: dict,
    model_name: str,
) -> None:
    inputs = inputs[:PICTURE_IMAGES]
    truth_rgb = truth_rgb[:PICTURE_IMAGES]
    with torch.inference_mode():
        model.eval()
        rows = formulation.picture_rows(model(inputs), inputs, truth_rgb)
    save_prediction_grid(
        rows,
        paths.picture(epoch),
        f"{model_name} ({formulation.name}), epoch {epoch}: val loss {record['val_loss']:.4f}, "
        f"val acc {record['val_acc']:.1f}%, PSNR {record['psnr']:.2f} dB",
    )


@contextlib.contextmanager
def _removed_if_left_empty(folder: Path | None) -> Iterator[None]:
    """On failure, remove `folder` (with its sub-folders) if no file was written into it:
    a run that never started leaves no empty folders behind."""
    try:
        yield
    except BaseException:
        if folder is not None and folder.is_dir():
            inside = sorted(folder.rglob("*"), key=lambda path: len(path.parts), reverse=True)
            if not any(path.is_file() for path in inside):
                for path in inside:
                    path.rmdir()
                folder.rmdir()
        raise


def _check_image_side(config: TrainConfig) -> None:
    with torch.device("meta"):
        multiple = create_model(config.model).size_multiple
    side = CIFAR_SIDE if config.dataset == "cifar10" else config.crop_size
    if side % multiple:
        what = "CIFAR-10 images" if config.dataset == "cifar10" else "--crop-size"
        raise ColorcnnError(
            f"model {config.model} needs image sides that are multiples of {multiple}; "
            f"{what} gives {side} px"
        )


def _check_pretrained_weights(model_name: str) -> None:
    """Fail before minutes of data loading where a pretrained encoder's weights are missing."""
    with torch.device("meta"):
        probe = create_model(model_name)
    pretrained_source = getattr(probe, "pretrained_source", None)
    if pretrained_source is not None:
        pretrained_source()


def _give_state_the_layout_of_the_weights(optimizer: torch.optim.Optimizer) -> None:
    """Checkpoints hold the optimizer's moments in the standard layout, and a channels-last
    weight's moments must be channels-last again for torch's fused Adam: on a CPU it reads a
    moment's memory in its weight's order, whatever the moment's own strides (a resumed run
    then drifted from the unbroken one), and on CUDA it refuses moments of another layout."""
    for group in optimizer.param_groups:
        for weight in group["params"]:
            state = optimizer.state.get(weight, {})
            for key, value in state.items():
                if isinstance(value, torch.Tensor) and value.shape == weight.shape:
                    state[key] = torch.empty_like(weight).copy_(value)


def pretrained_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The weights of a pretrained encoder, for models that have one (else none)."""
    encoder_parameters = getattr(model, "encoder_parameters", None)
    return list(encoder_parameters()) if encoder_parameters is not None else []


def parameter_groups(model: torch.nn.Module, lr: float, encoder_lr_scale: float) -> list[dict]:
    """One optimizer group, or two where a pretrained encoder learns at its own rate."""
    pretrained = {id(weight) for weight in pretrained_parameters(model)}
    if not pretrained:
        return [{"params": list(model.parameters())}]
    rest = [weight for weight in model.parameters() if id(weight) not in pretrained]
    encoder = [weight for weight in model.parameters() if id(weight) in pretrained]
    return [{"params": rest}, {"params": encoder, "lr": lr * encoder_lr_scale}]


def check_run_folder(folder: Path) -> None:
    if not Path(folder).is_dir():
        raise ColorcnnError(f"--resume expects a run folder made by `colorcnn train`, got {folder}")


def fit(
    config: TrainConfig,
    *,
    resume: bool = False,
    cache_dir: Path | None = None,
    show_progress: bool = True,
    log: Callable[[str], None] = print,
    finished: Callable[[torch.nn.Module], None] | None = None,
) -> list[dict]:
    """Train `config.model` as the course does; returns the per-epoch metrics.

    With `resume`, the run folder's `last` checkpoint restores the weights, optimizer, RNG,
    palette and history, and training continues at the next epoch up to `config.epochs`.
    Started by torchrun with several processes, it trains data-parallel
    (colorcnn.training.distributed); `finished` receives the trained network.
    """
    group, device = distributed.start(resolve_device(config.device))
    try:
        return _fit(config, resume, cache_dir, show_progress, log, finished, group, device)
    finally:
        distributed.stop(group)


def _fit(
    config: TrainConfig,
    resume: bool,
    cache_dir: Path | None,
    show_progress: bool,
    log: Callable[[str], None],
    finished: Callable[[torch.nn.Module], None] | None,
    group: distributed.Group | None,
    device: torch.device,
) -> list[dict]:
    main_process = group is None or group.is_main
    if not main_process:  # one voice and one writer: rank 0
        log, show_progress = (lambda _: None), False
    paths = RunPaths(Path(config.out))
    model_entry(config.model)  # fail on a bad name before minutes of data loading
    _check_image_side(config)
    if not resume:
        _check_pretrained_weights(config.model)
    if config.dataset == "cifar10":
        resolve_categories(config.category)
    set_determinism(config.deterministic)

    if resume:
        check_run_folder(paths.root)
    resumed = ckpt.load_checkpoint(paths.root, prefer="last") if resume else None
    if resumed is not None:
        epochs_done = resumed.info["epoch"] + 1
        if config.epochs <= epochs_done:
            raise ColorcnnError(
                f"{paths.root} has trained {epochs_done} epochs already; expected --epochs "
                f"above {epochs_done} to continue it, got {config.epochs}"
            )
        saved = TrainConfig.from_dict(resumed.info["train_config"])
        # The run's own settings, but for the epoch budget, the device, the folder and, when
        # given, where the data now lies.
        overrides = {"epochs": config.epochs, "device": config.device, "out": config.out}
        if config.data is not None:
            overrides["data"] = config.data
        config = TrainConfig.from_dict({**saved.to_dict(), **overrides})
    made_folder = None  # the outermost folder this run created, removed again if it fails
    if resumed is None and main_process:
        if paths.checkpoints.exists() and any(paths.checkpoints.iterdir()):
            raise ColorcnnError(
                f"{paths.root} already holds a run; pass --resume to continue it or choose a "
                "new --out"
            )
        missing = [folder for folder in (paths.root, *paths.root.parents) if not folder.exists()]
        made_folder = missing[-1] if missing else None
        try:  # before minutes of data loading, so that a bad --out fails at once
            paths.root.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ColorcnnError(
                f"cannot create the run folder {paths.root} ({error.strerror}); expected a "
                "writable folder path for --out"
            ) from error

    with distributed.main_process_first(group), _removed_if_left_empty(made_folder):
        data = load_course_data(config.data_settings(), cache_dir, show_progress)
        if resumed is not None:
            palette = check_palette(torch.tensor(resumed.info["palette"], dtype=torch.float32))
        elif config.palette_file is not None:
            palette = load_palette(config.palette_file)
        else:
            palette = fit_palette(
                data.train_rgb,
                config.num_colours,
                seed=config.seed,
                cache_dir=cache_dir if cache_dir is not None else default_cache_dir(),
            )
    for name in ("train_rgb", "test_rgb"):
        setattr(data, name, getattr(data, name).to(device))
    palette = palette.to(device)

    objective = model_objective(config.model)
    target = config.target or default_target(objective, config.dataset, config.task)
    config = dataclasses.replace(config, target=target)  # config.json names what was trained
    formulation = build_formulation(
        target,
        palette,
        train_rgb=data.train_rgb,
        described=resumed.info.get("formulation") if resumed is not None else None,
        temperature=config.temperature,
        regression_loss=config.regression_loss,
        rebalance=config.rebalance,
        scale=config.scale if config.task == "superres" else None,
    )
    # Inputs and targets are computed once and stay resident: no per-batch colour maths.
    train_inputs = _in_chunks(formulation.inputs, data.train_rgb)
    train_targets = _in_chunks(formulation.training_targets, data.train_rgb)
    train_count = len(data.train_rgb)
    # Inputs and targets hold all training needs; the RGB copy would only hold memory (6 GB
    # for 50000 CIFAR-10 images at 96 px).
    del data.train_rgb
    test_inputs = _in_chunks(formulation.inputs, data.test_rgb)
    test_targets = _in_chunks(formulation.training_targets, data.test_rgb)
    if config.channels_last:
        train_inputs, test_inputs = fast_layout(train_inputs), fast_layout(test_inputs)
    # What scoring needs of the true test images, once for the run instead of every epoch.
    test_truth = TrueImages.prepare(data.test_rgb, formulation.palette, config.batch_size)

    model_args: dict = {"kernel": config.kernel, "in_channels": formulation.in_channels}
    model_args["out_channels"] = formulation.out_channels
    colour_width = config.resolved_colour_width(formulation.out_channels)
    if colour_width is not None:
        model_args["colour_width"] = colour_width
    if config.num_filters is not None:
        model_args["num_filters"] = config.num_filters
    torch.manual_seed(config.seed)
    model = create_model(config.model, **model_args)
    pretrained = pretrained_parameters(model)
    if pretrained and resumed is None:  # a resumed run restores its own weights
        model.load_pretrained_encoder()
    model = model.to(device)
    if config.channels_last:
        model = fast_layout(model)
    if group is not None:  # before the optimizer, which holds the parameters
        distributed.share_batch_norm(model)
    # One fused kernel for every weight's update instead of a loop over them (1.5 -> 0.4 ms a
    # step for the UNet, 11 -> 2.7 ms for the PhotoUNet on 2 cores).
    fused = device.type in ("cpu", "cuda")  # where torch has the fused kernel
    optimizer = torch.optim.Adam(
        parameter_groups(model, config.lr, config.encoder_lr_scale), lr=config.lr, fused=fused
    )

    history: list[dict] = []
    best_val_loss = float("inf")
    start_epoch = 0
    if resumed is not None:
        if resumed.optimizer_state is None:
            raise ColorcnnError(
                f"{paths.root}: the last checkpoint has no optimizer state to resume"
            )
        try:
            model.load_state_dict(resumed.model_state)
            optimizer.load_state_dict(resumed.optimizer_state)
            _give_state_the_layout_of_the_weights(optimizer)
            if resumed.torch_rng_state is not None:
                torch.set_rng_state(resumed.torch_rng_state)
            history = resumed.info["history"]
            best_val_loss = resumed.info["best_val_loss"]
            start_epoch = resumed.info["epoch"] + 1
        except (RuntimeError, KeyError, TypeError, ValueError) as error:
            raise ColorcnnError(
                f"{paths.root}: the last checkpoint cannot be resumed ({first_line(error)})"
            ) from error
        log(f"Resuming {paths.root} at epoch {start_epoch + 1} of {config.epochs}")
    if main_process:  # on resume too: the epoch budget, device or data folder may be new
        write_json(paths.config, config.to_dict())
    if resumed is None and main_process:
        write_json(paths.palette, {"scale": "rgb / 256", "colours": palette.cpu().tolist()})

    data_name = f"category {config.category!r}" if config.dataset == "cifar10" else config.dataset
    log(
        f"Training {config.model} ({formulation.name}) on {train_count} train / "
        f"{len(data.test_rgb)} val images of {data_name} "
        f"({sum(p.numel() for p in model.parameters()):,} weights, "
        f"{device.type}"
        + (f" x {group.world_size} processes" if group is not None else "")
        + f", data ready in {data.load_seconds:.1f} s)"
    )
    base_info = {
        "model": config.model,
        "model_args": model.hyperparameters,
        "objective": objective,
        "target": formulation.name,
        "formulation": formulation.describe(),
        "palette": palette.cpu().tolist(),
        "data": config.data_settings().to_dict(),
        "train_config": config.to_dict(),
    }
    for epoch in range(start_epoch, config.epochs):
        started = time.perf_counter()
        # Decided by the epoch alone, so a resumed run freezes and thaws as the unbroken one.
        for weight in pretrained:
            weight.requires_grad_(epoch >= config.frozen_epochs)
        order = None
        if config.shuffle_each_epoch:
            # A generator per (seed, epoch), so a resumed run draws the same order again.
            generator = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch)
            order = torch.randperm(len(train_inputs), generator=generator).to(device)
        with tqdm(
            total=len(train_inputs),
            desc=f"Epoch {epoch + 1}/{config.epochs}",
            unit="img",
            leave=False,
            disable=not show_progress,
        ) as progress:
            try:
                train_loss = train_one_epoch(
                    model, optimizer, train_inputs, train_targets, formulation,
                    config.batch_size, order, progress, group,
                )  # fmt: skip
            except NonFiniteLoss as error:
                raise NonFiniteLoss(f"epoch {epoch + 1}: {error}") from None
        train_seconds = time.perf_counter() - started
        scores = evaluate(
            model, test_inputs, test_targets, test_truth, formulation, config.batch_size
        )
        record = {
            "epoch": epoch,
            "train_loss": train_loss,
            **scores,
            "seconds": time.perf_counter() - started,
            "train_images_per_second": len(train_inputs) / train_seconds,
        }
        history.append(record)
        log(
            f"Epoch [{epoch + 1}/{config.epochs}], Val Loss: {record['val_loss']:.4f}, "
            f"Val Acc: {record['val_acc']:.1f}% | Train Loss: {train_loss:.4f} | "
            f"PSNR {record['psnr']:.2f} dB | colourfulness {record['colourfulness']:.1f} "
            f"(truth {record['colourfulness_truth']:.1f}) | {record['seconds']:.1f} s"
        )
        if not main_process:
            continue
        _write_metrics(paths, history)
        if config.picture_every and (
            epoch % config.picture_every == 0 or epoch == config.epochs - 1
        ):
            _save_picture(
                paths, model, formulation, test_inputs, data.test_rgb, epoch, record, config.model
            )
        is_best = record["val_loss"] < best_val_loss
        best_val_loss = min(best_val_loss, record["val_loss"])
        info = {
            **base_info,
            "epoch": epoch,
            "metrics": record,
            "history": history,
            "best_val_loss": best_val_loss,
        }
        if is_best:
            ckpt.save_checkpoint(paths.checkpoints / "best", model, info)
        ckpt.save_checkpoint(paths.checkpoints / "last", model, info, optimizer)

    if finished is not None:
        finished(model)
    if history and main_process:
        save_loss_curves(
            history, paths.loss_curves, f"{config.model} ({formulation.name}), {data_name}"
        )
        best = min(history, key=lambda r: r["val_loss"])
        picture = paths.picture(best["epoch"])
        shown = f" (pictures/{picture.name})" if picture.is_file() else ""
        log(
            f"Best: epoch {best['epoch'] + 1}/{config.epochs}{shown}, val loss "
            f"{best['val_loss']:.4f}, val acc {best['val_acc']:.1f}%; run saved in {paths.root}"
        )
    return history
