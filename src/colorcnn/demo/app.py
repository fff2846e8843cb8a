"""The web demo's page (Gradio): upload or pick a sample, choose the model and the
temperature, compare grey and colour with a slider, place colour hints on the picture
(for models that take them), download the full-size result and the hints; in its Video
tab, colourize a short clip, watch it and download it; in its Upscale tab, make a photo two
or four times larger."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from colorcnn.color.hints import Hint
from colorcnn.errors import ColorcnnError, first_line
from colorcnn.files import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from colorcnn.inference.colorize import sample_photos

if TYPE_CHECKING:
    import gradio

    from colorcnn.demo.service import DemoLimits, DemoResult, DemoService, ResultView

DEFAULT_HOST = "127.0.0.1"  # only this computer can reach the demo unless told otherwise
DEFAULT_PORT = 7860
# Requests colourized at once; the rest wait in the queue. Two at once answered ten
# simultaneous 1 MP requests sooner than one at a time on 2 cores: the network uses every
# core, but reading, writing and sending the pictures use one (docs/results.md).
DEFAULT_CONCURRENCY = 2
CACHE_SWEEP_S, CACHE_AGE_S = 600, 3600
_INTRO = (
    "# colorcnn\n"
    "Colourize a black-and-white photo, or a short video clip, on this computer's CPU. The "
    "network predicts only the colour; the result keeps your picture's size, detail and "
    "brightness. Nothing leaves this machine."
)
_NO_TEMPERATURE = "Only ab-bins models decode with a temperature; this model has none."
_TEMPERATURE_INFO = (
    "How the colour bins are averaged: low follows the likeliest colour, 1 is the plain mean."
)
_NO_HINTS = "This model was trained without colour hints, so it takes none; choose one that does."
_HINTS_FIRST = "Colourize a photo first; then click on it here to say which colour a part is."
_HINTS_HELP = (
    "Click on the picture to add a point; it starts at the colour the result has there. "
    "Choose its colour below: only the hue and saturation count, the brightness stays the "
    "photo's. Pick a point in the list to change its colour, move it or remove it."
)
_VIDEO_STEADY_INFO = "Off: each frame is coloured alone, and colours may flicker."
_UPSCALE_INFO = "Sides made 2 or 4 times longer; colour stays colour, grey stays grey."
_log = logging.getLogger(__name__)


def _video_note(limits: DemoLimits) -> str:
    return (
        f"Clips of up to {limits.max_video_seconds:g} s, {limits.max_upload_mb:g} MB and "
        f"{limits.max_pixels / 1e6:g} MP a frame; every frame goes through the network, so a "
        "clip takes a while. The result keeps the clip's frames, rate, size and sound."
    )


@dataclass(frozen=True)
class HintPoints:
    """One page's colour hints between requests (a gr.State): the points, in the upload's
    own pixels, which of them is chosen in the list, and the latest result they are drawn on.
    The points belong to one upload; another upload starts without any."""

    upload: str | None = None
    points: tuple[Hint, ...] = ()
    chosen: int | None = None  # index into points
    view: ResultView | None = None
    hints_file: Path | None = None  # the points the latest result followed, as JSON

    def point_choices(self) -> list[tuple[str, int]]:
        return [
            (f"{index + 1}: ({hint.x:g}, {hint.y:g}) {hint.hex}", index)
            for index, hint in enumerate(self.points)
        ]


def _clicked_pixel(index: object) -> tuple[float, float] | None:
    """The page's picture pixel of a click (gr.SelectData.index); None for a click
    outside the picture, for which Gradio sends no pixel, or for anything malformed."""
    if not isinstance(index, list | tuple) or len(index) != 2:
        return None
    if not all(isinstance(value, int | float) and not isinstance(value, bool) for value in index):
        return None
    return float(index[0]), float(index[1])


def log_rejection(reason: str) -> None:
    """One line in the server log per refused upload: the page tells the person why."""
    lines = reason.strip().splitlines()
    _log.warning("colorcnn demo: rejected upload: %s", lines[0] if lines else "no reason given")


def require_gradio() -> gradio:
    # Gradio reports usage and looks for updates unless told not to: the demo stays offline.
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio
    except ImportError:
        raise ColorcnnError(
            "the web demo needs Gradio, which is not installed; expected "
            '`pip install "colorcnn[demo]"` first'
        ) from None
    return gradio


def _theme(gr: gradio) -> gradio.themes.Base:
    # System fonts: the default theme would ask a font service on the internet for its own.
    return gr.themes.Default(
        font=["ui-sans-serif", "system-ui", "sans-serif"],
        font_mono=["ui-monospace", "monospace"],
    )


def _log_refusals_in_one_line(gr: gradio, component: gradio.components.Component) -> None:
    """Gradio prints a traceback for every gr.Error a component raises while reading its
    input, such as gr.File's own refusal of a type outside file_types. That refusal is no
    fault of the server and the page shows its message either way, so it gets one line.

    The instance's method is wrapped rather than gr.File subclassed: a Gradio component
    class, when defined, writes a .pyi file beside its source."""
    preprocess = component.preprocess

    def preprocess_quietly(payload):
        try:
            return preprocess(payload)
        except gr.Error as error:
            log_rejection(str(error.message))
            error.print_exception = False
            raise

    component.preprocess = preprocess_quietly


def build_app(service: DemoService) -> gradio.Blocks:
    gr = require_gradio()

    def model_settings(model: str) -> tuple[gradio.Slider, gradio.Slider]:
        """The chosen model's own temperature (where it has one) and working size."""
        size = gr.Slider(value=service.colorizer(model).working_size)
        temperature = service.default_temperature(model)
        if temperature is None:
            return gr.Slider(interactive=False, info=_NO_TEMPERATURE), size
        return gr.Slider(value=temperature, interactive=True, info=_TEMPERATURE_INFO), size

    def colourize_with(
        path: str, model: str, temperature: float, size: float, points: tuple[Hint, ...]
    ) -> tuple[DemoResult | None, str]:
        """The result, guided by `points` where the model takes hints, or None and why not."""
        guide = points if service.takes_hints(model) else ()
        try:
            result = service.colorize_upload(path, model, temperature, int(size), guide)
        except ColorcnnError as error:
            log_rejection(str(error))
            return None, f"**Could not colourize:** {error}"
        except Exception as error:  # noqa: BLE001 - a bug must still leave one line in the page
            _log.exception("colourizing %s failed", path)
            return None, f"**Could not colourize:** unexpected {type(error).__name__}"
        return result, result.message

    def shown(result: DemoResult) -> tuple:
        """The slider's two pictures, the message and the download button of a result."""
        button = gr.DownloadButton(
            f"Download {result.width}x{result.height} PNG", value=str(result.download),
            visible=True,
        )  # fmt: skip
        return tuple(str(path) for path in result.shown_files), result.message, button

    def colorize(path: str | None, model: str, temperature: float, size: float, hints: HintPoints):
        hidden = gr.DownloadButton(visible=False)
        if not path:
            return None, "Upload a grey photo, or pick a sample below.", hidden, HintPoints()
        if hints.upload != path:
            hints = HintPoints(upload=path)  # the points belonged to another photo
        result, message = colourize_with(path, model, temperature, size, hints.points)
        if result is None:
            return None, message, hidden, replace(hints, view=None, hints_file=None)
        return *shown(result), replace(hints, view=result.view, hints_file=result.hints_file)

    def hint_panel(model: str, hints: HintPoints) -> tuple:
        """The hints tab: a note, and (for a model that takes hints, once there is a
        result) the picture with the points marked, the list, the colour and the buttons."""
        if not service.takes_hints(model):
            note = _NO_HINTS + (" The points placed are kept for one." if hints.points else "")
            return note, gr.Column(visible=False), *(gr.skip(),) * 6
        if hints.view is None:
            return _HINTS_FIRST, gr.Column(visible=False), *(gr.skip(),) * 6
        try:
            picture = service.mark_hints(hints.view, hints.points, hints.chosen)
        except ColorcnnError as error:
            return f"**{error}**", gr.Column(visible=False), *(gr.skip(),) * 6
        if hints.chosen is None:
            colour = gr.ColorPicker(interactive=False)
        else:
            colour = gr.ColorPicker(value=hints.points[hints.chosen].hex, interactive=True)
        return (
            _HINTS_HELP,
            gr.Column(visible=True),
            str(picture),
            gr.Dropdown(choices=hints.point_choices(), value=hints.chosen),
            colour,
            gr.Button(interactive=hints.chosen is not None),
            gr.Button(interactive=bool(hints.points)),
            gr.DownloadButton(value=str(hints.hints_file) if hints.hints_file else None,
                              visible=hints.hints_file is not None),
        )  # fmt: skip

    def change_hints(settings: tuple, hints: HintPoints, points: list[Hint], chosen: int | None):
        """Colourize again with the changed points, and show them; a refusal leaves the
        points and the pictures as they were, with the reason in the page."""
        path, model, temperature, size = settings
        result, message = colourize_with(path, model, temperature, size, tuple(points))
        if result is None:
            return gr.skip(), message, *skip_all[2:]
        changed = HintPoints(path, tuple(points), chosen, result.view, result.hints_file)
        return *shown(result), changed, *hint_panel(model, changed)

    def editable(path: str | None, model: str, hints: HintPoints) -> bool:
        """Whether the page's hints belong to the picture shown and the model takes them."""
        if not path or hints.upload != path or hints.view is None:
            return False
        return service.takes_hints(model)

    def place_point(path, model, temperature, size, hints: HintPoints, move: bool,
                    click: gradio.SelectData):  # fmt: skip
        """A click on the picture adds a point there, or moves the chosen one."""
        pixel = _clicked_pixel(click.index)
        if pixel is None or not editable(path, model, hints):
            return skip_all
        at = hints.view.image_pixel(*pixel)
        if at is None:
            return skip_all
        points = list(hints.points)
        if move and hints.chosen is not None:
            points[hints.chosen] = replace(points[hints.chosen], x=at[0], y=at[1])
            chosen = hints.chosen
        else:
            try:
                colour = service.colour_at(hints.view, *at)
            except ColorcnnError as error:
                log_rejection(str(error))
                return gr.skip(), f"**Could not colourize:** {error}", *skip_all[2:]
            points.append(Hint(*at, colour))
            chosen = len(points) - 1
        return change_hints((path, model, temperature, size), hints, points, chosen)

    # Gradio hands the click over to the parameter annotated with its SelectData class;
    # this module's annotations are strings, which name a module Gradio has not imported.
    place_point.__annotations__["click"] = gr.SelectData

    def recolour_point(path, model, temperature, size, hints: HintPoints, colour: str | None):
        """The colour picker changed: give the chosen point its colour. The picker also
        changes when the page shows a point's own colour, which changes nothing."""
        if not colour or hints.chosen is None or not editable(path, model, hints):
            return skip_all
        point = hints.points[hints.chosen]
        try:
            recoloured = replace(point, colour=colour)
        except ColorcnnError as error:
            log_rejection(str(error))
            return gr.skip(), f"**Could not colourize:** {error}", *skip_all[2:]
        if recoloured.hex == point.hex:
            return skip_all
        points = list(hints.points)
        points[hints.chosen] = recoloured
        return change_hints((path, model, temperature, size), hints, points, hints.chosen)

    def remove_point(path, model, temperature, size, hints: HintPoints):
        if hints.chosen is None or not editable(path, model, hints):
            return skip_all
        points = [hint for index, hint in enumerate(hints.points) if index != hints.chosen]
        chosen = min(hints.chosen, len(points) - 1) if points else None
        return change_hints((path, model, temperature, size), hints, points, chosen)

    def clear_points(path, model, temperature, size, hints: HintPoints):
        if not hints.points or not editable(path, model, hints):
            return skip_all
        return change_hints((path, model, temperature, size), hints, [], None)

    def choose_point(model: str, hints: HintPoints, index: int | None):
        if not isinstance(index, int) or not 0 <= index < len(hints.points):
            return (gr.skip(),) * 9
        chosen = replace(hints, chosen=index)
        return chosen, *hint_panel(model, chosen)

    def colorize_clip(path: str | None, model: str, stabilize: bool):
        """The colourized clip, its message and its download button, or why there is none."""
        hidden = gr.DownloadButton(visible=False)
        if not path:
            return None, "Upload a grey video clip first.", hidden
        try:
            clip = service.colorize_video_upload(path, model, bool(stabilize))
        except ColorcnnError as error:
            log_rejection(str(error))
            return None, f"**Could not colourize:** {error}", hidden
        except Exception as error:  # noqa: BLE001 - a bug must still leave one line in the page
            _log.exception("colourizing the clip %s failed", path)
            return None, f"**Could not colourize:** unexpected {type(error).__name__}", hidden
        button = gr.DownloadButton(
            f"Download {clip.width}x{clip.height} MP4", value=str(clip.video), visible=True
        )
        return str(clip.video), clip.message, button

    def upscale_photo(path: str | None, scale: str):
        """The upscaled photo, its message and its download button, or why there is none."""
        hidden = gr.DownloadButton(visible=False)
        if not path:
            return None, "Upload a photo first.", hidden
        try:
            upscaled = service.upscale_upload(path, int(scale.removeprefix("x")))
        except ColorcnnError as error:
            log_rejection(str(error))
            return None, f"**Could not upscale:** {error}", hidden
        except Exception as error:  # noqa: BLE001 - a bug must still leave one line in the page
            _log.exception("upscaling %s failed", path)
            return None, f"**Could not upscale:** unexpected {type(error).__name__}", hidden
        button = gr.DownloadButton(
            f"Download {upscaled.width}x{upscaled.height} PNG", value=str(upscaled.download),
            visible=True,
        )  # fmt: skip
        return upscaled.shown, upscaled.message, button

    first_temperature = service.default_temperature(service.default_model)
    # Gradio keeps its own copy of every upload and result; files older than an hour go.
    with gr.Blocks(
        title="colorcnn demo", analytics_enabled=False, delete_cache=(CACHE_SWEEP_S, CACHE_AGE_S)
    ) as demo:
        gr.Markdown(_INTRO)
        hints = gr.State(HintPoints())
        with gr.Tabs():
            with gr.Tab("Photo", elem_id="photo-tab"), gr.Row():
                with gr.Column(scale=1):
                    upload = gr.File(
                        label="Grey photo: drop it here or click to choose",
                        file_types=sorted(IMAGE_SUFFIXES), type="filepath", elem_id="upload",
                    )  # fmt: skip
                    _log_refusals_in_one_line(gr, upload)
                    model = gr.Dropdown(
                        choices=service.model_choices(), value=service.default_model,
                        label="Model", info="photo: natural colour; photo-vivid: more colour, "
                        "set by the temperature; cifar-horse-*: the course's 32 px horse models.",
                        elem_id="model",
                    )  # fmt: skip
                    temperature = gr.Slider(
                        0.02, 1.0, value=first_temperature or 0.38, step=0.02, label="Temperature",
                        info=_TEMPERATURE_INFO if first_temperature else _NO_TEMPERATURE,
                        interactive=first_temperature is not None, elem_id="temperature",
                    )  # fmt: skip
                    with gr.Accordion("More settings", open=False):
                        size = gr.Slider(
                            32, 512, value=service.colorizer(service.default_model).working_size,
                            step=32,
                            label="Working size (px)", info="Shorter side at which the network "
                            "runs (each model starts at its own); the result keeps the photo's "
                            "own size.", elem_id="size",
                        )  # fmt: skip
                    run = gr.Button("Colourize", variant="primary", elem_id="run")
                    gr.Examples(
                        examples=[[str(path)] for path in sample_photos()], inputs=[upload],
                        label="Samples",
                    )  # fmt: skip
                with gr.Column(scale=2):
                    with gr.Tabs():
                        with gr.Tab("Grey | colour", elem_id="compare-tab"):
                            result = gr.ImageSlider(
                                label="Grey | colour (drag the handle)", type="filepath",
                                interactive=False, elem_id="result", max_height=720,
                            )  # fmt: skip
                        with gr.Tab("Colour hints", elem_id="hints-tab"):
                            takes_hints = service.takes_hints(service.default_model)
                            hint_note = gr.Markdown(
                                _HINTS_FIRST if takes_hints else _NO_HINTS, elem_id="hint-note"
                            )
                            with gr.Column(visible=False) as hint_tools:
                                hint_picture = gr.Image(
                                    label="Click to place a colour hint", type="filepath",
                                    interactive=False, buttons=[], elem_id="hint-picture",
                                    height=560,
                                )  # fmt: skip
                                with gr.Row(equal_height=True):
                                    point_list = gr.Dropdown(
                                        label="Point (x, y in the photo's pixels)", choices=[],
                                        value=None, elem_id="hint-points",
                                    )  # fmt: skip
                                    point_colour = gr.ColorPicker(
                                        label="Its colour", interactive=False, elem_id="hint-colour"
                                    )
                                with gr.Row():
                                    move = gr.Checkbox(
                                        label="A click moves the chosen point", elem_id="hint-move"
                                    )
                                    remove = gr.Button(
                                        "Remove point", interactive=False, elem_id="hint-remove"
                                    )
                                    clear = gr.Button(
                                        "Clear all points", interactive=False, elem_id="hint-clear"
                                    )
                                hints_download = gr.DownloadButton(
                                    "Download hints (JSON)", visible=False, elem_id="hints-download"
                                )
                    status = gr.Markdown(elem_id="status")
                    download = gr.DownloadButton(visible=False, elem_id="download")
            with gr.Tab("Video", elem_id="video-tab"), gr.Row():
                with gr.Column(scale=1):
                    video_upload = gr.File(
                        label="Grey video clip: drop it here or click to choose",
                        file_types=sorted(VIDEO_SUFFIXES), type="filepath",
                        elem_id="video-upload",
                    )  # fmt: skip
                    _log_refusals_in_one_line(gr, video_upload)
                    video_model = gr.Dropdown(
                        choices=service.model_choices(), value=service.default_model,
                        label="Model", elem_id="video-model",
                    )  # fmt: skip
                    steady = gr.Checkbox(
                        value=True, label="Keep colours steady from frame to frame",
                        info=_VIDEO_STEADY_INFO, elem_id="video-steady",
                    )  # fmt: skip
                    video_run = gr.Button("Colourize video", variant="primary", elem_id="video-run")
                    gr.Markdown(_video_note(service.limits), elem_id="video-note")
                with gr.Column(scale=2):
                    video_result = gr.Video(
                        label="Colour", interactive=False, buttons=["download"],
                        elem_id="video-result", height=480,
                    )  # fmt: skip
                    video_status = gr.Markdown(elem_id="video-status")
                    video_download = gr.DownloadButton(visible=False, elem_id="video-download")
            with gr.Tab("Upscale", elem_id="upscale-tab"), gr.Row():
                with gr.Column(scale=1):
                    upscale_upload = gr.File(
                        label="Photo (colour or grey): drop it here or click to choose",
                        file_types=sorted(IMAGE_SUFFIXES), type="filepath",
                        elem_id="upscale-upload",
                    )  # fmt: skip
                    _log_refusals_in_one_line(gr, upscale_upload)
                    upscale_scale = gr.Radio(
                        ["x2", "x4"], value="x4", label="Scale", info=_UPSCALE_INFO,
                        elem_id="upscale-scale",
                    )  # fmt: skip
                    upscale_run = gr.Button("Upscale", variant="primary", elem_id="upscale-run")
                with gr.Column(scale=2):
                    upscale_result = gr.Image(
                        label="Upscaled", type="pil", interactive=False,
                        elem_id="upscale-result", height=560,
                    )  # fmt: skip
                    upscale_status = gr.Markdown(elem_id="upscale-status")
                    upscale_download = gr.DownloadButton(visible=False, elem_id="upscale-download")

        settings = [upload, model, temperature, size]
        outputs = [result, status, download]
        panel = [hint_note, hint_tools, hint_picture, point_list, point_colour, remove, clear,
                 hints_download]  # fmt: skip
        # What an edit of the hints that changes nothing answers (the handlers above).
        skip_all = tuple(gr.skip() for _ in [*outputs, hints, *panel])
        gr.on([upload.change, run.click, temperature.release], colorize,
              [*settings, hints], [*outputs, hints], api_name="colorize",
              ).then(hint_panel, [model, hints], panel, api_name=False)  # fmt: skip
        model.change(model_settings, model, [temperature, size], api_name=False).then(
            colorize, [*settings, hints], [*outputs, hints], api_name=False
        ).then(hint_panel, [model, hints], panel, api_name=False)
        # Edits of the hints colourize again at once; the pictures stay while they do.
        edited = {"outputs": [*outputs, hints, *panel], "api_name": False,
                  "show_progress": "minimal"}  # fmt: skip
        hint_picture.select(place_point, [*settings, hints, move], **edited)
        # Dragging in the colour picker changes it many times a second: only the latest
        # colour waits while the one before is colourized.
        point_colour.change(recolour_point, [*settings, hints, point_colour],
                            trigger_mode="always_last", **edited)  # fmt: skip
        remove.click(remove_point, [*settings, hints], **edited)
        clear.click(clear_points, [*settings, hints], **edited)
        point_list.input(choose_point, [model, hints, point_list], [hints, *panel],
                         api_name=False, show_progress="hidden")  # fmt: skip
        # A clip takes seconds to minutes: it is colourized on the button only.
        video_run.click(colorize_clip, [video_upload, video_model, steady],
                        [video_result, video_status, video_download],
                        api_name="colorize_video")  # fmt: skip
        gr.on([upscale_upload.change, upscale_run.click], upscale_photo,
              [upscale_upload, upscale_scale], [upscale_result, upscale_status, upscale_download],
              api_name="upscale")  # fmt: skip
    return demo


def page_address(host: str, port: int) -> str:
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def serve(
    service: DemoService,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    concurrency: int = DEFAULT_CONCURRENCY,
    quiet: bool = True,
    started: Callable[[str], None] | None = None,
) -> None:
    """Run the demo until interrupted (Ctrl+C or SIGTERM), then remove its files.

    `started` is called with the page's address once the port is bound."""
    gr = require_gradio()
    demo = build_app(service)
    demo.queue(default_concurrency_limit=concurrency)
    allowed = [str(service.work_dir)] + sorted({str(path.parent) for path in sample_photos()})
    # A service manager stops with SIGTERM: treat it as Ctrl+C, so the files go too.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        try:
            demo.launch(
                server_name=host, server_port=port, share=False, inbrowser=False, quiet=quiet,
                ssr_mode=False, show_error=False, allowed_paths=allowed, theme=_theme(gr),
                max_file_size=int(service.limits.max_upload_mb * 1e6), footer_links=["gradio"],
                prevent_thread_lock=True,
            )  # fmt: skip
        except OSError as error:  # the port is taken or the host cannot be bound
            raise ColorcnnError(
                f"cannot serve on {host}:{port} ({first_line(error)}); "
                "expected a free port (--port)"
            ) from None
        if started is not None:
            started(page_address(host, port))
        demo.block_thread()  # until Ctrl+C or SIGTERM; it closes the server itself
    finally:
        signal.signal(signal.SIGTERM, previous)
        service.close()
