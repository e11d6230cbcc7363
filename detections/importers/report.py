"""The summary every importer returns: counts, failures and warnings, as text or JSON."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Failure:
    """A file that was not imported, with the reason and the line (from 1) where known."""

    file: str
    reason: str
    line: int | None = None

    def as_dict(self) -> dict:
        entry: dict = {"file": self.file, "reason": self.reason}
        if self.line is not None:
            entry["line"] = self.line
        return entry

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.reason}"


@dataclass(frozen=True)
class Notice:
    """Something an imported file asked for that was left out, such as an unknown ATT&CK id."""

    file: str
    message: str
    line: int | None = None

    def as_dict(self) -> dict:
        entry: dict = {"file": self.file, "message": self.message}
        if self.line is not None:
            entry["line"] = self.line
        return entry


@dataclass
class ImportSummary:
    """The outcome of one import: counts of rules (or tests, or ATT&CK objects), and the
    failed files."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: list[Failure] = field(default_factory=list)
    warnings: list[Notice] = field(default_factory=list)
    renders_queued: int = 0

    def fail(self, file: str, reason: str, line: int | None = None) -> None:
        self.failed.append(Failure(file, reason, line))

    def warn(self, file: str, message: str, line: int | None = None) -> None:
        self.warnings.append(Notice(file, message, line))

    @property
    def succeeded(self) -> bool:
        return not self.failed

    def as_dict(self) -> dict:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "failed": [failure.as_dict() for failure in self.failed],
            "warnings": [warning.as_dict() for warning in self.warnings],
        }

    def text_lines(self, *, max_warnings: int = 20) -> list[str]:
        """Return the summary for a terminal: counts, every failure, and warnings grouped."""
        lines = [
            f"created: {self.created}, updated: {self.updated}, unchanged: {self.unchanged}, "
            f"failed: {len(self.failed)}"
        ]
        lines += [f"failed: {failure}" for failure in self.failed]
        if self.warnings:
            # The same message for many files (an ATT&CK id missing from the catalogue)
            # is printed once with its count; --format json lists every file.
            counts = Counter(warning.message for warning in self.warnings)
            lines.append(f"warnings: {len(self.warnings)} in {len(counts)} kinds")
            for message, count in counts.most_common(max_warnings):
                suffix = f" ({count} files)" if count > 1 else ""
                lines.append(f"warning: {message}{suffix}")
            if len(counts) > max_warnings:
                rest = len(counts) - max_warnings
                lines.append(f"... and {rest} more kinds; --format json lists all")
        return lines
