"""Reading content files without following links out of the content folder.

A content folder may come from an untrusted branch or archive, so a file is read
only when it resolves to a regular file inside the folder. Reads stop after the
size limit plus one byte, because st_size is 0 for devices such as /dev/zero and
a file can grow between stat() and read().
"""

import os
import stat
from pathlib import Path


class UnreadableFile(Exception):
    """A content file that is missing, not a regular file, outside the folder or too large."""


def read_inside(path: Path, folder: Path, max_bytes: int) -> bytes:
    """Return the bytes of `path`, which must resolve to a regular file inside `folder`.

    `folder` must already be resolved. Raises UnreadableFile with the reason.
    """
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError) as exc:
        # Python 3.11 raises RuntimeError for a symlink loop.
        raise UnreadableFile(f"cannot be resolved: {exc}") from exc
    if not resolved.is_relative_to(folder):
        raise UnreadableFile(f"is a link to {resolved}, which is outside {folder}")
    return read_regular(resolved, max_bytes)


def read_regular(path: Path, max_bytes: int) -> bytes:
    """Return the bytes of `path`, which must be a regular file and not a symbolic link.

    Callers that know `path` lies inside their folder, such as a walk that does not
    follow links, skip the path resolution of read_inside. Raises UnreadableFile.
    """
    try:
        _check_regular(os.stat(path).st_mode)
        # If a FIFO replaced the file after the stat() above, O_NONBLOCK keeps open()
        # from waiting for a writer. If a symlink replaced it, O_NOFOLLOW rejects it.
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except FileNotFoundError as exc:
        raise UnreadableFile("file not found") from exc
    except OSError as exc:
        raise UnreadableFile(f"cannot be opened: {exc.strerror}") from exc
    with os.fdopen(descriptor, "rb") as handle:
        _check_regular(os.fstat(descriptor).st_mode)
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise UnreadableFile(f"file is larger than the limit of {max_bytes} bytes")
    return data


def _check_regular(mode: int) -> None:
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        raise UnreadableFile("is a directory, not a file")
    kinds = {
        stat.S_ISFIFO: "a FIFO",
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
        stat.S_ISSOCK: "a socket",
    }
    kind = next((name for test, name in kinds.items() if test(mode)), "a special file")
    raise UnreadableFile(f"is {kind}, not a regular file")
