"""The web demo's page (Gradio): upload or pick a sample, choose the model and the
temperature, compare grey and colour with a slider, download the full-size result."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING

from colorcnn.errors import ColorcnnError, first_line
from colorcnn.files import IMAGE_SUFFIXES
from colorcnn.inference.colorize import sample_photos

if TYPE_CHECKING:
    import gradio

    from colorcnn.demo.service import DemoService

DEFAULT_HOST = "127.0.0.1"  # only this computer can reach the demo unless told otherwise
DEFAULT_PORT = 7860
# Requests colourized at once; the rest wait in the queue. Two at once answered ten
# simultaneous 1 MP requests sooner than one at a time on 2 cores: the network uses every
# core, but reading, writing and sending the pictures use one (docs/results.md).
DEFAULT_CONCURRENCY = 2
CACHE_SWEEP_S, CACHE_AGE_S = 600, 3600
_INTRO = (
    "# colorcnn\n"
    "Colourize a black-and-white photo on this computer's CPU. The network predicts only "
    "the colour; the result keeps your photo's size, detail and brightness. Nothing leaves "
    "this machine."
)
_NO_TEMPERATURE = "Only ab-bins models decode with a temperature; this model has none."
_TEMPERATURE_INFO = (
    "How the colour bins are averaged: low follows the likeliest colour, 1 is the plain mean."
)
_log = logging.getLogger(__name__)


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

    def colorize(path: str | None, model: str, temperature: float, size: float):
        hidden = gr.DownloadButton(visible=False)
        if not path:
            return None, "Upload a grey photo, or pick a sample below.", hidden
        try:
            result = service.colorize_upload(path, model, temperature, int(size))
        except ColorcnnError as error:
            log_rejection(str(error))
            return None, f"**Could not colourize:** {error}", hidden
        except Exception as error:  # noqa: BLE001 - a bug must still leave one line in the page
            _log.exception("colourizing %s failed", path)
            return None, f"**Could not colourize:** unexpected {type(error).__name__}", hidden
        shown = gr.DownloadButton(
            f"Download {result.width}x{result.height} PNG", value=str(result.download),
            visible=True,
        )  # fmt: skip
        return tuple(str(path) for path in result.shown_files), result.message, shown

    first_temperature = service.default_temperature(service.default_model)
    # Gradio keeps its own copy of every upload and result; files older than an hour go.
    with gr.Blocks(
        title="colorcnn demo", analytics_enabled=False, delete_cache=(CACHE_SWEEP_S, CACHE_AGE_S)
    ) as demo:
        gr.Markdown(_INTRO)
        with gr.Row():
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
                result = gr.ImageSlider(
                    label="Grey | colour (drag the handle)", type="filepath", interactive=False,
                    elem_id="result", max_height=720,
                )  # fmt: skip
                status = gr.Markdown(elem_id="status")
                download = gr.DownloadButton(visible=False, elem_id="download")

        settings = [upload, model, temperature, size]
        outputs = [result, status, download]
        gr.on([upload.change, run.click, temperature.release], colorize, settings, outputs,
              api_name="colorize")  # fmt: skip
        model.change(model_settings, model, [temperature, size], api_name=False).then(
            colorize, settings, outputs, api_name=False
        )
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
