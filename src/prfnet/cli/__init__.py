"""Command line: ``prfnet compare|score|rank|synth|train|ablate|eval|rd|tune|demo|view|metrics|codecs|fetch|export``
(also ``python -m prfnet``). ``prfnet --help`` and every ``--help`` import no torch: a command imports the library in
its body; the option types shared by several commands are in :mod:`.options`, the model loader in :mod:`.loading`."""
# ruff: noqa: I001  (the command modules are imported in the order `prfnet --help` lists them)

from __future__ import annotations

import shlex
import signal
import sys
import threading

from rich.markup import escape

from ..errors import PRFNetError, Terminated
from ..outputs import reset_command, set_command
from .app import USER_ERROR_EXIT, app, err

# each module registers its commands on `app`; this order is the order of `prfnet --help`
from . import infer, synth, train, ablate, evaluate, rd, tune, demo, view, metrics, codecs, fetch, export  # noqa: E402, F401


#: exit codes of an interruption: 128 + the signal number, as a shell reports a process killed by it
INTERRUPTED_EXIT = 130  # SIGINT (Ctrl-C)
TERMINATED_EXIT = 143  # SIGTERM
#: commands that run Lightning fits keep Lightning's own SIGTERM handling (a checkpoint, then exit). Not the demo: its
#: fit is one stage of several (the pool of its encoding, the evaluation), and its run folder is discarded anyway;
#: in its fit Lightning calls our handler after its own (prfnet.training.run._fit: still exit 143)
_LIGHTNING_COMMANDS = ("train", "ablate")


def _raise_terminated(signum, frame):
    """Our SIGTERM handler: raise in the main thread, so that an ending run discards its staged outputs as on
    Ctrl-C."""
    raise Terminated()


def _install_sigterm(args: list[str]):
    """Our SIGTERM handler for this command, unless Lightning handles it or the embedding program has one;
    returns the handler to restore (``None``: nothing installed)."""
    if not hasattr(signal, "SIGTERM") or threading.current_thread() is not threading.main_thread():
        return None
    command = next((a for a in args if not a.startswith("-")), "")
    if command in _LIGHTNING_COMMANDS or signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None):
        return None
    return signal.signal(signal.SIGTERM, _raise_terminated)


def _interruption(exc: BaseException | None) -> KeyboardInterrupt | None:
    """The KeyboardInterrupt (or :class:`Terminated`) an exit was raised for, if any."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _interrupted(exc: KeyboardInterrupt) -> int:
    """One line for an interruption; exit code 143 for SIGTERM, 130 for Ctrl-C."""
    if isinstance(exc, Terminated):
        message = str(exc) or "terminated (SIGTERM); outputs of this run not yet in place were discarded"
        err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
        return TERMINATED_EXIT
    message = str(exc) or "interrupted (Ctrl-C); outputs of this run not yet in place were discarded"
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return INTERRUPTED_EXIT


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors print one line to stderr and exit with code 2, never a traceback; Ctrl-C exits
    with 130 and SIGTERM with 143, one line too (see docs/errors.md)."""
    args = list(sys.argv[1:] if argv is None else argv)
    token = set_command(shlex.join(["prfnet", *args]))
    previous = _install_sigterm(args)
    try:
        app(args=args, prog_name="prfnet")
    except PRFNetError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)  # e.g. 'prfnet[jxl]'
        return USER_ERROR_EXIT
    except KeyboardInterrupt as exc:
        return _interrupted(exc)
    except SystemExit as exc:
        interruption = _interruption(exc)  # Typer turns a KeyboardInterrupt into a silent exit 130
        if interruption is not None:
            return _interrupted(interruption)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        reset_command(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
