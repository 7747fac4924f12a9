"""Headless Chromium for the report tests: a screenshot, or the text of the DOM it built."""

from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest


def chromium() -> str | None:
    """The Chromium binary, if any."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def browser() -> str:
    """Chromium, or a skip (a failure under CI, which must render the report)."""
    browser = chromium()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing; CI must render the report (apt-get install chromium)")
        pytest.skip("Chromium not installed (apt-get install chromium)")
    return browser


def headless(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Chromium, headless, offline, with its profile in ``profile``, given ``args``."""
    return subprocess.run(
        [
            browser(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class _Text(HTMLParser):
    """The text of a DOM, without tags, scripts or styles."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self._skip += tag in ("style", "script", "title")

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("style", "script", "title")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def rendered_text(report: Path, profile: Path) -> str:
    """The text of the page as headless Chromium built its DOM (``--dump-dom``)."""
    proc = headless(profile, "--dump-dom", report.resolve().as_uri())
    assert "<body" in proc.stdout, proc.stderr[-2000:]
    parser = _Text()
    parser.feed(proc.stdout)
    return " ".join(" ".join(parser.parts).split())
