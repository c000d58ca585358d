"""Files written atomically and durably, with the usual permissions.

A temporary file next to the target, flushed and fsynced, renamed over the
target, then the directory fsynced so the rename itself survives a crash.
The temporary is created with mode 0666 less the umask (as ``open`` would),
not ``mkstemp``'s 0600, so collaborators can read what a run writes.
"""

import os
import secrets


def temporary_name(path):
    """``DIR/.NAME.<pid>.<random>.tmp`` for the target ``DIR/NAME``."""
    directory, name = os.path.split(os.path.abspath(path))
    return os.path.join(directory, f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def fsync_directory(directory):
    """Make a rename or removal in ``directory`` durable (where the OS allows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def write_atomic(path, write, binary=True):
    """Write ``path`` by ``write(f)`` on a temporary file, then rename it over ``path``."""
    tmp = temporary_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with (os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8")) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_directory(os.path.dirname(os.path.abspath(path)))
