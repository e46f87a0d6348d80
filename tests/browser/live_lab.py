"""A JupyterLab server for the browser tests, started as ``make lab`` starts it."""
from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def lab_server(notebook_dir: Path, settings_dir: Path):
    """JupyterLab started by the same command as ``make lab`` (as root too) on ``notebook_dir``; yield its URL.

    Every cell is kept in the page (no windowing: JupyterLab 4 otherwise leaves cells off screen out of the DOM,
    and their outputs could not be checked), and the application is reachable as ``window.jupyterapp`` so a test
    runs the notebook's own commands (Run All, save) rather than key presses.
    """
    from kbench.cli import lab_command
    from kbench.runner import ensure_kernel

    ensure_kernel()
    tracker = settings_dir / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True, exist_ok=True)
    tracker.write_text(json.dumps({"windowingMode": "none"}))
    news = settings_dir / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True, exist_ok=True)
    news.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    port = free_port()
    command = lab_command(port=port, notebook_dir=str(notebook_dir)) + [
        "--IdentityProvider.token=", "--ServerApp.password=", "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.expose_app_in_browser=True"]
    log = open(settings_dir / "lab.log", "w")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, text=True,
                              env={**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(settings_dir)})
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    try:
        while time.time() < deadline:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited ({server.returncode}): {(settings_dir / 'lab.log').read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"{url}/api/status", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not answer within 90 s")
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
