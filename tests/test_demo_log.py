"""What `colorcnn serve` writes to its log when it refuses an upload: one line each, no
traceback. The page's messages are tested in tests/test_demo_browser.py; this drives the
server through Gradio's own client, so it needs the demo extra but no browser."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import start_demo_server
from PIL import Image

PIXEL_LIMIT = 10_000


def test_each_refused_upload_is_one_line_in_the_server_log(tmp_path: Path) -> None:
    pytest.importorskip("gradio", reason="the demo extra (Gradio) is not installed")
    client_module = pytest.importorskip("gradio_client", reason="gradio_client is not installed")
    from gradio_client.exceptions import AppError

    notes = tmp_path / "notes.txt"  # refused by the page's file types (Gradio itself)
    notes.write_text("not a photo")
    wide = tmp_path / "wide.png"  # refused by the demo's pixel limit
    Image.new("L", (200, 100), 128).save(wide)

    log = tmp_path / "serve.log"
    process, url = start_demo_server(log, "--max-pixels", str(PIXEL_LIMIT))
    try:
        client = client_module.Client(url, verbose=False, download_files=str(tmp_path / "d"))
        with pytest.raises(AppError, match="Invalid file type"):
            client.predict(client_module.handle_file(str(notes)), "photo", 0.38, 128,
                           api_name="/colorize")  # fmt: skip
        _, message, _ = client.predict(
            client_module.handle_file(str(wide)), "photo", 0.38, 128, api_name="/colorize"
        )
        assert "wide.png is 200x100 px" in message
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
    lines = log.read_text().splitlines()
    assert not any("Traceback" in line for line in lines), "\n".join(lines)
    refused = [line for line in lines if "rejected upload" in line]
    assert len(refused) == 2, "\n".join(lines)
    assert refused[0].startswith("colorcnn demo: rejected upload: Invalid file type.")
    assert refused[1].startswith("colorcnn demo: rejected upload: wide.png is 200x100 px")
