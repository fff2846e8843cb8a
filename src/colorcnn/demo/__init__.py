"""The web demo (`colorcnn serve`): colourize in the browser with the shipped weights,
offline, on a CPU. Needs the `demo` extra: `pip install "colorcnn[demo]"`."""

from colorcnn.demo.service import DemoLimits, DemoResult, DemoService

__all__ = ["DemoLimits", "DemoResult", "DemoService"]
