"""Command line: ``prfnet compare|score|rank|synth|train|eval|demo`` (also ``python -m prfnet``)."""
# ruff: noqa: I001  (the command modules are imported in the order `prfnet --help` lists them)

from __future__ import annotations

import sys

from ..errors import PRFNetError
from .app import USER_ERROR_EXIT, app, err

# each module registers its commands on `app`; this order is the order of `prfnet --help`
from . import infer, synth, train, evaluate, demo  # noqa: E402, F401


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors print one line to stderr and exit with code 2, never a traceback."""
    try:
        app(args=argv, prog_name="prfnet")
    except PRFNetError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        return USER_ERROR_EXIT
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
