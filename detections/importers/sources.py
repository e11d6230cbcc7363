"""The files of an import: from folders, single files and ZIP archives, read with limits.

Every file comes back as a SourceFile with its bytes, or with the reason it cannot be
read. A problem with one file never stops the others. A ZIP archive that breaks an
archive-wide limit (entries, uncompressed bytes) comes back as one failed file, the
archive itself, with none of its entries read.
"""

from __future__ import annotations

import os
import stat
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from django.conf import settings

from detections.content.files import UnreadableFile, read_inside, read_regular

YAML_SUFFIXES = (".yml", ".yaml")
# Archives inside an archive are rejected, by name and by their first bytes, because
# each level can multiply the size again.
ARCHIVE_SUFFIXES = (
    ".zip", ".jar", ".gz", ".tgz", ".bz2", ".xz", ".zst", ".7z", ".rar", ".tar", ".cab", ".lzma",
)
ARCHIVE_MAGIC = (
    b"PK\x03\x04",  # ZIP
    b"PK\x05\x06",  # empty ZIP
    b"\x1f\x8b",  # gzip
    b"BZh",  # bzip2
    b"\xfd7zXZ\x00",  # xz
    b"7z\xbc\xaf\x27\x1c",  # 7-Zip
    b"Rar!\x1a\x07",  # RAR
    b"\x28\xb5\x2f\xfd",  # Zstandard
    b"MSCF",  # Microsoft cabinet
)
TAR_MAGIC_OFFSET = 257


@dataclass(frozen=True)
class ImportLimits:
    """The size limits of one import, from the IMPORT_* settings."""

    max_file_bytes: int
    max_nesting: int
    max_values: int
    max_archive_entries: int
    max_archive_bytes: int

    @classmethod
    def from_settings(cls) -> ImportLimits:
        return cls(
            max_file_bytes=settings.IMPORT_MAX_FILE_BYTES,
            max_nesting=settings.IMPORT_MAX_NESTING,
            max_values=settings.IMPORT_MAX_VALUES,
            max_archive_entries=settings.IMPORT_MAX_ARCHIVE_ENTRIES,
            max_archive_bytes=settings.IMPORT_MAX_ARCHIVE_BYTES,
        )


@dataclass
class SourceFile:
    """One input file: `path` is stored with what it creates, `label` names it in reports."""

    path: str
    label: str
    data: bytes | None = None
    error: str | None = None


def printable(name: str) -> str:
    """Replace control and format characters in a file name, so reports show it on one line."""
    if name.isprintable():
        # No control, format or separator character other than the space: the common case.
        return name
    return "".join(
        "?" if unicodedata.category(char) in {"Cc", "Cf", "Zl", "Zp"} else char for char in name
    )


def sources_from_paths(
    paths: list[Path], limits: ImportLimits, suffixes: tuple[str, ...] = YAML_SUFFIXES
) -> Iterator[SourceFile]:
    """Yield the files of each path: a folder's YAML files, a single file, or a ZIP's entries."""
    for path in paths:
        label = printable(str(path))
        if path.is_dir():
            yield from _folder_sources(path, limits, suffixes)
        elif path.suffix.lower() == ".zip":
            try:
                handle = path.open("rb")
            except OSError as exc:
                yield SourceFile(path.name, label, error=f"cannot be opened: {exc.strerror}")
                continue
            with handle:
                yield from zip_sources(handle, label, limits, suffixes)
        else:
            yield _single_file(path, label, limits)


def _single_file(path: Path, label: str, limits: ImportLimits) -> SourceFile:
    source = SourceFile(printable(path.name), label)
    try:
        # A file named on the command line may be a link; its target is what was meant.
        resolved = path.resolve()
        source.data = read_inside(resolved, resolved.parent, limits.max_file_bytes)
    except (OSError, RuntimeError) as exc:
        source.error = f"cannot be resolved: {exc}"
    except UnreadableFile as exc:
        source.error = str(exc)
    return source


def _folder_sources(
    folder: Path, limits: ImportLimits, suffixes: tuple[str, ...]
) -> Iterator[SourceFile]:
    """Yield a folder's files with the given suffixes, in sorted order, links not followed
    out of the folder."""
    # A folder named on the command line may be a link. Links inside it are not followed
    # out of it: linked folders are not entered, and read_inside checks linked files.
    root = folder.resolve()
    prefix = folder.name or root.name
    for relative, is_link in sorted(_walk(str(root), suffixes)):
        label = printable(f"{prefix}/{relative}")
        source = SourceFile(label, label)
        path = root / relative
        try:
            if is_link:
                source.data = read_inside(path, root, limits.max_file_bytes)
            else:
                # Not a link, in a folder reached without links: inside the folder.
                source.data = read_regular(path, limits.max_file_bytes)
        except UnreadableFile as exc:
            source.error = str(exc)
        yield source


def _walk(root: str, suffixes: tuple[str, ...]) -> Iterator[tuple[str, bool]]:
    """Yield (path relative to root, is a link) of each file with one of the suffixes.

    Uses os.scandir, whose entries know their type without another stat() call, so
    listing a few thousand rule files costs milliseconds. Linked folders are not entered.
    """
    pending = [""]
    while pending:
        relative_folder = pending.pop()
        with os.scandir(os.path.join(root, relative_folder)) as entries:
            for entry in entries:
                relative = f"{relative_folder}/{entry.name}" if relative_folder else entry.name
                is_link = entry.is_symlink()
                if not is_link and entry.is_dir(follow_symlinks=False):
                    pending.append(relative)
                elif entry.name.lower().endswith(suffixes):
                    yield relative, is_link


def zip_sources(
    handle: IO[bytes], label: str, limits: ImportLimits, suffixes: tuple[str, ...] = YAML_SUFFIXES
) -> Iterator[SourceFile]:
    """Yield the entries of a ZIP archive with the given suffixes, each read with the limits.

    Entries with absolute or `..` paths, links, encryption or nested archives fail one
    by one. Too many entries, or more uncompressed bytes than the limit, fail the whole
    archive before any entry is read.
    """
    archive_name = label.rsplit("/", 1)[-1]
    try:
        archive = zipfile.ZipFile(handle)
        entries = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        yield SourceFile(archive_name, label, error=f"not a readable ZIP archive: {exc}")
        return
    problem = _archive_problem(entries, limits)
    if problem:
        yield SourceFile(archive_name, label, error=problem)
        return
    read_total = 0
    with archive:
        for entry in entries:
            if entry.is_dir():
                continue
            name = printable(entry.filename)
            source = SourceFile(name, f"{label}:{name}")
            problem = _entry_problem(entry, suffixes)
            if problem == "skip":
                continue
            if problem:
                source.error = problem
                yield source
                continue
            try:
                data = _entry_read(archive, entry, limits.max_file_bytes)
            except _EntryError as exc:
                source.error = str(exc)
                yield source
                continue
            read_total += len(data)
            if read_total > limits.max_archive_bytes:
                # The sizes in the archive's directory were false: stop reading.
                source.error = (
                    f"the archive holds more than {limits.max_archive_bytes} bytes once "
                    "uncompressed; the rest of it was not read"
                )
                yield source
                return
            if _is_archive(data):
                source.error = "is an archive inside the archive; nested archives are not read"
            else:
                source.data = data
            yield source


class _EntryError(Exception):
    """An archive entry that cannot be read within the limits."""


def _archive_problem(entries: list[zipfile.ZipInfo], limits: ImportLimits) -> str | None:
    if len(entries) > limits.max_archive_entries:
        return (
            f"the archive has {len(entries)} entries; the limit is "
            f"{limits.max_archive_entries}, so none was read"
        )
    declared = sum(entry.file_size for entry in entries)
    if declared > limits.max_archive_bytes:
        return (
            f"the archive holds {declared} bytes once uncompressed; the limit is "
            f"{limits.max_archive_bytes}, so none was read"
        )
    return None


def _entry_problem(entry: zipfile.ZipInfo, suffixes: tuple[str, ...]) -> str | None:
    """Describe why an entry is rejected, return "skip" for files of other kinds, or None."""
    name = entry.filename
    mode = entry.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "is a symbolic link; archives may contain regular files only"
    if "\\" in name or "\0" in name:
        return "has a backslash or NUL in its path; use / to separate folders"
    path = PurePosixPath(name)
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "has an absolute path; entries must be relative to the archive"
    if ".." in path.parts:
        return "has '..' in its path, which points outside the archive"
    lowered = name.lower()
    if lowered.endswith(ARCHIVE_SUFFIXES):
        return "is an archive inside the archive; nested archives are not read"
    if not lowered.endswith(suffixes):
        return "skip"
    if entry.flag_bits & 0x1:
        return "is encrypted; encrypted entries are not read"
    return None


def _entry_read(archive: zipfile.ZipFile, entry: zipfile.ZipInfo, max_bytes: int) -> bytes:
    if entry.file_size > max_bytes:
        raise _EntryError(f"file is larger than the limit of {max_bytes} bytes")
    try:
        with archive.open(entry) as handle:
            # The directory's size may be false: read at most one byte past the limit.
            data = handle.read(max_bytes + 1)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError) as exc:
        raise _EntryError(f"cannot be read from the archive: {exc}") from exc
    except RuntimeError as exc:
        # zipfile raises RuntimeError for entries that need a password.
        raise _EntryError(f"cannot be read from the archive: {exc}") from exc
    if len(data) > max_bytes:
        raise _EntryError(f"file is larger than the limit of {max_bytes} bytes")
    return data


def _is_archive(data: bytes) -> bool:
    if data.startswith(ARCHIVE_MAGIC):
        return True
    return data[TAR_MAGIC_OFFSET : TAR_MAGIC_OFFSET + 5] == b"ustar"
