"""The ``chiralnet`` command (``python -m chiralnet`` does the same): one subcommand module each.

No physics here: every number comes from a library function; these modules parse arguments, print
tables and write files. :mod:`~chiralnet.cli.run` has ``run``, ``steady`` and ``paper``;
:mod:`~chiralnet.cli.sweep` ``sweep`` and ``study``; :mod:`~chiralnet.cli.spectrum` ``spectrum``;
:mod:`~chiralnet.cli.optimize` ``optimize``.

Adding subcommands
------------------
A module in :data:`COMMANDS` exposes ``register(subparsers)`` and adds its commands with
:func:`add_command`, which gives every command ``--debug`` and an example in its ``--help``. A handler
takes the parsed ``args`` and returns an exit status (or None for 0). Errors are handled once, in
:func:`main`: a :class:`~chiralnet.errors.ChiralnetError` (bad input) prints one line
``chiralnet: error: ...`` and exits with status 2; an ``OSError`` (cannot write) prints one line and
exits with 1; ``--debug`` shows the traceback instead. Write output files with
:func:`chiralnet.files.atomic_path` / :func:`chiralnet.files.atomic_write_text` so nothing is half written.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap

from ..errors import ChiralnetError

__all__ = ["main", "build_parser", "add_command", "COMMANDS", "EXIT_BAD_INPUT", "EXIT_IO"]

EXIT_BAD_INPUT = 2
EXIT_IO = 1


# ---------------------------------------------------------------------------------------------
# Shared machinery.


def add_command(subparsers, name: str, handler, *, help: str, description: str, example: str):
    """Add subcommand ``name`` (with ``--debug`` and an example in its help) and return its parser.

    Parameters
    ----------
    subparsers
        The object ``register(subparsers)`` receives.
    handler : callable
        ``handler(args) -> int | None``, the exit status.
    help, description : str
        One line for ``chiralnet --help``; a paragraph for ``chiralnet NAME --help``.
    example : str
        Shell lines shown under "example:".
    """
    parser = subparsers.add_parser(
        name, help=help, description=textwrap.fill(" ".join(description.split()), 79),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n" + "\n".join("  " + line for line in example.strip().splitlines()),
    )
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the full traceback on errors")
    parser.set_defaults(handler=handler)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="chiralnet",
        description="Simulate multicell quantum batteries built as chiral (nonreciprocal) networks. "
                    "Frequencies and rates in units of omega, times in 1/omega, energies in units of omega.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  chiralnet run examples/two_cell.toml --out out\n"
               "  chiralnet steady examples/chain10.toml\n  chiralnet paper --out paper\n"
               "  chiralnet sweep examples/chain_cells.sweep.toml --out chain_cells\n"
               "  chiralnet study cooperativity --quick --out fig4c\n"
               "  chiralnet COMMAND --help",
    )
    parser.add_argument("--debug", action="store_true", default=False, help="show the full traceback on errors")
    parser.add_argument("--version", action="version", version=f"chiralnet {_version()}")
    subparsers = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    subparsers.required = True
    for module in COMMANDS:
        module.register(subparsers)
    return parser


def _version() -> str:
    from .. import __version__

    return __version__


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv=None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``) and return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = getattr(args, "debug", False)
    from .._jit import announce_compilation

    announce_compilation()  # one line on stderr if kernels must be compiled (a cold Numba cache)
    try:
        status = args.handler(args)
    except ChiralnetError as exc:
        if debug:
            raise
        print(f"chiralnet: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # e.g. `chiralnet run x.toml | head`: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_IO
    except OSError as exc:
        if debug:
            raise
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        print(f"chiralnet: error: {where}{exc.strerror or _one_line(exc)}", file=sys.stderr)
        return EXIT_IO
    except MemoryError:  # a request no preflight estimate caught: one line, not a NumPy traceback
        if debug:
            raise
        print("chiralnet: error: out of memory; ask for fewer cells, times or points", file=sys.stderr)
        return EXIT_IO
    except KeyboardInterrupt:
        print("chiralnet: interrupted", file=sys.stderr)
        return 130
    return 0 if status is None else int(status)




# The subcommand modules import add_command from here, so they are imported after it is defined.
from . import optimize, run, spectrum, sweep  # noqa: E402

#: Modules that add subcommands through ``register(subparsers)``; add one line per module.
COMMANDS = (run, sweep, spectrum, optimize)
