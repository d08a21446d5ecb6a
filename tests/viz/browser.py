"""Load a page in a real headless Chromium: its console messages, DOM and a screenshot."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

NAMES = ("chromium", "chromium-browser", "google-chrome")


@dataclass
class Loaded:
    console: list[str]
    dom: str
    screenshot: np.ndarray


def chromium() -> str:
    for name in NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise AssertionError("the report tests need Chromium: apt-get install -y chromium")


def load(page: Path, size: tuple[int, int] = (1200, 1600)) -> Loaded:
    import matplotlib.image

    with tempfile.TemporaryDirectory() as profile:
        shot = Path(profile) / "shot.png"
        done = subprocess.run(
            [
                chromium(),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                f"--user-data-dir={profile}/user",
                "--enable-logging=stderr",
                "--v=0",
                f"--window-size={size[0]},{size[1]}",
                f"--screenshot={shot}",
                "--dump-dom",
                page.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        console = [line for line in done.stderr.splitlines() if re.search(r":CONSOLE", line)]
        image = matplotlib.image.imread(shot)
    return Loaded(console, done.stdout, image)
