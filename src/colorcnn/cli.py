"""The `colorcnn` command line: thin typed commands over the library.

Every failure the user can fix is one line on stderr and a non-zero exit status:
1 for a problem with data, files or settings, 2 for a malformed command line.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from typer.exceptions import TyperException

from colorcnn.data.datasets import DataSettings
from colorcnn.demo.app import DEFAULT_CONCURRENCY, DEFAULT_HOST, DEFAULT_PORT
from colorcnn.demo.service import DemoLimits
from colorcnn.errors import ColorcnnError, SettingError
from colorcnn.inference.colorize import DEFAULT_MODEL, MAX_WORKING_SIDE
from colorcnn.trained.model import DEFAULT_WORKING_SIZE
from colorcnn.training.config import RESUMABLE, TrainConfig, resumed_config

if TYPE_CHECKING:
    from PIL import Image

    from colorcnn.inference.batch import Summary
    from colorcnn.inference.images import LoadedImage

app = typer.Typer(
    name="colorcnn",
    help="Colourize grayscale images with small convolutional networks, on a CPU.",
    add_completion=False,
    pretty_exceptions_enable=False,
    # Docstrings' lines join into paragraphs; examples go in fenced blocks to stay code.
    rich_markup_mode="markdown",
)


def _print_version(asked: bool) -> None:
    if asked:
        from colorcnn import __version__

        typer.echo(f"colorcnn {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """Colourize grayscale images with small convolutional networks, on a CPU."""


def _shipped_chroma_gain(name: str) -> float:
    """The decoding gain a shipped model stores (read from its small JSON, not its weights)."""
    from colorcnn.weights import describe_shipped

    return describe_shipped(name).get("formulation", {}).get("chroma_gain", 1.0)


ModelOption = Annotated[
    str, typer.Option("--model", "-m", help="Registered model name (see `colorcnn models`).")
]
DataOption = Annotated[
    str | None,
    typer.Option(
        "--data",
        help="CIFAR-10 folder: python batches or a {train,test}/CLASS/ image tree. "
        "Default: download the official archive into the cache.",
    ),
]
CacheDirOption = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir",
        envvar="COLORCNN_CACHE_DIR",
        help="Where downloads, decoded arrays and fitted palettes are cached. Default: the "
        "user cache folder.",
    ),
]
CategoryOption = Annotated[
    str, typer.Option("--category", "-c", help="CIFAR-10 class name or index, or 'all'.")
]
BatchSizeOption = Annotated[
    int, typer.Option("--batch-size", "-b", min=1, help="Images per batch.")
]
DeviceOption = Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:N or auto.")]
PrecisionOption = Annotated[
    str,
    typer.Option(
        "--precision",
        help="The network's arithmetic: auto (bf16 on CUDA and on CPUs with AMX or "
        "AVX512-BF16, else fp32), fp32, bf16, or fp16 (CUDA only). Losses and metrics stay fp32.",
    ),
]
ChromaGainOption = Annotated[
    float | None,
    typer.Option(
        "--chroma-gain",
        show_default=f"the model's own: {_shipped_chroma_gain(DEFAULT_MODEL)} for "
        f"{DEFAULT_MODEL}, 1.0 where a model stores none",
        help="ab-regression models only: scale the predicted chroma (above 1: more vivid).",
    ),
]
TemperatureOption = Annotated[
    float,
    typer.Option(
        "--temperature", help="Annealed-mean temperature of ab-bins: near 0 vivid, 1 the mean."
    ),
]


@app.command()
def train(
    context: typer.Context,
    model: ModelOption = TrainConfig.model,
    data: DataOption = DataSettings.data,
    category: CategoryOption = DataSettings.category,
    dataset: Annotated[
        str,
        typer.Option(
            "--dataset",
            help="cifar10; photos: random crops of a folder of colour photos; photos+cifar10: "
            "those crops plus CIFAR-10 images of every class (--cifar-data, --cifar-images).",
        ),
    ] = DataSettings.dataset,
    crop_size: Annotated[
        int, typer.Option("--crop-size", min=8, help="photos: crop side.")
    ] = DataSettings.crop_size,
    crops_per_photo: Annotated[
        int, typer.Option("--crops-per-photo", min=1, help="photos: random crops per photo.")
    ] = DataSettings.crops_per_photo,
    cifar_data: Annotated[
        str | None,
        typer.Option("--cifar-data", help="photos+cifar10: CIFAR-10 folder (default: download)."),
    ] = DataSettings.cifar_data,
    cifar_images: Annotated[
        int, typer.Option("--cifar-images", min=0, help="photos+cifar10: CIFAR-10 images to add.")
    ] = DataSettings.cifar_images,
    epochs: Annotated[
        int | None,
        typer.Option(
            "--epochs",
            "-e",
            min=1,
            show_default=str(TrainConfig.epochs),
            help="Epochs to train in all; with --resume, the run's own.",
        ),
    ] = None,
    batch_size: BatchSizeOption = TrainConfig.batch_size,
    lr: Annotated[
        float, typer.Option("--lr", help="Adam learning rate (positive).")
    ] = TrainConfig.lr,
    seed: Annotated[
        int, typer.Option("--seed", help="Seeds the shuffle, the palette and the weights.")
    ] = DataSettings.seed,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", show_default="runs/MODEL", help="Run folder to create."),
    ] = None,
    kernel: Annotated[
        int, typer.Option("--kernel", min=1, help="Convolution kernel size.")
    ] = TrainConfig.kernel,
    num_filters: Annotated[
        int | None,
        typer.Option(
            "--num-filters",
            min=1,
            show_default="the variant's",
            help="NF, filters of the first layer.",
        ),
    ] = TrainConfig.num_filters,
    num_colours: Annotated[
        int, typer.Option("--num-colours", min=2, help="Palette size K.")
    ] = TrainConfig.num_colours,
    palette: Annotated[
        Path | None,
        typer.Option(
            "--palette",
            help="Use this palette (.npy, e.g. the course's colour_kmeans24_cat7.npy, or JSON) "
            "instead of fitting k-means.",
        ),
    ] = TrainConfig.palette_file,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            "-t",
            show_default="palette-rgb on cifar10 (rgb-regression for regression_cnn), "
            "ab-regression on photos",
            help="What is predicted: palette-rgb (the course), ab-bins (Lab chroma classes, "
            "rebalanced, annealed mean), ab-regression (Lab chroma, Huber/L1), rgb-regression.",
        ),
    ] = TrainConfig.target,
    temperature: TemperatureOption = TrainConfig.temperature,
    colour_width: Annotated[
        int | None,
        typer.Option(
            "--colour-width",
            min=1,
            show_default="the output's, at most 32",
            help="Width of the last layers (NC); a 1x1 layer widens them to the output.",
        ),
    ] = TrainConfig.colour_width,
    regression_loss: Annotated[
        str, typer.Option("--regression-loss", help="ab-regression's loss: huber, l1 or mse.")
    ] = TrainConfig.regression_loss,
    rebalance: Annotated[
        bool, typer.Option(help="ab-bins: weight rare colours up (lambda 0.5, sigma 5).")
    ] = TrainConfig.rebalance,
    frozen_epochs: Annotated[
        int,
        typer.Option(
            "--frozen-epochs",
            min=0,
            help="Pretrained-encoder models (efficient_unet): epochs that train the decoder "
            "alone before the encoder is fine-tuned too.",
        ),
    ] = TrainConfig.frozen_epochs,
    encoder_lr_scale: Annotated[
        float,
        typer.Option(
            "--encoder-lr-scale",
            help="Pretrained-encoder models: the encoder's learning rate as a share of --lr.",
        ),
    ] = TrainConfig.encoder_lr_scale,
    hints: Annotated[
        bool,
        typer.Option(
            help="ab-bins, ab-regression: take colour hints, trained on hints simulated from "
            "the truth (Zhang et al. 2017); without hints the model colourizes on its own."
        ),
    ] = TrainConfig.hints,
    init_from: Annotated[
        str | None,
        typer.Option(
            "--init-from",
            help="Start from this trained model's weights (a shipped name, a run folder or a "
            "checkpoint of the same architecture); layers it lacks, such as hint inputs, "
            "start at zero.",
        ),
    ] = TrainConfig.init_from,
    shuffle_each_epoch: Annotated[
        bool,
        typer.Option(help="Reshuffle the training set every epoch (the course does not)."),
    ] = TrainConfig.shuffle_each_epoch,
    picture_every: Annotated[
        int,
        typer.Option("--picture-every", min=0, help="Epochs between prediction grids; 0 = none."),
    ] = TrainConfig.picture_every,
    device: DeviceOption = TrainConfig.device,
    precision: PrecisionOption = TrainConfig.precision,
    task: Annotated[
        str,
        typer.Option(
            "--task",
            help="colorize, or superres: upscale colour images pooled by --scale (the course's "
            "second task; --target superres-palette or superres-rgb).",
        ),
    ] = TrainConfig.task,
    scale: Annotated[
        int, typer.Option("--scale", help="superres: 2 or 4 (the course's).")
    ] = TrainConfig.scale,
    channels_last: Annotated[
        bool, typer.Option(help="Channels-last (NHWC) memory: faster convolutions.")
    ] = TrainConfig.channels_last,
    deterministic: Annotated[
        bool,
        typer.Option(
            help="Deterministic kernels, so a seed gives the same metrics; "
            "--no-deterministic lets cuDNN pick its fastest (GPU runs)."
        ),
    ] = TrainConfig.deterministic,
    resume: Annotated[
        Path | None,
        typer.Option(
            "--resume",
            help="Continue the run in this folder from its last checkpoint, with its own "
            "settings (its precision too); only --epochs, --data and --device are taken from "
            "the command line.",
        ),
    ] = None,
    cache_dir: CacheDirOption = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar during each epoch.")] = True,
) -> None:
    """Train a colourization model on CIFAR-10 as the course does, or on photos.

    Writes metrics.jsonl, a prediction grid per epoch, loss curves and the last and best
    checkpoints into the run folder.

    Examples:

    ```
    colorcnn train --model unet --data ./cifar10 --out runs/unet
    colorcnn train --resume runs/unet --epochs 40
    ```
    """
    from colorcnn.training import fit

    run_dir = resume if resume is not None else (out or Path("runs") / model)
    if resume is not None and out is not None and Path(out) != Path(resume):
        raise ColorcnnError(f"--out {out} and --resume {resume} name different run folders")
    if resume is not None:
        _refuse_settings_a_resumed_run_ignores(context)
        config = resumed_config(resume, epochs=epochs, data=data, device=device)
    else:
        data_settings = DataSettings(
            data=data, category=category, seed=seed, dataset=dataset, crop_size=crop_size,
            crops_per_photo=crops_per_photo, cifar_data=cifar_data, cifar_images=cifar_images,
        )  # fmt: skip
        config = TrainConfig(
            model=model, data=data_settings, epochs=epochs or TrainConfig.epochs,
            batch_size=batch_size, lr=lr, kernel=kernel, num_filters=num_filters,
            num_colours=num_colours, palette_file=str(palette) if palette else None,
            colour_width=colour_width, target=target, task=task, scale=scale,
            temperature=temperature, regression_loss=regression_loss,
            frozen_epochs=frozen_epochs, encoder_lr_scale=encoder_lr_scale, rebalance=rebalance,
            hints=hints, init_from=init_from,
            out=str(run_dir), shuffle_each_epoch=shuffle_each_epoch, picture_every=picture_every,
            device=device, deterministic=deterministic, channels_last=channels_last,
            precision=precision,
        )  # fmt: skip
    try:
        fit(config, resume=resume is not None, cache_dir=cache_dir, show_progress=progress)
    except KeyboardInterrupt:
        if os.environ.get("RANK", "0") == "0":  # under torchrun, one voice
            _say_how_to_resume(run_dir, config.epochs)
        raise


def _say_how_to_resume(run_dir: Path, epochs: int) -> None:
    import shlex

    from colorcnn.trained.checkpoint import load_checkpoint

    last = run_dir / "checkpoints" / "last.safetensors"
    if not last.is_file():
        typer.echo(f"{run_dir} has no finished epoch yet; nothing to resume", err=True)
        return
    done = load_checkpoint(last).info["epoch"] + 1
    typer.echo(
        f"{run_dir} keeps its {done} finished epoch(s); continue with: "
        f"colorcnn train --resume {shlex.quote(str(run_dir))} --epochs {epochs}",
        err=True,
    )


# What a resumed run takes from the command line; the rest comes from the run itself.
_RESUME_OPTIONS = frozenset({"resume", "progress", "cache_dir", *RESUMABLE})


def _refuse_settings_a_resumed_run_ignores(context: typer.Context) -> None:
    def typed(name: str) -> bool:
        # By the source's name: typer carries its own copy of click's ParameterSource.
        source = context.get_parameter_source(name)
        return source is not None and source.name == "COMMANDLINE"

    given = [
        parameter.opts[0]
        for parameter in context.command.params
        if parameter.name not in _RESUME_OPTIONS and typed(parameter.name)
    ]
    if given:
        changeable = [_flag(name) for name in RESUMABLE if name != "out"]
        raise ColorcnnError(
            f"{', '.join(given)} cannot change with --resume, which continues the run with its "
            f"own settings; expected only {', '.join(changeable[:-1])} and {changeable[-1]} "
            "(or a new run with --out)"
        )


@app.command()
def evaluate(
    checkpoint: Annotated[
        Path, typer.Argument(help="A run folder, a .safetensors checkpoint or a shipped name.")
    ],
    data: DataOption = None,
    which: Annotated[
        str, typer.Option("--checkpoint", help="In a run folder, 'best' or 'last'.")
    ] = "best",
    batch_size: BatchSizeOption = 100,
    temperature: Annotated[
        float | None,
        typer.Option(
            "--temperature", show_default="the run's", help="Annealed-mean temperature (ab-bins)."
        ),
    ] = None,
    chroma_gain: ChromaGainOption = None,
    baselines: Annotated[
        bool,
        typer.Option(help="Also score the baselines: grey, course grey and mean training colour."),
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    device: DeviceOption = "cpu",
    precision: Annotated[
        str | None,
        typer.Option(
            "--precision",
            show_default="the run's own, so that the scores are those of training",
            help="The network's arithmetic: auto, fp32, bf16, or fp16 (CUDA only).",
        ),
    ] = None,
    cache_dir: CacheDirOption = None,
    cifar_data: Annotated[
        str | None,
        typer.Option(
            "--cifar-data",
            help="Models trained on photos+cifar10 (such as photo): the CIFAR-10 folder "
            "(default: the download); --data is then the photo folder.",
        ),
    ] = None,
    progress: Annotated[
        bool, typer.Option(help="Show progress bars while the data is read.")
    ] = True,
) -> None:
    """Score a trained model on the test split: the course's loss and accuracy, PSNR and
    SSIM with the true lightness, colourfulness and its gap to the truth, and the AuC of
    the ab-error curve, beside three baselines without a network.

    Examples:

    ```
    colorcnn evaluate runs/unet --data ./cifar10
    colorcnn evaluate runs/unet/checkpoints/last.safetensors --json
    colorcnn evaluate photo --data ./photos --cifar-data ./cifar10
    ```
    """
    from colorcnn.evaluation.evaluate import evaluate_checkpoint

    if which not in ("best", "last"):
        raise ColorcnnError(f"--checkpoint must be 'best' or 'last', got {which!r}")
    result = evaluate_checkpoint(
        checkpoint, data, prefer=which, batch_size=batch_size, cache_dir=cache_dir,
        device=device, temperature=temperature, chroma_gain=chroma_gain, baselines=baselines,
        cifar_data=cifar_data, show_progress=progress, precision=precision,
    )  # fmt: skip
    if as_json:
        typer.echo(json.dumps(result, sort_keys=True))
        return
    _print_scores(result)


def _print_scores(result: dict) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    columns = [
        ("val_loss", "val\nloss", "{:.4f}"),
        ("val_acc", "val\nacc %", "{:.1f}"),
        ("psnr", "PSNR\ndB", "{:.2f}"),
        ("ssim", "SSIM", "{:.4f}"),
        ("colourfulness", "colour-\nfulness", "{:.1f}"),
        ("colourfulness_gap", "colour\ngap", "{:.1f}"),
        ("auc", "AuC", "{:.3f}"),
        ("auc_rebalanced", "AuC\nrebal.", "{:.3f}"),
    ]
    # Two-line headers and no vertical rules: the table fits 80 columns, and a narrower
    # terminal folds a cell rather than cutting it to "colou...".
    table = Table(
        title=f"{result['model']} ({result['target']}) after epoch {result['epoch'] + 1}, "
        f"{result['num_images']} {result['category']} test images"
        + (f", {result['precision']}" if "precision" in result else ""),
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("", overflow="fold", max_width=14)
    for _, title, _ in columns:
        table.add_column(title, overflow="fold", justify="right")
    rows = {result["model"]: result, **result.get("baselines", {})}
    for name, scores in rows.items():
        cells = [fmt.format(scores[key]) if key in scores else "-" for key, _, fmt in columns]
        table.add_row(name.replace("_", " "), *cells)
    console = Console()
    console.print(table)
    if "baselines" in result:
        console.print(
            "The greys score a high val acc: many true pixels are of low chroma and snap to the "
            "same palette colour as grey does. PSNR, AuC and the colour gap tell a model from "
            "grey; val acc alone does not."
        )
    typer.echo(
        f"Val Loss: {result['val_loss']:.4f}, Val Acc: {result['val_acc']:.1f}%, "
        f"PSNR: {result['psnr']:.2f} dB (truth colourfulness {result['colourfulness_truth']:.1f})"
    )


@app.command()
def colorize(
    inputs: Annotated[
        list[str] | None,
        typer.Argument(
            help="Image or video files, folders or glob patterns ('scans/*.tif', 'film.mp4')."
        ),
    ] = None,
    model: Annotated[
        Path,
        typer.Option(
            "--model",
            "-m",
            help="A shipped name (colorcnn models), a run folder, a .safetensors checkpoint "
            "or an exported .onnx.",
        ),
    ] = Path(DEFAULT_MODEL),
    sample: Annotated[
        bool,
        typer.Option("--sample", help="Also colourize the sample photo bundled with colorcnn."),
    ] = False,
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Folder for the colourized images, or, for one input, the file to write "
            "(e.g. result.jpg).",
        ),
    ] = Path("colorized"),
    size: Annotated[
        int | None,
        typer.Option(
            "--size",
            show_default="the model's own: 160 for photo, 128 for photo-unet, 32 for models "
            f"trained on CIFAR-10, else {DEFAULT_WORKING_SIZE}",
            help=f"Shorter side at which the network runs, 4 to {MAX_WORKING_SIDE} px; the "
            "longer side is kept at most "
            f"{MAX_WORKING_SIDE} px (very long strips run at a smaller size). The output "
            "keeps the input's own size either way.",
        ),
    ] = None,
    temperature: Annotated[
        float | None,
        typer.Option("--temperature", show_default="the model's", help="ab-bins models only."),
    ] = None,
    chroma_gain: ChromaGainOption = None,
    recursive: Annotated[
        bool, typer.Option("--recursive", "-r", help="Look into sub-folders.")
    ] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace existing output files.")] = False,
    backend: Annotated[
        str, typer.Option("--backend", help="torch, or onnx for a file from `colorcnn export`.")
    ] = "torch",
    hints_file: Annotated[
        Path | None,
        typer.Option(
            "--hints",
            help='Colour hints for one input, a JSON list like [{"x": 120, "y": 45, '
            '"color": "#c03020"}]: x and y in the image\'s own pixels from its top left, '
            'an optional "size" in pixels. Only a hint\'s chroma is used; the lightness '
            "stays the photo's. With many inputs, NAME.hints.json beside an image applies "
            "to it.",
        ),
    ] = None,
    hint: Annotated[
        list[str] | None,
        typer.Option("--hint", help="One colour hint as x,y,#colour[,size]; repeatable."),
    ] = None,
    stabilize: Annotated[
        bool,
        typer.Option(
            help="Videos: keep colours steady from frame to frame; --no-stabilize colours "
            "each frame alone."
        ),
    ] = True,
    upscale_by: Annotated[
        int | None,
        typer.Option(
            "--upscale",
            show_default="no upscaling",
            help="Photos: also upscale by 2 or 4 with the shipped upscaler (colourized "
            "first, then upscaled: the closer order to the truth, docs/results.md).",
        ),
    ] = None,
    precision: PrecisionOption = "auto",
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Colourize grey photos of any size, and videos: the output keeps the input's size,
    detail and brightness (a video its frames, rate and sound too); only the chroma comes
    from the network, guided by colour hints where you give them (photos only).

    Examples:

    ```
    colorcnn colorize --sample -o colorized
    colorcnn colorize old_photo.jpg -o colorized
    colorcnn colorize scans/ --recursive -m runs/photo --size 192
    colorcnn colorize jacket.jpg --hint 120,45,#c03020 -o jacket_colour.jpg
    colorcnn colorize photo.jpg --hints hints.json -o out.jpg
    colorcnn colorize old_small.jpg --upscale 4 -o old_big.png
    colorcnn colorize film.mp4 -o film_colour.mp4
    ```
    """
    from colorcnn.inference.batch import is_video
    from colorcnn.inference.colorize import Colorizer, sample_photos
    from colorcnn.inference.hints import hints_for_images

    inputs = list(inputs or [])
    if sample:
        inputs += [str(path) for path in sample_photos()]
    if not inputs:
        raise ColorcnnError("no input given; expected image files, folders or globs, or --sample")

    # bad inputs or -o fail before the model loads
    jobs, missing = _plan(inputs, output, recursive, videos=True)
    videos = [job for job in jobs if is_video(job.source)]
    photos = [job for job in jobs if not is_video(job.source)]
    if videos and (hints_file is not None or hint):
        raise ColorcnnError(
            f"--hints and --hint apply to photos, not to videos such as {videos[0].source}; "
            "colourize videos without them"
        )
    if videos and upscale_by is not None:
        raise ColorcnnError(
            f"--upscale applies to photos, not to videos such as {videos[0].source}; "
            "colourize videos without it"
        )
    upscaler = None
    if upscale_by is not None:
        from colorcnn.inference.images import from_pil
        from colorcnn.superres.upscale import Upscaler

        # a bad --upscale fails before any work
        upscaler = Upscaler.load(scale=upscale_by, precision=precision)
    if videos:
        from colorcnn.inference.video import ensure_video_support

        ensure_video_support()  # a missing extra is one line before the model loads
    Colorizer.check_size(size)  # before the model loads
    # Every hint is read and checked before anything is written.
    hints = hints_for_images([job.source for job in photos], hints_file, hint)
    colorizer = Colorizer.load(model, backend, chroma_gain, precision)
    colorizer.check_temperature(temperature)
    if hints:
        colorizer.check_hints(next(iter(hints.values())))

    def colour_videos(report: Callable[[str], None]):
        from colorcnn.inference.video import process_videos

        return process_videos(
            videos, colorizer, size=size, temperature=temperature, stabilize=stabilize,
            overwrite=overwrite, show_progress=progress, report=report,
        )  # fmt: skip

    def colour_photo(loaded: LoadedImage, source: Path) -> Image.Image:
        colour = colorizer.colorize_loaded(loaded, size, temperature, hints.get(source))
        if upscaler is None:
            return colour
        # Colourized at its own size, then upscaled: on held-out photos this came closer to
        # the truth than upscaling the grey first (docs/results.md), and costs less.
        return upscaler.upscale_loaded(from_pil(colour), progress)

    upscaled = "" if upscaler is None else f", upscaled x{upscaler.scale} with {upscaler.name}"
    _process_inputs(
        (photos, missing), output, colour_photo,
        overwrite=overwrite, progress=progress, doing="Colourizing", verb="Colourized",
        how=f"with {colorizer.name}{upscaled}", note_colour=True, guided=set(hints),
        videos=colour_videos if videos else None, video_count=len(videos),
    )  # fmt: skip


def _plan(inputs: list[str], output: Path, recursive: bool, videos: bool = False):
    """(jobs, missing inputs) of `inputs` into `output`; none at all is an error."""
    from colorcnn.inference.batch import plan_jobs

    jobs, missing = plan_jobs(inputs, output, recursive, videos)
    if not jobs and not missing:
        found = "images or videos" if videos else "images"
        raise ColorcnnError(f"no {found} found in {' '.join(inputs)}")
    return jobs, missing


def _process_inputs(
    planned: tuple[list, list],
    output: Path,
    transform: Callable[[LoadedImage, Path], Image.Image],
    *,
    overwrite: bool,
    progress: bool,
    doing: str,
    verb: str,
    how: str,
    note_colour: bool = False,
    guided: set[Path] | None = None,
    videos: Callable[[Callable[[str], None]], Summary] | None = None,
    video_count: int = 0,
) -> None:
    """Transform and write each planned file (one line per failure, the rest go on), then
    colourize the `video_count` videos (`videos`, given the reporting function) and print
    one summary line; exit with 1 if any input failed."""
    from tqdm.auto import tqdm

    from colorcnn.inference.batch import Summary, process_files

    jobs, missing = planned

    def report(line: str) -> None:
        tqdm.write(line, file=sys.stderr)

    for path, reason in missing:
        report(f"failed {path}: {reason}")
    summary = process_files(
        jobs, transform, overwrite=overwrite, show_progress=progress, report=report,
        desc=doing,
    )  # fmt: skip
    filmed = videos(report) if videos is not None else Summary()
    had_colour = summary.had_colour + filmed.had_colour
    if note_colour and had_colour:
        named = ", ".join(path.name for path in had_colour[:3])
        more = f" and {len(had_colour) - 3} more" if len(had_colour) > 3 else ""
        typer.echo(
            f"note: {len(had_colour)} input(s) had colour ({named}{more}); they were "
            "converted to grey first",
            err=True,
        )
    failed = len(summary.failed) + len(missing) + len(filmed.failed)
    skipped = len(summary.skipped) + len(filmed.skipped)
    done = set(summary.done)
    hinted = sum(job.source in (guided or ()) and job.target in done for job in jobs)
    counted = []
    if jobs or missing or not video_count:
        counted.append(f"{len(summary.done)} of {len(jobs) + len(missing)} image(s)")
    if video_count:
        counted.append(f"{len(filmed.done)} of {video_count} video(s)")
    typer.echo(
        f"{verb} {' and '.join(counted)} {how} in "
        f"{summary.seconds + filmed.seconds:.1f} s into {output}"
        + (f"; {hinted} with colour hints" if guided else "")
        + (f"; {failed} failed" if failed else "")
        + (f"; {skipped} skipped" if skipped else "")
    )
    if failed:
        raise typer.Exit(1)


@app.command()
def upscale(
    inputs: Annotated[list[str], typer.Argument(help="Image files, folders or glob patterns.")],
    model: Annotated[
        Path | None,
        typer.Option(
            "--model",
            "-m",
            show_default="upscale-x4, or upscale-x2 with --scale 2",
            help="A shipped upscaler, or a run folder or checkpoint trained with --task "
            "superres --target superres-y or superres-rgb.",
        ),
    ] = None,
    scale: Annotated[
        int | None,
        typer.Option(
            "--scale", show_default="the model's, else 4", help="2 or 4; must be the model's."
        ),
    ] = None,
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Folder for the upscaled images, or, for one input, the file to write.",
        ),
    ] = Path("upscaled"),
    recursive: Annotated[
        bool, typer.Option("--recursive", "-r", help="Look into sub-folders.")
    ] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace existing output files.")] = False,
    precision: PrecisionOption = "auto",
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Upscale images by 2 or 4: bicubic interpolation plus the detail a trained network
    predicts, tile by tile, for images of any size. Without a model, the shipped
    upscale-x4 (or upscale-x2 for --scale 2) sharpens the luminance and upscales the
    colour bicubically; grey images stay grey.

    Examples:

    ```
    colorcnn upscale photo.jpg -o big.png
    colorcnn upscale small.png --scale 2 -o upscaled
    colorcnn upscale small.png -m runs/superres-x4 --scale 4 -o upscaled
    ```
    """
    from colorcnn.superres.upscale import Upscaler

    planned = _plan(inputs, output, recursive)
    upscaler = Upscaler.load(model, None if model is not None else scale, precision)
    if scale is not None and scale != upscaler.scale:
        raise ColorcnnError(
            f"--scale {scale} does not fit {model}, which was trained to upscale by "
            f"{upscaler.scale}"
        )
    _process_inputs(
        planned, output, lambda loaded, _source: upscaler.upscale_loaded(loaded, progress),
        overwrite=overwrite,
        progress=progress, doing="Upscaling", verb="Upscaled",
        how=f"x{upscaler.scale} with {upscaler.name}",
    )  # fmt: skip


export_app = typer.Typer(help="Export a trained model to other runtimes.", no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("onnx")
def export_onnx_command(
    model: Annotated[
        Path, typer.Argument(help="A run folder, a .safetensors checkpoint or a shipped name.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="The .onnx file to write.")],
    overwrite: Annotated[bool, typer.Option(help="Replace an existing file.")] = False,
) -> None:
    """Export to ONNX with a dynamic batch and image size (sides multiples of the network's
    size multiple: 4 for the course nets, 32 for photo_unet).

    Example:

    ```
    colorcnn export onnx photo -o photo.onnx
    ```
    """
    from colorcnn.inference.onnx import export_onnx

    if output.suffix.lower() != ".onnx":
        raise ColorcnnError(f"--output must end in .onnx, got {output}")
    if output.exists() and not overwrite:
        raise ColorcnnError(f"{output} exists; pass --overwrite to replace it")
    written = export_onnx(model, output)
    typer.echo(f"Wrote {written} ({written.stat().st_size / 1e6:.2f} MB)")


@app.command("models")
def list_registered_models(
    pattern: Annotated[str, typer.Argument(help="Shell-style filter, e.g. 'unet*'.")] = "*",
) -> None:
    """List the model architectures, and the trained weights shipped with colorcnn."""
    from fnmatch import fnmatch

    from rich.console import Console
    from rich.table import Table

    from colorcnn.formulations import default_target
    from colorcnn.models import create_model, list_models, model_entry
    from colorcnn.weights import describe_shipped, shipped_models

    console = Console()
    table = Table(title="Architectures")
    table.add_column("architecture", no_wrap=True)
    for column in ("objective", "weights", "description"):
        table.add_column(column)
    for name in list_models(pattern):
        network = create_model(name)
        weights = sum(p.numel() for p in network.parameters())
        table.add_row(name, network.objective, f"{weights:,}", model_entry(name).description)
    console.print(table)
    shipped = Table(title="Shipped weights (use the name wherever a checkpoint is expected)")
    shipped.add_column("name", no_wrap=True)
    for column in ("architecture", "target", "hints", "size", "trained on", "epoch", "val acc",
                   "val loss"):  # fmt: skip
        shipped.add_column(column, overflow="fold")  # narrow terminals fold, never cut
    heldout = Table(title="Scores on photos of sources the model never trained on")
    for column in ("name", "photos", "PSNR vs grey, median", "mean", "> 3 dB below grey",
                   "colourfulness, share of truth"):  # fmt: skip
        heldout.add_column(column, overflow="fold")
    upscaling = Table(title="Upscaling photos of sources the model never trained on")
    for column in ("name", "scale", "photos", "Y PSNR", "gain over bicubic", "RGB gain",
                   "below bicubic", "1 MP result"):  # fmt: skip
        upscaling.add_column(column, overflow="fold")
    for name, path in shipped_models().items():
        if not fnmatch(name, pattern) and pattern != "*":
            continue
        info = describe_shipped(name)
        metrics = info.get("metrics", {})
        data = info.get("data", {})
        trained_on = data.get("dataset", "cifar10")
        # The course's palette accuracy says nothing of an upscaler's luminance.
        upscales = "heldout_upscaling" in info
        if trained_on == "cifar10":
            trained_on = f"CIFAR-10 {data.get('category', '')}"
        shipped.add_row(
            name, info["model"], info.get("target") or default_target(info.get("objective", "")),
            "yes" if info.get("formulation", {}).get("hints") else "-",
            f"{path.stat().st_size / 1e3:.0f} kB", trained_on, str(info["epoch"] + 1),
            f"{metrics['val_acc']:.1f}%" if "val_acc" in metrics and not upscales else "-",
            f"{metrics['val_loss']:.4f}" if "val_loss" in metrics else "-",
        )  # fmt: skip
        scores = info.get("heldout_photos")
        if scores:
            heldout.add_row(
                name, str(scores["photos"]), f"{scores['vs_grey_median']:+.2f} dB",
                f"{scores['vs_grey']:+.2f} dB", str(scores["below_grey_3db"]),
                f"{100 * scores['colourfulness_share']:.0f}%",
            )  # fmt: skip
        gains = info.get("heldout_upscaling")
        if gains:
            upscaling.add_row(
                name, f"x{gains['scale']}", str(gains["photos"]), f"{gains['y_psnr']:.2f} dB",
                f"{gains['y_psnr_gain']:+.2f} dB", f"{gains['rgb_psnr_gain']:+.2f} dB",
                str(gains["below_bicubic"]), f"{gains['seconds_for_1mp']:.2f} s",
            )  # fmt: skip
    console.print(shipped)
    if heldout.row_count:
        console.print(heldout)
    if upscaling.row_count:
        console.print(upscaling)


def _epoch_list(text: str | None, option: str) -> list[int] | None:
    if text is None:
        return None
    try:
        epochs = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ColorcnnError(f"{option} expects numbers separated by commas, got {text!r}") from None
    if not epochs or min(epochs) < 0:
        raise ColorcnnError(f"{option} expects epoch numbers from 0, got {text!r}")
    return epochs


@app.command()
def sweep(
    setting: Annotated[str, typer.Argument(help="epochs, batch-size, lr, kernel or num-filters.")],
    values: Annotated[str, typer.Argument(help="Values separated by commas, e.g. 32,64,128.")],
    model: Annotated[
        str, typer.Option("--model", help="A registered model name.")
    ] = TrainConfig.model,
    data: DataOption = DataSettings.data,
    category: CategoryOption = DataSettings.category,
    epochs: Annotated[
        int, typer.Option("--epochs", min=1, help="Epochs of every run (unless swept).")
    ] = TrainConfig.epochs,
    batch_size: BatchSizeOption = TrainConfig.batch_size,
    lr: Annotated[float, typer.Option("--lr", help="Adam learning rate.")] = TrainConfig.lr,
    kernel: Annotated[
        int, typer.Option("--kernel", min=1, help="Convolution kernel size.")
    ] = TrainConfig.kernel,
    target: Annotated[
        str | None,
        typer.Option("--target", show_default="the model's", help="What the network predicts."),
    ] = TrainConfig.target,
    task: Annotated[str, typer.Option("--task", help="colorize or superres.")] = TrainConfig.task,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of data order and weights.")
    ] = DataSettings.seed,
    device: DeviceOption = TrainConfig.device,
    precision: PrecisionOption = TrainConfig.precision,
    cache_dir: CacheDirOption = None,
    out: Annotated[Path | None, typer.Option("--out", show_default="runs/sweep-SETTING")] = None,
    epochs_shown: Annotated[
        str | None,
        typer.Option("--show-epochs", help="Epochs whose pictures the report puts side by side."),
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar during each epoch.")] = True,
) -> None:
    """Train one run per value of a setting, then compare them in one report: the course's
    questions about epochs, batch size (32..512), learning rate and kernel size (3/4/5,
    padded so the image keeps its size).

    Examples:

    ```
    colorcnn sweep batch-size 32,64,128,256,512 --data ./cifar10
    colorcnn sweep kernel 3,4,5 --model cnn --epochs 10
    ```
    """
    from colorcnn.analysis.compare import compare_runs
    from colorcnn.training.sweep import parse_values, run_sweep

    name = setting.replace("-", "_")
    parsed = parse_values(name, values)
    folder = out or Path("runs") / f"sweep-{setting}"
    base = TrainConfig(
        model=model, data=DataSettings(data=data, category=category, seed=seed), epochs=epochs,
        batch_size=batch_size, lr=lr, kernel=kernel, target=target, task=task, device=device,
        precision=precision, out=str(folder),
    )  # fmt: skip
    runs = run_sweep(
        base, name, parsed, folder, log=typer.echo, show_progress=progress, cache_dir=cache_dir
    )
    report = compare_runs(runs, folder / "report", _epoch_list(epochs_shown, "--show-epochs"))
    typer.echo(f"Wrote {report} (open it in a browser)")


@app.command()
def activations(
    model: Annotated[
        str, typer.Argument(help="A run folder, a .safetensors checkpoint or a shipped name.")
    ],
    index: Annotated[
        int, typer.Option("--index", "-i", min=0, help="Which validation image to show.")
    ] = 0,
    image: Annotated[
        Path | None,
        typer.Option("--image", help="Show this image instead of a validation image."),
    ] = None,
    size: Annotated[
        int | None,
        typer.Option(
            "--size",
            min=1,
            show_default="the training images' side",
            help="With --image: the shorter side the image is resized to.",
        ),
    ] = None,
    data: Annotated[
        str | None, typer.Option("--data", help="Where the run's images now lie.")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            show_default="RUN/activations/IMAGE",
            help="Folder for overview.png and one layer_NAME.png per layer.",
        ),
    ] = None,
    cache_dir: CacheDirOption = None,
) -> None:
    """Picture what a trained network computes for one image: the input, the ground truth,
    the output, and every channel of each intermediate activation, tiled per layer.

    Examples:

    ```
    colorcnn activations runs/unet --index 3
    colorcnn activations photo --image old_photo.jpg -o activations
    ```
    """
    from colorcnn.analysis.activations import picture_checkpoint_activations

    written = picture_checkpoint_activations(
        model, image=image, index=index, size=size, data=data, output=output, cache_dir=cache_dir
    )
    folder = written.overview.parent
    typer.echo(f"Wrote {written.overview} and {len(written.layers)} layer pictures in {folder}")


@app.command()
def compare(
    runs: Annotated[
        list[str],
        typer.Argument(
            help="Run folders made by colorcnn train, shipped names, checkpoints or .onnx files."
        ),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the report.")] = Path(
        "comparison"
    ),
    epochs: Annotated[
        str | None,
        typer.Option(
            "--epochs",
            show_default="the first and the last",
            help="Epochs whose prediction pictures go side by side, e.g. 0,24.",
        ),
    ] = None,
) -> None:
    """Compare runs: final and best metrics, overlaid loss / accuracy / PSNR curves, and
    the prediction pictures side by side; writes report.md and report.html.

    Example:

    ```
    colorcnn compare runs/cnn runs/unet -o comparison --epochs 0,24
    colorcnn compare cifar-horse-cnn cifar-horse-unet -o comparison
    ```
    """
    from colorcnn.analysis.compare import compare_runs

    report = compare_runs(runs, output, _epoch_list(epochs, "--epochs"))
    typer.echo(f"Wrote {report} (open it in a browser) and {report.with_suffix('.md')}")


@app.command()
def summary(
    model: Annotated[
        str,
        typer.Argument(help="A registered architecture, a shipped name, a run or a checkpoint."),
    ],
    image_size: Annotated[
        int, typer.Option("--image-size", min=1, help="Side of the square input image.")
    ] = 32,
    kernel: Annotated[
        int | None, typer.Option("--kernel", min=1, help="Architectures: kernel size.")
    ] = None,
    num_filters: Annotated[
        int | None, typer.Option("--num-filters", min=1, help="Architectures: NF.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Per layer and in total: weights, biases, outputs, connections (multiply-adds per
    image) and receptive field; and what changes when the image is twice as large.

    Examples:

    ```
    colorcnn summary unet
    colorcnn summary cnn --kernel 5 --image-size 64 --json
    ```
    """
    from rich.console import Console
    from rich.table import Table

    from colorcnn.analysis.summary import summarize
    from colorcnn.models import create_model, list_models

    if model in list_models():
        overrides = {k: v for k, v in (("kernel", kernel), ("num_filters", num_filters)) if v}
        network = create_model(model, **overrides)
    else:
        from colorcnn.trained import load_model

        if kernel or num_filters:
            raise ColorcnnError("--kernel and --num-filters apply to architectures, not to weights")
        trained = load_model(model, fold=False)  # as trained: its batch norms are layers too
        if trained.runtime != "torch":
            raise ColorcnnError(f"summary reads PyTorch checkpoints, not ONNX files: {model}")
        network = trained.network
    result = summarize(network, model, image_size)
    twice = summarize(network, model, 2 * image_size)
    payload = result.to_dict()
    payload["twice_as_large"] = {
        "image_size": 2 * image_size,
        "totals": twice.totals,
        "activation_receptive_fields": twice.activation_fields,
    }
    if as_json:
        typer.echo(json.dumps(payload))
        return
    console = Console()
    table = Table(title=f"{model} on a {image_size}x{image_size} image")
    for column in ("layer", "kind", "output", "weights", "biases", "outputs", "connections",
                   "receptive field"):  # fmt: skip
        table.add_column(
            column, justify="left" if column in ("layer", "kind") else "right",
            no_wrap=column == "layer",
        )  # fmt: skip
    for row in result.layers:
        table.add_row(
            row.name, row.kind, "x".join(map(str, row.output_shape)), f"{row.weights:,}",
            f"{row.biases:,}", f"{row.outputs:,}", f"{row.connections:,}",
            "-" if row.receptive_field is None else str(row.receptive_field),
        )  # fmt: skip
    totals = result.totals
    table.add_row(
        "total", "", "", f"{totals['weights']:,}", f"{totals['biases']:,}",
        f"{totals['outputs']:,}", f"{totals['connections']:,}",
        str(result.activation_fields["output"]), style="bold",
    )  # fmt: skip
    console.print(table)
    fields = ", ".join(f"{key} {size}" for key, size in result.activation_fields.items())
    console.print(f"Receptive field of each activation (pixels per side): {fields}")
    big = twice.totals
    console.print(
        f"If the image were twice as large ({2 * image_size}x{2 * image_size}): the same "
        f"{big['weights'] + big['biases']:,} weights and biases, {big['outputs']:,} outputs "
        f"(x{big['outputs'] / totals['outputs']:.0f}), {big['connections']:,} connections "
        f"(x{big['connections'] / totals['connections']:.0f}); the output's receptive field "
        f"is {twice.activation_fields['output']} px (clipped by the image at "
        f"{result.activation_fields['output']} px before)."
    )


@app.command()
def serve(
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on; 0.0.0.0 opens it to the network.")
    ] = DEFAULT_HOST,
    port: Annotated[
        int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")
    ] = DEFAULT_PORT,
    model: Annotated[
        str,
        typer.Option(
            "--model",
            "-m",
            help="Model selected at start: a shipped name, a run folder or a checkpoint. The "
            "page also offers every shipped model.",
        ),
    ] = DEFAULT_MODEL,
    max_upload_mb: Annotated[
        float, typer.Option("--max-upload-mb", min=0.001, help="Largest upload accepted, in MB.")
    ] = DemoLimits.max_upload_mb,
    max_pixels: Annotated[
        int,
        typer.Option(
            "--max-pixels", min=1, help="Largest image, or video frame, accepted, in pixels."
        ),
    ] = DemoLimits.max_pixels,
    max_video_seconds: Annotated[
        float,
        typer.Option("--max-video-seconds", min=0.001, help="Longest video clip accepted, in s."),
    ] = DemoLimits.max_video_seconds,
    concurrency: Annotated[
        int,
        typer.Option("--concurrency", min=1, help="Requests colourized at once; the rest queue."),
    ] = DEFAULT_CONCURRENCY,
    precision: PrecisionOption = "auto",
) -> None:
    """Start the web demo: upload or pick a photo, choose the model and the temperature,
    and compare grey and colour with a slider. Needs the demo extra
    (`pip install "colorcnn[demo]"`).

    It runs offline on the CPU with the shipped weights, and listens on this computer only
    unless --host says otherwise. Its Video tab colourizes short clips (--max-video-seconds).

    Examples:

    ```
    colorcnn serve
    colorcnn serve --port 8080 --max-pixels 12000000
    colorcnn serve --max-video-seconds 60
    ```
    """
    from colorcnn.demo.app import require_gradio
    from colorcnn.demo.app import serve as serve_demo
    from colorcnn.demo.service import DemoService

    require_gradio()  # a missing extra is one line before any model loads
    limits = DemoLimits(
        max_upload_mb=max_upload_mb, max_pixels=max_pixels, max_video_seconds=max_video_seconds
    )
    service = DemoService(model, limits, precision=precision)

    def started(address: str) -> None:
        typer.echo(f"colorcnn demo on {address} with {service.describe(model)}; Ctrl+C stops it")

    serve_demo(service, host, port, concurrency, started=started)


@app.command()
def download(cache_dir: CacheDirOption = None) -> None:
    """Download and verify CIFAR-10 (python version) into the cache ahead of training."""
    from colorcnn.data.cache import default_cache_dir
    from colorcnn.data.cifar import ensure_cifar10

    folder = ensure_cifar10(cache_dir or default_cache_dir())
    typer.echo(f"CIFAR-10 is ready in {folder}")


# The library's parameters whose flag is not their name in kebab case.
_FLAGS = {
    "hints_file": "--hints",
    "palette_file": "--palette",
    "run_folder": "--resume",
    "values": "VALUES",
    "prefer": "--checkpoint",
}


def _flag(parameter: str) -> str:
    """The command line's name for a library parameter: batch_size -> --batch-size."""
    return _FLAGS.get(parameter, "--" + parameter.replace("_", "-"))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        # Without standalone mode, an Exit raised by a command comes back as its status.
        status = app(args=args or ["--help"], prog_name="colorcnn", standalone_mode=False)
    except ColorcnnError as error:
        # The library names its parameters (batch_size); the command line, its flags.
        message = error.spelled(_flag) if isinstance(error, SettingError) else str(error)
        print(f"colorcnn: error: {message}", file=sys.stderr)
        return 1
    except (typer.Abort, KeyboardInterrupt):
        status = 130
    except typer.Exit as done:
        return done.exit_code
    except TyperException as error:  # malformed command line: unknown option, bad value...
        message = error.format_message() if hasattr(error, "format_message") else str(error)
        print(f"colorcnn: error: {message} (see colorcnn --help)", file=sys.stderr)
        return getattr(error, "exit_code", 2)
    if status == 130:  # typer returns an interrupt as this status, without a word
        print("colorcnn: interrupted", file=sys.stderr)
    return status if isinstance(status, int) else 0


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
