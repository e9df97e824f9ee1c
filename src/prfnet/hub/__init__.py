"""Files prfnet downloads: the download engine (:mod:`.download`: resume, checksums, offline) shared by
``prfnet fetch`` (data sets) and checkpoints given by URL or by name (:mod:`.checkpoints`)."""

from .checkpoints import PUBLISHED, PublishedCheckpoint, list_checkpoints, resolve_checkpoint
from .download import DownloadError, check_free_space, checksum_problem, download, file_digest, human_size, offline

__all__ = [
    "PUBLISHED",
    "DownloadError",
    "PublishedCheckpoint",
    "check_free_space",
    "checksum_problem",
    "download",
    "file_digest",
    "human_size",
    "list_checkpoints",
    "offline",
    "resolve_checkpoint",
]
