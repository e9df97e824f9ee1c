"""Decoding of (reference, distorted) image pairs in ``DataLoader`` worker processes, grouped by reference.

The work is cut into :class:`PairChunk` s: one reference and up to ``batch_size`` distorted images of it (all of
one size, since a distorted image must match its reference). A worker decodes a chunk's files (8-bit files stay
uint8, 1 byte per sample, so little crosses the process boundary) while the model scores the previous chunk;
the chunks of one reference are consecutive, so PRFNet encodes each reference once for all its distorted images.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby

import torch
from torch.utils.data import DataLoader, Dataset

from ..errors import PRFNetError
from ..images import DEFAULT_MAX_PIXELS, load_image
from ..model.inputs import same_dtype


@dataclass(frozen=True)
class PairChunk:
    """One reference path, up to ``batch_size`` distorted paths of it, and their rows in the caller's pair list."""

    ref: str
    dists: tuple[str, ...]
    rows: tuple[int, ...]


def plan_chunks(pairs: Sequence[tuple[str, str]], rows: Sequence[int], batch_size: int) -> list[PairChunk]:
    """Chunks of the pairs ``pairs[i] for i in rows``, grouped by reference (in first-seen order), at most
    ``batch_size`` distorted images each."""
    chunks = []
    ordered = sorted(rows, key=lambda i: (pairs[i][0], i))
    for ref, group in groupby(ordered, key=lambda i: pairs[i][0]):
        group = list(group)
        for start in range(0, len(group), batch_size):
            part = group[start : start + batch_size]
            chunks.append(PairChunk(ref, tuple(pairs[i][1] for i in part), tuple(part)))
    return chunks


class PairChunkDataset(Dataset):
    """Item ``i``: ``{"index": i, "ref": (1, 3, H, W), "dists": (N, 3, H, W), "error": None}``, uint8 0..255 for
    8-bit files, else float32 in [0, 1]. A missing or unreadable file, or a distorted image whose size differs from
    its reference's, gives ``{"index": i, "error": message}`` instead (the message names the file and
    ``source``): the caller raises it as one :class:`~prfnet.errors.DataError` line, never a worker traceback."""

    def __init__(self, chunks: Sequence[PairChunk], source: str, max_pixels: int | None = DEFAULT_MAX_PIXELS):
        self.chunks = list(chunks)
        self.source = source
        self.max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self.chunks)

    def __getitem__(self, index: int) -> dict:
        chunk = self.chunks[index]
        try:
            ref = load_image(chunk.ref, max_pixels=self.max_pixels, keep_8bit=True)
            dists = []
            for path in chunk.dists:
                dist = load_image(path, max_pixels=self.max_pixels, keep_8bit=True)
                if dist.shape[-2:] != ref.shape[-2:]:
                    return {"index": index, "error": (
                        f"{path}: size {dist.shape[-1]}x{dist.shape[-2]} differs from its reference {chunk.ref} "
                        f"({ref.shape[-1]}x{ref.shape[-2]}) (listed in {self.source})"
                    )}  # fmt: skip
                dists.append(dist)
        except PRFNetError as exc:
            return {"index": index, "error": f"{exc} (listed in {self.source})"}
        return {"index": index, "ref": ref, "dists": torch.cat(same_dtype(dists)), "error": None}


def chunk_loader(dataset: PairChunkDataset, workers: int = 0, pin_memory: bool = False, sampler=None) -> DataLoader:
    """Chunks in order (one item per chunk), decoded by ``workers`` processes (0: in this process)."""
    return DataLoader(
        dataset,
        batch_size=None,
        shuffle=False,
        sampler=sampler,
        num_workers=workers,
        pin_memory=pin_memory,
        prefetch_factor=2 if workers > 0 else None,
        persistent_workers=False,
    )
