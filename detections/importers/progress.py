"""A progress bar for long imports, drawn on stderr only when stderr is a terminal."""

from __future__ import annotations

import time
from typing import TextIO

BAR_WIDTH = 30
# Seconds between redraws, so a fast loop does not spend its time writing to the terminal.
REDRAW_INTERVAL = 0.1


class Progress:
    """A one-line bar (`label [#####     ] 120/3754`) rewritten in place with a carriage return.

    Does nothing when the stream is not a terminal, so logs and pipes stay clean.
    """

    def __init__(self, stream: TextIO | None):
        self.stream = stream
        self.enabled = bool(stream is not None and stream.isatty())
        self.label = ""
        self.total = 0
        self.done = 0
        self._drawn_at = 0.0

    def start(self, label: str, total: int) -> None:
        self.label, self.total, self.done = label, total, 0
        self._draw(force=True)

    def advance(self, count: int = 1) -> None:
        self.done += count
        self._draw()

    def finish(self) -> None:
        if self.enabled and self.total:
            self.done = self.total
            self._draw(force=True)
            self.stream.write("\n")
            self.stream.flush()
        self.total = 0

    def _draw(self, force: bool = False) -> None:
        if not self.enabled or not self.total:
            return
        now = time.monotonic()
        if not force and now - self._drawn_at < REDRAW_INTERVAL:
            return
        self._drawn_at = now
        filled = BAR_WIDTH * min(self.done, self.total) // self.total
        bar = "#" * filled + " " * (BAR_WIDTH - filled)
        self.stream.write(f"\r{self.label} [{bar}] {self.done}/{self.total}")
        self.stream.flush()
