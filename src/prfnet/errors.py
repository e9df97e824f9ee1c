"""Typed exceptions. Every user error raised by prfnet is a :class:`PRFNetError`."""

from __future__ import annotations


class PRFNetError(Exception):
    """Base class of every error that is the user's input, not a bug in prfnet."""


class InputError(PRFNetError, ValueError):
    """A tensor argument is malformed: wrong shape, channel count, range, dtype, NaN or size mismatch."""


class ImageReadError(PRFNetError, OSError):
    """An image file is missing, unreadable, truncated or of an unsupported kind."""


class CheckpointError(PRFNetError):
    """A weights file is missing, not a prfnet/safetensors file, or does not match its config."""


class DataError(PRFNetError):
    """A data set file is missing or malformed (the message names the file and, where known, the line)."""


class ConfigError(PRFNetError):
    """A training/evaluation configuration is invalid."""


class ModelOutputError(PRFNetError):
    """A model gave non-finite outputs (NaN or infinity), e.g. a diverged checkpoint; the message names it."""


class OutputError(PRFNetError):
    """An output folder cannot be written: a file in its place, no permission, a read-only or full file system.

    Checked before any scoring or training starts (a probe file is created and removed); a write that fails later
    (a full disk) raises it too, and the outputs of the run are then discarded as a whole (``docs/errors.md``)."""


class DownloadError(PRFNetError):
    """A download failed or was refused: no network (or ``$PRFNET_OFFLINE``), an HTTP error, a checksum that does
    not match (the file is kept aside, never used), an archive member that would land outside its folder."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (e.g. a cluster pre-empting a job): ends a command like Ctrl-C, but the CLI exits with 143
    (128 + 15) instead of 130. Not a :class:`PRFNetError`: nothing was wrong with the input."""
