"""Command line: ``prfnet compare|score|rank|synth|train|eval|demo`` (also ``python -m prfnet``)."""

from __future__ import annotations

import sys

from ..errors import PRFNetError
from . import demo, evaluate, infer, synth, train  # noqa: F401  (each module registers its commands)
from .app import USER_ERROR_EXIT, app, err


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
