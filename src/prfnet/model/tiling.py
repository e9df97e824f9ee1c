"""Tile windows for large images: fixed size and stride, the last tile aligned to the border."""

from __future__ import annotations


def tile_starts(length: int, tile: int, stride: int) -> list[int]:
    """Start offsets along one axis. Tiles cover [0, length); the last one ends exactly at ``length``.

    >>> tile_starts(1000, 512, 512)
    [0, 488]
    >>> tile_starts(300, 512, 256)
    [0]
    """
    if tile <= 0 or stride <= 0:
        raise ValueError("tile size and stride must be positive")
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


def tile_windows(height: int, width: int, tile: int, stride: int) -> list[tuple[slice, slice]]:
    """(row slice, column slice) of every tile of a height x width image, row-major."""
    th, tw = min(tile, height), min(tile, width)
    return [
        (slice(y, y + th), slice(x, x + tw))
        for y in tile_starts(height, tile, stride)
        for x in tile_starts(width, tile, stride)
    ]
