"""Processing many files (colourizing, upscaling): inputs from files, folders and globs;
outputs that keep their names; nothing overwritten unless asked; one line per failure and
a summary."""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from tqdm.auto import tqdm

from colorcnn.errors import ColorcnnError, first_line
from colorcnn.files import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from colorcnn.inference.images import LoadedImage, read_image, save_image

# Output formats Pillow writes well; other inputs (e.g. GIF) are written as PNG.
_KEPT_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"})
# Videos are written as H.264 in these containers; found videos go to NAME.mp4.
VIDEO_OUTPUT_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".mkv"})


@dataclass
class Job:
    source: Path
    target: Path


@dataclass
class Summary:
    done: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    had_colour: list[Path] = field(default_factory=list)
    seconds: float = 0.0


def is_video(path: Path) -> bool:
    """Whether `path` is taken for a video (by its suffix; opening it tells for sure)."""
    return path.suffix.lower() in VIDEO_SUFFIXES


def _output_name(source: Path, relative_to: Path | None) -> Path:
    relative = source.relative_to(relative_to) if relative_to else Path(source.name)
    if is_video(source):
        return relative.with_suffix(".mp4")
    suffix = source.suffix.lower()
    return relative if suffix in _KEPT_SUFFIXES else relative.with_suffix(".png")


def _is_input_file(path: Path, videos: bool) -> bool:
    suffix = path.suffix.lower()
    wanted = suffix in IMAGE_SUFFIXES or (videos and suffix in VIDEO_SUFFIXES)
    return wanted and not path.is_dir()


def _real(path: Path) -> Path:
    """The path with links followed as far as they go; a symlink loop stays as it is (it
    is reported when it is read) instead of raising here."""
    return Path(os.path.realpath(path))


def plan_jobs(
    inputs: list[str], out_dir: Path, recursive: bool = False, videos: bool = False
) -> tuple[list[Job], list[tuple[Path, str]]]:
    """Expand files, folders and glob patterns into (source, target) pairs, and the inputs
    that do not exist. Files found in a folder keep their path below it; the others keep
    their file name. The output folder itself is never read as input. An `out_dir` with an
    image (or, with `videos`, a video) suffix that is not a folder names the output file of
    a single input. With `videos`, folders and globs also yield videos, written as
    NAME.mp4."""
    out_dir = Path(out_dir)
    out_suffix = out_dir.suffix.lower()
    as_video_file = videos and out_suffix in VIDEO_SUFFIXES and not out_dir.is_dir()
    if as_video_file and out_suffix not in VIDEO_OUTPUT_SUFFIXES:
        raise ColorcnnError(
            f"-o {out_dir}: videos are not written as {out_dir.suffix}; expected a folder or "
            f"a file ending in one of {', '.join(sorted(VIDEO_OUTPUT_SUFFIXES))}"
        )
    as_file = as_video_file or (out_suffix in IMAGE_SUFFIXES and not out_dir.is_dir())
    if as_file and not as_video_file and out_suffix not in _KEPT_SUFFIXES:
        raise ColorcnnError(
            f"-o {out_dir}: results are not written as {out_dir.suffix}; expected a folder or "
            f"a file ending in one of {', '.join(sorted(_KEPT_SUFFIXES))}"
        )
    if out_dir.exists() and not out_dir.is_dir() and not as_file:
        raise ColorcnnError(
            f"-o {out_dir} is a file; expected a folder for the results (or, for one input, "
            "an image file name)"
        )
    jobs: list[Job] = []
    missing: list[tuple[Path, str]] = []
    out_resolved = _real(out_dir.expanduser())

    def inside_output(path: Path) -> bool:
        return _real(path).is_relative_to(out_resolved)

    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            if inside_output(path):
                raise ColorcnnError(
                    f"input folder {path} is the output folder or inside it; choose another -o"
                )
            pattern = "**/*" if recursive else "*"
            found = sorted(p for p in path.glob(pattern) if _is_input_file(p, videos))
            jobs += [Job(p, out_dir / _output_name(p, path)) for p in found if not inside_output(p)]
        elif path.exists() or path.is_symlink():
            jobs.append(Job(path, out_dir / _output_name(path, None)))
        elif glob.has_magic(item):
            matches = sorted(Path(p) for p in glob.glob(str(path), recursive=True))
            jobs += [
                Job(p, out_dir / _output_name(p, None))
                for p in matches
                if _is_input_file(p, videos) and not inside_output(p)
            ]
        else:
            missing.append((path, f"{item} does not exist; expected a file, folder or glob"))
    unique: dict[Path, Job] = {}
    for job in jobs:  # the same file named twice is colourized once
        unique.setdefault(_real(job.source), job)
    if as_file:
        if len(unique) > 1:
            raise ColorcnnError(
                f"-o {out_dir} names one file, but {len(unique)} images were given; expected a "
                "folder for several"
            )
        for job in unique.values():
            if is_video(job.source) != as_video_file:
                raise ColorcnnError(
                    f"-o {out_dir} names {'a video' if as_video_file else 'an image'} file, "
                    f"but {job.source} is {'a video' if is_video(job.source) else 'an image'}; "
                    f"expected a folder or a file name ending like {job.target.suffix}"
                )
            job.target = out_dir
    targets: dict[Path, Path] = {}
    for job in unique.values():
        if _real(job.target) == _real(job.source):
            raise ColorcnnError(
                f"{job.source} would be overwritten by its own result; choose another -o"
            )
        if job.target in targets:
            raise ColorcnnError(
                f"{job.source} and {targets[job.target]} would both be written to {job.target}; "
                "colourize them into different folders"
            )
        targets[job.target] = job.source
    return list(unique.values()), missing


def run_jobs(
    jobs: list[Job],
    work: Callable[[Job], bool],
    *,
    overwrite: bool = False,
    report: Callable[[str], None] = tqdm.write,
    progress: Iterable[Job] | None = None,
) -> Summary:
    """Do every job with `work`, which writes the job's target and says whether its input
    had colour; a job that fails is reported in one line and the rest go on; nothing is
    overwritten without `overwrite`. `progress` walks the jobs with a progress bar."""
    summary = Summary()
    started = time.perf_counter()
    for job in jobs if progress is None else progress:
        if job.target.exists() and not overwrite:
            summary.skipped.append(job.source)
            report(f"skipped {job.source}: {job.target} exists (pass --overwrite to replace it)")
            continue
        try:
            had_colour = work(job)
        except ColorcnnError as error:
            summary.failed.append((job.source, str(error)))
            report(f"failed {job.source}: {error}")
            continue
        except Exception as error:  # noqa: BLE001 - one odd file must not end the batch
            message = f"{type(error).__name__}: {first_line(error)}"
            summary.failed.append((job.source, message))
            report(f"failed {job.source}: {message}")
            continue
        if had_colour:
            summary.had_colour.append(job.source)
        summary.done.append(job.target)
    summary.seconds = time.perf_counter() - started
    return summary


def process_files(
    jobs: list[Job],
    transform: Callable[[LoadedImage, Path], Image.Image],
    *,
    overwrite: bool = False,
    show_progress: bool = True,
    report: Callable[[str], None] = tqdm.write,
    desc: str = "Processing",
) -> Summary:
    """Read, transform (the image and its source path) and write every image job, through
    `run_jobs`."""

    def transform_file(job: Job) -> bool:
        # Its full-size arrays are freed on return, before the next file is read.
        loaded = read_image(job.source)
        save_image(transform(loaded, job.source), job.target)
        return loaded.was_colour

    progress = tqdm(jobs, desc=desc, unit="image", disable=not show_progress or len(jobs) < 2)
    return run_jobs(jobs, transform_file, overwrite=overwrite, report=report, progress=progress)
