"""The training loop, after torchvision's reference scripts: train_one_epoch passes over
the data once; fit settles the run (new or resumed), prepares the data and its formulation,
creates the model and optimizer, then trains epoch by epoch, ending each with its metrics,
picture and checkpoints."""

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
from colorcnn.data.datasets import CourseData, load_course_data, resolve_categories
from colorcnn.errors import ColorcnnError, SettingError, first_line
from colorcnn.evaluation.evaluate import TrueImages, evaluate
from colorcnn.files import atomic_open, write_json
from colorcnn.formulations import (
    Formulation,
    build_formulation,
    default_target,
    formulation_class,
)
from colorcnn.formulations.base import images_per_chunk
from colorcnn.models import create_model, list_models, model_entry, model_objective
from colorcnn.runtime import (
    fast_layout,
    resolve_device,
    resolve_precision,
    run_network,
    set_determinism,
)
from colorcnn.trained import checkpoint as ckpt
from colorcnn.trained.model import default_working_size, trained_image_side
from colorcnn.training import distributed
from colorcnn.training.config import TrainConfig, continued_config, read_last_checkpoint
from colorcnn.training.pictures import save_loss_curves, save_prediction_grid
from colorcnn.training.warm_start import WarmStart, warm_start

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


class NonFiniteLoss(SettingError):
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
    generator: torch.Generator | None = None,
    precision: str = "fp32",
    scaler: torch.amp.GradScaler | None = None,
) -> float:
    """One pass over the training set; returns the mean of the per-batch losses.

    With a process `group`, `model` is the network in DistributedDataParallel
    (distributed.data_parallel): each process trains on its share of every batch and the
    gradients are summed, so that each step is the step on the whole batch. `generator`
    draws what the formulation adds to each batch (colour hints), the same in every
    process. `precision` (fp32, bf16 or fp16, resolved) is the forward pass's; the loss is
    always computed in fp32, and fp16 takes a gradient `scaler` so that small gradients do
    not underflow."""
    model.train()
    device = inputs.device
    losses: list[float] = []
    for start in range(0, len(inputs), batch_size):
        if order is None:
            batch = slice(start, start + batch_size)
            batch_inputs, batch_targets = inputs[batch], targets[batch]
        else:
            indices = order[start : start + batch_size]
            batch_inputs, batch_targets = inputs[indices], targets[indices]
        if generator is not None:
            batch_inputs = formulation.prepare_batch(batch_inputs, batch_targets, generator)
        optimizer.zero_grad(set_to_none=True)
        if group is None:
            loss = formulation.loss(run_network(model, batch_inputs, precision), batch_targets)
            value = loss.item()
            if math.isfinite(value):
                _backward(loss, scaler)
        else:
            whole = len(batch_inputs)
            batch_inputs = distributed.share(batch_inputs, group)
            batch_targets = distributed.share(batch_targets, group)
            # Every process runs it, an empty share too: batch norm shares sums.
            outputs = run_network(model, batch_inputs, precision)
            if len(batch_inputs):
                loss = formulation.loss(outputs, batch_targets)
                loss = loss * (len(batch_inputs) / whole)
            else:
                loss = outputs.sum() * 0.0
            _backward(loss, scaler)  # DDP sums the gradients meanwhile
            value = distributed.summed(loss.item(), device)
        if not math.isfinite(value):
            # Stepping on it would poison every weight; the run stops with its last good
            # checkpoint (saved at the end of the previous epoch) untouched.
            raise NonFiniteLoss(
                f"the training loss became {value} at batch {start // batch_size + 1}; "
                "the run stops and keeps its last good checkpoint (try a lower `lr`)"
            )
        if scaler is None:
            optimizer.step()
        else:  # skips the step where the scaled gradients overflowed, and rescales
            scaler.step(optimizer)
            scaler.update()
        losses.append(value)
        if progress is not None:
            progress.update(len(batch_inputs))
            progress.set_postfix(loss=f"{losses[-1]:.4f}")
    return sum(losses) / len(losses)


def _backward(loss: torch.Tensor, scaler: torch.amp.GradScaler | None) -> None:
    (loss if scaler is None else scaler.scale(loss)).backward()


@dataclass
class Run:
    """A run settled: its settings (for a resumed run, its own), its folder, the checkpoint
    it continues from, and where this process trains it."""

    config: TrainConfig
    paths: RunPaths
    resumed: ckpt.Checkpoint | None  # None for a new run
    device: torch.device
    group: distributed.Group | None  # the processes torchrun started, or None for one
    made_folder: Path | None = None  # the outermost folder a new run created: removed again
    # if loading the data fails, so that a run that never started leaves no empty folders
    init_from: ckpt.Checkpoint | None = None  # the trained model a new run starts from

    @property
    def writes(self) -> bool:
        """One voice and one writer: this process prints and writes the run's files."""
        return self.group is None or self.group.is_main


@dataclass
class PreparedData:
    """The data as training and scoring read it: computed once, resident on the device."""

    formulation: Formulation
    palette: torch.Tensor  # (K, 3) on the device
    train_inputs: torch.Tensor  # (N, C_in, H, W)
    train_targets: torch.Tensor  # (N, ...) as the formulation's loss takes them
    test_inputs: torch.Tensor  # (M, C_in, H, W)
    test_targets: torch.Tensor
    test_rgb: torch.Tensor  # (M, 3, H, W): the truth the pictures show
    test_truth: TrueImages  # what scoring needs of the true test images
    load_seconds: float


@dataclass
class TrainingState:
    """What training changes, and what the `last` checkpoint keeps to resume it."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    pretrained: list[torch.nn.Parameter]  # a pretrained encoder's weights (else none)
    history: list[dict] = dataclasses.field(default_factory=list)  # a record per epoch
    best_val_loss: float = float("inf")
    start_epoch: int = 0
    warm_start: WarmStart | None = None  # what `init_from` gave the new network
    scaler: torch.amp.GradScaler | None = None  # fp16 only: scales the loss (and is resumed)
    _parallel: tuple[tuple[bool, ...], torch.nn.Module] | None = None

    def parallel_model(self, device: torch.device) -> torch.nn.Module:
        """The network in DistributedDataParallel, for the weights that train now: a new
        wrapper where a thawed (or frozen) encoder changed which ones do."""
        training = tuple(weight.requires_grad for weight in self.model.parameters())
        if self._parallel is None or self._parallel[0] != training:
            self._parallel = (training, distributed.data_parallel(self.model, device))
        return self._parallel[1]


# Settle the run.


def settle_run(
    config: TrainConfig, resume: bool, device: torch.device, group: distributed.Group | None
) -> Run:
    """Check the settings before minutes of data loading, and find the run's folder.

    A resumed run reads its last checkpoint and goes on with its own settings, but for
    those of RESUMABLE that `config` gives; a new run creates its folder, which must not
    hold a run already."""
    paths = RunPaths(Path(config.out))
    resumed = None
    if resume:
        resumed = read_last_checkpoint(paths.root, parameter="resume")
        config = continued_config(
            resumed.info, config.out, config.epochs, config.data.data, config.device
        )
    model_entry(config.model)  # fail on a bad name at once
    _check_image_side(config)
    init_from = None
    if resumed is None:  # a resumed run restores its own weights
        _check_pretrained_weights(config.model)
        init_from = _read_init_from(config)
    if config.data.dataset == "cifar10":
        resolve_categories(config.data.category)
    set_determinism(config.deterministic)
    objective = model_objective(config.model)
    target = config.target or default_target(objective, config.data.dataset, config.task)
    _check_upscaling(config, target)
    precision = _resolved_precision(config, resumed is not None, device)
    # config.json names what was trained, and in which precision: a resumed run keeps it.
    config = dataclasses.replace(config, target=target, precision=precision)
    run = Run(config, paths, resumed, device, group, init_from=init_from)
    if resumed is None and run.writes:
        run.made_folder = _make_run_folder(paths)
    return run


def _resolved_precision(config: TrainConfig, resumed: bool, device: torch.device) -> str:
    if resumed and config.precision == "fp16" and device.type != "cuda":
        raise SettingError(
            f"{config.out} trained in fp16 on CUDA; expected `device` cuda to continue it "
            f"in the same precision, got {device.type}"
        )
    return resolve_precision(config.precision, device)


def _check_image_side(config: TrainConfig) -> None:
    with torch.device("meta"):
        multiple = create_model(config.model).size_multiple
    side = trained_image_side(config.data)
    if side % multiple:
        what = "CIFAR-10 images" if config.data.dataset == "cifar10" else "`crop_size`"
        raise SettingError(
            f"model {config.model} needs image sides that are multiples of {multiple}; "
            f"{what} gives {side} px"
        )


def _check_upscaling(config: TrainConfig, target: str) -> None:
    """A target whose network upscales (superres-y) needs a model that does, and only it."""
    upscales, model_upscales = formulation_class(target).network_upscales, _upscales(config.model)
    if upscales != model_upscales:
        upscaling = ", ".join(name for name in list_models() if _upscales(name))
        raise SettingError(
            f"model {config.model} {'upscales' if model_upscales else 'keeps the image size'}; "
            f"target {target} needs "
            + (f"a model that upscales ({upscaling})" if upscales else "one that keeps it")
        )
    side = trained_image_side(config.data)
    if upscales and side % config.scale:
        raise SettingError(f"`crop_size` must be a multiple of `scale` {config.scale}, got {side}")


def _upscales(model_name: str) -> bool:
    with torch.device("meta"):
        return create_model(model_name).output_scale > 1


def _read_init_from(config: TrainConfig) -> ckpt.Checkpoint | None:
    """The model `init_from` names, read once; fails before minutes of data loading where
    it is missing or of another architecture."""
    if config.init_from is None:
        return None
    checkpoint = ckpt.load_checkpoint(config.init_from)
    trained = checkpoint.info["model"]
    if trained != config.model:
        raise SettingError(
            f"`init_from` {config.init_from} is a {trained} model; expected a {config.model} "
            f"model to start this {config.model} run from"
        )
    return checkpoint


def _check_pretrained_weights(model_name: str) -> None:
    """Fail before minutes of data loading where a pretrained encoder's weights are missing."""
    with torch.device("meta"):
        probe = create_model(model_name)
    pretrained_source = getattr(probe, "pretrained_source", None)
    if pretrained_source is not None:
        pretrained_source()


def _make_run_folder(paths: RunPaths) -> Path | None:
    """Create a new run's folder; returns the outermost folder that did not exist."""
    if paths.checkpoints.exists() and any(paths.checkpoints.iterdir()):
        raise SettingError(
            f"{paths.root} already holds a run; pass `resume` to continue it or choose a new `out`"
        )
    missing = [folder for folder in (paths.root, *paths.root.parents) if not folder.exists()]
    try:  # before minutes of data loading, so that a bad folder fails at once
        paths.root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SettingError(
            f"cannot create the run folder {paths.root} ({error.strerror}); expected a "
            "writable folder path for `out`"
        ) from error
    return missing[-1] if missing else None


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


# The data and its formulation.


def load_images_and_palette(
    run: Run, cache_dir: Path | None, show_progress: bool
) -> tuple[CourseData, torch.Tensor]:
    """The run's images, and its palette: a resumed run's own, a palette file, or k-means
    fitted on the training images (seeded, and cached)."""
    config = run.config
    images = load_course_data(config.data, cache_dir, show_progress)
    if run.resumed is not None:
        palette = check_palette(torch.tensor(run.resumed.info["palette"], dtype=torch.float32))
    elif config.palette_file is not None:
        palette = load_palette(config.palette_file)
    else:
        palette = fit_palette(
            images.train_rgb,
            config.num_colours,
            seed=config.seed,
            cache_dir=cache_dir if cache_dir is not None else default_cache_dir(),
        )
    return images, palette


def prepare_data(run: Run, images: CourseData, palette: torch.Tensor) -> PreparedData:
    """The formulation, built on the training images (a resumed run's from its
    description), and the inputs and targets it computes, once and resident: no per-batch
    colour maths. Takes `images` over: their training RGB is dropped once its inputs and
    targets are computed."""
    config = run.config
    for name in ("train_rgb", "test_rgb"):
        setattr(images, name, getattr(images, name).to(run.device))
    palette = palette.to(run.device)
    formulation = build_formulation(
        config.target,
        palette,
        train_rgb=images.train_rgb,
        described=run.resumed.info.get("formulation") if run.resumed is not None else None,
        temperature=config.temperature,
        regression_loss=config.regression_loss,
        rebalance=config.rebalance,
        scale=config.scale if config.task == "superres" else None,
        hints=config.hints,
    )
    train_inputs = _in_chunks(formulation.training_inputs, images.train_rgb)
    train_targets = _in_chunks(formulation.training_targets, images.train_rgb)
    # Inputs and targets hold all training needs; the RGB copy would only hold memory (6 GB
    # for 50000 CIFAR-10 images at 96 px).
    del images.train_rgb
    test_inputs = _in_chunks(formulation.inputs, images.test_rgb)
    test_targets = _in_chunks(formulation.training_targets, images.test_rgb)
    if config.channels_last:
        train_inputs, test_inputs = fast_layout(train_inputs), fast_layout(test_inputs)
    # What scoring needs of the true test images, once for the run instead of every epoch.
    test_truth = TrueImages.prepare(images.test_rgb, formulation.palette, config.batch_size)
    return PreparedData(
        formulation, palette, train_inputs, train_targets, test_inputs, test_targets,
        images.test_rgb, test_truth, images.load_seconds,
    )  # fmt: skip


def _in_chunks(convert: Callable[[torch.Tensor], torch.Tensor], rgb: torch.Tensor) -> torch.Tensor:
    """`convert` over a whole set a chunk at a time, so that its temporaries stay small."""
    step = images_per_chunk(rgb)
    return torch.cat([convert(rgb[start : start + step]) for start in range(0, len(rgb), step)])


# The model and its optimizer.


def create_model_and_optimizer(run: Run, data: PreparedData) -> TrainingState:
    """The network, seeded by the run's seed (with its pretrained encoder, where it has one),
    in the fast layout, and Adam; a resumed run restores both, its RNG and its history."""
    config = run.config
    model_args: dict = {"kernel": config.kernel, "in_channels": data.formulation.in_channels}
    model_args["out_channels"] = data.formulation.out_channels
    if data.formulation.network_upscales:
        model_args["scale"] = data.formulation.scale
    colour_width = config.resolved_colour_width(data.formulation.out_channels)
    if colour_width is not None:
        model_args["colour_width"] = colour_width
    if config.num_filters is not None:
        model_args["num_filters"] = config.num_filters
    torch.manual_seed(config.seed)
    model = create_model(config.model, **model_args)
    if pretrained_parameters(model) and run.resumed is None:  # a resumed run has its own
        model.load_pretrained_encoder()
    started = None
    if run.init_from is not None:  # read by settle_run for a new run; a resumed one has its own
        started = warm_start(model, run.init_from.model_state)
    model = model.to(run.device)
    if config.channels_last:
        model = fast_layout(model)
    if run.group is not None:  # before the optimizer, which holds the parameters
        model = distributed.share_batch_norm(model, run.device)
    # After batch norm is shared: the shared layers' weights are the encoder's now.
    pretrained = pretrained_parameters(model)
    # One fused kernel for every weight's update instead of a loop over them (1.5 -> 0.4 ms a
    # step for the UNet, 11 -> 2.7 ms for the PhotoUNet on 2 cores).
    fused = run.device.type in ("cpu", "cuda")  # where torch has the fused kernel
    optimizer = torch.optim.Adam(
        parameter_groups(model, config.lr, config.encoder_lr_scale), lr=config.lr, fused=fused
    )
    state = TrainingState(model, optimizer, pretrained, warm_start=started)
    if config.precision == "fp16":
        state.scaler = torch.amp.GradScaler(run.device.type)
    if run.resumed is not None:
        _restore(state, run.resumed, run.paths.root)
    return state


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


def _restore(state: TrainingState, resumed: ckpt.Checkpoint, folder: Path) -> None:
    if resumed.optimizer_state is None:
        raise ColorcnnError(f"{folder}: the last checkpoint has no optimizer state to resume")
    try:
        state.model.load_state_dict(resumed.model_state)
        state.optimizer.load_state_dict(resumed.optimizer_state)
        _give_state_the_layout_of_the_weights(state.optimizer)
        if resumed.torch_rng_state is not None:
            torch.set_rng_state(resumed.torch_rng_state)
        state.history = resumed.info["history"]
        state.best_val_loss = resumed.info["best_val_loss"]
        state.start_epoch = resumed.info["epoch"] + 1
        if state.scaler is not None and "grad_scaler" in resumed.info:
            state.scaler.load_state_dict(resumed.info["grad_scaler"])
    except (RuntimeError, KeyError, TypeError, ValueError) as error:
        raise ColorcnnError(
            f"{folder}: the last checkpoint cannot be resumed ({first_line(error)})"
        ) from error


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


# Before the first epoch: what the run writes and says once.


def write_settings(run: Run, palette: torch.Tensor) -> None:
    """config.json, on resume too (the epoch budget, device or data folder may be new), and
    a new run's palette.json."""
    write_json(run.paths.config, run.config.to_dict())
    if run.resumed is None:
        write_json(run.paths.palette, {"scale": "rgb / 256", "colours": palette.cpu().tolist()})


def checkpoint_description(run: Run, data: PreparedData, model: torch.nn.Module) -> dict:
    """What every checkpoint of the run says of itself, so that it can be rebuilt and used
    without the run folder; each epoch adds its own metrics and history."""
    config = run.config
    return {
        "model": config.model,
        "model_args": model.hyperparameters,
        "objective": model_objective(config.model),
        "target": data.formulation.name,
        "formulation": data.formulation.describe(),
        "palette": data.palette.cpu().tolist(),
        "data": config.data.to_dict(),
        # What a user of the model needs: the side of the images it learnt from, and the
        # shorter side at which it colourizes a photo unless told otherwise.
        "image_side": trained_image_side(config.data),
        "working_size": default_working_size(config.data),
        "train_config": config.to_dict(),
    }


def _data_name(config: TrainConfig) -> str:
    if config.data.dataset == "cifar10":
        return f"category {config.data.category!r}"
    return config.data.dataset


def _training_line(run: Run, data: PreparedData, model: torch.nn.Module) -> str:
    config = run.config
    processes = f" x {run.group.world_size} processes" if run.group is not None else ""
    return (
        f"Training {config.model} ({data.formulation.name}) on {len(data.train_inputs)} train / "
        f"{len(data.test_rgb)} val images of {_data_name(config)} "
        f"({sum(p.numel() for p in model.parameters()):,} weights, {run.device.type}"
        f"{processes}, {config.precision}, data ready in {data.load_seconds:.1f} s)"
    )


# One epoch.


def run_epoch(
    epoch: int, run: Run, state: TrainingState, data: PreparedData, show_progress: bool
) -> float:
    """Epoch `epoch` of the run under a progress bar: the pretrained encoder frozen or
    thawed, and the order drawn, by the epoch alone, so that a resumed run does as the
    unbroken one; returns the mean training loss."""
    config = run.config
    for weight in state.pretrained:
        weight.requires_grad_(epoch >= config.frozen_epochs)
    order = None
    if config.shuffle_each_epoch:
        # A generator per (seed, epoch), so a resumed run draws the same order again.
        generator = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch)
        order = torch.randperm(len(data.train_inputs), generator=generator).to(run.device)
    hint_generator = None
    if data.formulation.takes_hints:
        # Hints drawn by (seed, epoch) too, so that a resumed run sees the same ones.
        hint_generator = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch + 1)
    with tqdm(
        total=len(data.train_inputs),
        desc=f"Epoch {epoch + 1}/{config.epochs}",
        unit="img",
        leave=False,
        disable=not show_progress,
    ) as progress:
        try:
            model = state.model if run.group is None else state.parallel_model(run.device)
            return train_one_epoch(
                model, state.optimizer, data.train_inputs, data.train_targets,
                data.formulation, config.batch_size, order, progress, run.group,
                hint_generator, config.precision, state.scaler,
            )  # fmt: skip
        except NonFiniteLoss as error:
            raise NonFiniteLoss(f"epoch {epoch + 1}: {error.message}") from None


# The end of an epoch.


def end_of_epoch(
    record: dict,
    run: Run,
    state: TrainingState,
    data: PreparedData,
    description: dict,
    log: Callable[[str], None],
) -> None:
    """The epoch's record joins the history and its line is printed; the writing process
    rewrites metrics.jsonl, draws the epoch's picture and saves the `last` checkpoint, and
    the `best` one when the validation loss is the lowest yet."""
    config = run.config
    state.history.append(record)
    log(
        f"Epoch [{record['epoch'] + 1}/{config.epochs}], Val Loss: {record['val_loss']:.4f}, "
        f"Val Acc: {record['val_acc']:.1f}% | Train Loss: {record['train_loss']:.4f} | "
        f"PSNR {record['psnr']:.2f} dB | colourfulness {record['colourfulness']:.1f} "
        f"(truth {record['colourfulness_truth']:.1f}) | {record['seconds']:.1f} s"
    )
    if not run.writes:
        return
    epoch = record["epoch"]
    _write_metrics(run.paths, state.history)
    if config.picture_every and (epoch % config.picture_every == 0 or epoch == config.epochs - 1):
        _save_picture(run, state.model, data, record)
    is_best = record["val_loss"] < state.best_val_loss
    state.best_val_loss = min(state.best_val_loss, record["val_loss"])
    info = {
        **description,
        "epoch": epoch,
        "metrics": record,
        "history": state.history,
        "best_val_loss": state.best_val_loss,
    }
    if state.scaler is not None:
        info["grad_scaler"] = state.scaler.state_dict()
    if is_best:
        ckpt.save_checkpoint(run.paths.checkpoints / "best", state.model, info)
    ckpt.save_checkpoint(run.paths.checkpoints / "last", state.model, info, state.optimizer)


def _write_metrics(paths: RunPaths, history: list[dict]) -> None:
    # Rewritten whole each epoch, so the file always matches a checkpointed history.
    with atomic_open(paths.metrics) as handle:
        for record in history:
            handle.write(json.dumps(record, sort_keys=True) + "\n")


def _save_picture(run: Run, model: torch.nn.Module, data: PreparedData, record: dict) -> None:
    inputs = data.test_inputs[:PICTURE_IMAGES]
    truth_rgb = data.test_rgb[:PICTURE_IMAGES]
    with torch.inference_mode():
        model.eval()
        outputs = run_network(model, inputs, run.config.precision)
        rows = data.formulation.picture_rows(outputs, inputs, truth_rgb)
    save_prediction_grid(
        rows,
        run.paths.picture(record["epoch"]),
        f"{run.config.model} ({data.formulation.name}), epoch {record['epoch']}: val loss "
        f"{record['val_loss']:.4f}, val acc {record['val_acc']:.1f}%, PSNR {record['psnr']:.2f} dB",
    )


# The end of the run.


def finish_run(
    run: Run, data: PreparedData, history: list[dict], log: Callable[[str], None]
) -> None:
    """The loss curves, and a line on the best epoch."""
    config = run.config
    save_loss_curves(
        history,
        run.paths.loss_curves,
        f"{config.model} ({data.formulation.name}), {_data_name(config)}",
    )
    best = min(history, key=lambda r: r["val_loss"])
    picture = run.paths.picture(best["epoch"])
    shown = f" (pictures/{picture.name})" if picture.is_file() else ""
    log(
        f"Best: epoch {best['epoch'] + 1}/{config.epochs}{shown}, val loss "
        f"{best['val_loss']:.4f}, val acc {best['val_acc']:.1f}%; run saved in {run.paths.root}"
    )


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

    With `resume`, the last checkpoint of the run folder `config.out` restores the weights,
    optimizer, RNG, palette and history, and training continues at the next epoch up to
    `config.epochs`, with the run's own settings but for those of RESUMABLE
    (resumed_config reads them without `config`). Started by torchrun with several
    processes, it trains data-parallel (colorcnn.training.distributed); `finished` receives
    the trained network.
    """
    group, device = distributed.start(resolve_device(config.device))
    try:
        run = settle_run(config, resume, device, group)
        config = run.config
        if not run.writes:  # one voice and one writer: rank 0
            log, show_progress = (lambda _: None), False
        # Rank 0 loads first and fills the caches that the other processes then read.
        with distributed.main_process_first(group), _removed_if_left_empty(run.made_folder):
            images, palette = load_images_and_palette(run, cache_dir, show_progress)
        data = prepare_data(run, images, palette)
        state = create_model_and_optimizer(run, data)
        if run.resumed is not None:
            log(f"Resuming {run.paths.root} at epoch {state.start_epoch + 1} of {config.epochs}")
        if state.warm_start is not None:
            log(f"Starting from {config.init_from}: {state.warm_start.describe()}")
        if run.writes:
            write_settings(run, data.palette)
        log(_training_line(run, data, state.model))
        description = checkpoint_description(run, data, state.model)
        for epoch in range(state.start_epoch, config.epochs):
            started = time.perf_counter()
            train_loss = run_epoch(epoch, run, state, data, show_progress)
            train_seconds = time.perf_counter() - started
            scores = evaluate(
                state.model, data.test_inputs, data.test_targets, data.test_truth,
                data.formulation, config.batch_size, precision=config.precision,
            )  # fmt: skip
            record = {
                "epoch": epoch,
                "train_loss": train_loss,
                **scores,
                "seconds": time.perf_counter() - started,
                "train_images_per_second": len(data.train_inputs) / train_seconds,
            }
            end_of_epoch(record, run, state, data, description, log)
        if finished is not None:
            finished(state.model)
        if state.history and run.writes:
            finish_run(run, data, state.history, log)
        return state.history
    finally:
        distributed.stop(group)
