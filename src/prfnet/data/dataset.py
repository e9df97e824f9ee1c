"""``TripletDataset``: (R, A, B, p_a) samples for training and evaluation, reproducible across workers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import Dataset

from ..errors import DataError, ImageReadError
from ..images import image_size, load_image
from .augment import center_geometry, item_generator, random_geometry, swap_coin
from .triplets import LabeledTriplet, Triplet, majority_label


class TripletDataset(Dataset):
    """Triplets of images (R, A, B) with the human preference ``p_a`` = P(A closer to R).

    Item ``i`` is a dict: ``"ref"``, ``"a"``, ``"b"``: float32 (3, crop, crop) RGB in [0, 1];
    ``"p_a"``: float32 scalar tensor in [0, 1]; ``"label"``: float32 scalar tensor, majority label
    (1: A closer, 0: B closer, 0.5: tie); ``"index"``: ``i``; ``"files"``: the item's (ref, a, b) names as listed
    (a batch holds three lists of names: R, A, B; after a random swap, A and B are swapped here too). Unlabelled
    :class:`Triplet` items get NaN.

    ``train=True``: the same random crop, horizontal flip and 90-degree rotation for R, A and B, and a
    random A/B swap (``p_a -> 1 - p_a``), drawn from a ``torch.Generator`` seeded by (seed, epoch, i).
    Call :meth:`set_epoch` at the start of every epoch for fresh draws; the epoch lives in shared memory,
    so it also reaches DataLoader workers (``num_workers > 0``, persistent or not).
    ``train=False``: deterministic centre crop, or the whole image when ``crop`` is None.

    Paths resolve as ``root / path`` (absolute paths, or ``root=None``, use the path as is). A crop larger
    than the image, R/A/B of different sizes, and missing or unreadable images raise :class:`DataError`
    naming the file; with ``check_files`` missing files are reported at construction.
    """

    def __init__(
        self,
        items: Sequence[LabeledTriplet | Triplet],
        root: str | Path | None,
        crop: int | None = 256,
        train: bool = False,
        seed: int = 0,
        *,
        flip: bool = True,
        rotate: bool = True,
        swap: bool = True,
        check_files: bool = True,
    ):
        if crop is not None and crop < 1:
            raise DataError(f"crop must be a positive number of pixels or None, got {crop}")
        self.items = list(items)
        self.root = Path(root) if root is not None else None
        self.crop, self.train, self.seed = crop, train, seed
        self.flip, self.rotate, self.swap = flip, rotate, swap
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()
        if check_files:
            self._check_files()

    def __len__(self) -> int:
        return len(self.items)

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draws of ``epoch`` (only matters with ``train=True``)."""
        self._epoch.fill_(int(epoch))

    def path(self, name: str) -> Path:
        """The file an item's ``ref``/``a``/``b`` name refers to."""
        return self.root / name if self.root is not None else Path(name)

    def _check_files(self) -> None:
        missing: dict[Path, int] = {}
        checked: set[str] = set()
        for index, item in enumerate(self.items):
            for name in (item.ref, item.a, item.b):
                if name not in checked:
                    checked.add(name)
                    if not self.path(name).is_file():
                        missing.setdefault(self.path(name), index)
        if missing:
            first, index = next(iter(missing.items()))
            more = f" (and {len(missing) - 1} more missing files)" if len(missing) > 1 else ""
            raise DataError(f"{first}: image not found (item {index}: {self._describe(index)}){more}")

    def smallest_image(self) -> tuple[Path, int, int] | None:
        """The reference image with the shortest side, as ``(path, width, height)`` (None when empty).

        Sizes come from the file headers (nothing is decoded), one read per distinct reference; A and B must
        match their reference (checked when an item is loaded). Used to reject a crop larger than the data
        before training starts. An unreadable reference is a :class:`DataError` naming the file and the item.
        """
        smallest, seen = None, set()
        for index, item in enumerate(self.items):
            if item.ref in seen:
                continue
            seen.add(item.ref)
            path = self.path(item.ref)
            try:
                width, height = image_size(path)
            except ImageReadError as exc:
                raise DataError(f"{exc} (item {index}: {self._describe(index)})") from None
            if smallest is None or min(width, height) < min(smallest[1:]):
                smallest = (path, width, height)
        return smallest

    def _describe(self, index: int) -> str:
        item = self.items[index]
        return f"ref={item.ref}, a={item.a}, b={item.b}"

    def _load(self, index: int, name: str) -> torch.Tensor:
        try:
            return load_image(self.path(name))[0]
        except ImageReadError as exc:
            raise DataError(f"{exc} (item {index}: {self._describe(index)})") from None

    def __getitem__(self, index: int) -> dict:
        item = self.items[index]
        files = (item.ref, item.a, item.b)
        ref, a, b = (self._load(index, name) for name in files)
        if not ref.shape == a.shape == b.shape:
            sizes = ", ".join(f"{n}: {tuple(t.shape[1:])}" for n, t in (("ref", ref), ("a", a), ("b", b)))
            raise DataError(f"{self.path(item.ref)}: R, A and B differ in size ({sizes}; item {index})")
        height, width = ref.shape[-2:]
        p_a = float(item.p_a) if isinstance(item, LabeledTriplet) else math.nan
        if self.train:
            generator = item_generator(self.seed, self.epoch, index)
            geometry = random_geometry(
                height, width, self.crop, generator, self.flip, self.rotate, source=str(self.path(item.ref))
            )
            if self.swap and swap_coin(generator):
                a, b, p_a = b, a, 1.0 - p_a
                files = (item.ref, item.b, item.a)
        else:
            geometry = center_geometry(height, width, self.crop, source=str(self.path(item.ref)))
        ref, a, b = (geometry.apply(t).contiguous() for t in (ref, a, b))
        return {
            "ref": ref,
            "a": a,
            "b": b,
            "p_a": torch.tensor(p_a, dtype=torch.float32),
            "label": torch.tensor(majority_label(p_a), dtype=torch.float32),
            "index": index,
            "files": files,
        }
