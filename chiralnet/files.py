"""Read TOML input files with one-line errors, and write files atomically: every file chiralnet writes goes to a temporary name in the target folder
first and is then renamed with :func:`os.replace`, so a crash or an error never leaves a half-written file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_text", "read_toml", "check_target"]


def check_target(path, error=None) -> Path:
    """``path`` as a Path, after refusing a name the atomic writers must not write to.

    A NUL byte in the name (the OS would refuse it with a bare ValueError), and an existing target that
    is not a regular file (a FIFO, a device, a socket, a folder; a symbolic link is judged by what it
    points to): renaming a temporary file over it would replace, say, ``/dev/null`` or a named pipe a
    reader is waiting on with a regular file.

    Parameters
    ----------
    path : str or os.PathLike
    error : type, optional
        The ChiralnetError subclass to raise (default :class:`~chiralnet.errors.ChiralnetError`).
    """
    import stat

    from .errors import ChiralnetError

    error = error or ChiralnetError
    try:
        text = os.fspath(path)
    except TypeError:
        raise error(f"path must be a file name (str or os.PathLike), got {path!r:.80}") from None
    if "\0" in (text if isinstance(text, str) else text.decode("latin-1")):
        raise error(f"path {text!r:.80} contains a NUL byte, which no file name can hold; remove it")
    p = Path(os.fsdecode(text))
    try:
        mode = os.stat(p).st_mode
    except FileNotFoundError:
        return p
    except OSError:  # no permission to look, a dangling link loop: the write itself reports it
        return p
    if stat.S_ISDIR(mode):
        raise error(f"{p} is a folder; give the name of a file to write inside it (e.g. {p / 'out'})")
    if not stat.S_ISREG(mode):
        kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a character device" if stat.S_ISCHR(mode)
                else "a block device" if stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode)
                else "not a regular file")
        raise error(f"{p} exists and is {kind}; chiralnet writes a new regular file and would replace it, so it "
                    "refuses: give the name of a regular file (or a new one)")
    return p



@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; on success rename it to ``path``, on error delete it.

    ``path`` is checked first and again before the rename (:func:`check_target`): a name with a NUL byte
    and an existing target that is not a regular file (a FIFO, a device) raise a ChiralnetError.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from chiralnet.files import atomic_path
    >>> target = Path(tempfile.mkdtemp()) / "x.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = Path(tmp).write_text("done")
    >>> target.read_text()
    'done'
    """
    path = check_target(path)
    # A fresh unique name, not created here, so the writer creates it with the usual permissions.
    tmp = str(path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        yield tmp
        check_target(path)  # again: a FIFO made at the target while the file was written is not replaced
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if tmp in (exc.filename, exc.filename2):  # the user asked for `path`; the temporary name means nothing
            raise _renamed(exc, str(path)) from None
        raise
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _renamed(exc: OSError, target: str) -> OSError:
    """The same OSError (class, errno, message) naming ``target`` instead of a temporary file."""
    if exc.errno is None:
        new = type(exc)(f"cannot write {target}: {exc}")
        new.filename = target
        return new
    try:
        return type(exc)(exc.errno, exc.strerror, target)
    except TypeError:  # an OSError subclass with another constructor
        return OSError(exc.errno, exc.strerror, target)


def atomic_write_text(path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file and :func:`os.replace`."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)


def read_toml(path, what: str, error, example: str = "") -> dict:
    """The parsed TOML file ``path`` (a scenario, sweep, spectrum or optimisation file), or ``error`` (a
    ChiralnetError subclass) with one line naming the file and what is wrong: missing, unreadable (a
    folder, no permission), not UTF-8, not TOML, or nested too deeply to parse."""
    try:
        import tomllib
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10 (tomli is a dependency there)
        import tomli as tomllib
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        hint = f" (see {example})" if example else ""
        raise error(f"{path}: file not found; expected a TOML {what} file{hint}") from None
    except OSError as exc:  # a folder, no permission: bad input, not a failed write
        raise error(f"{path}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not valid TOML: not UTF-8 text at byte {exc.start}") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: not valid TOML: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise error(f"{path}: not valid TOML: arrays or tables nested too deeply") from None
