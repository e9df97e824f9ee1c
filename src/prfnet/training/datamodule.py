"""Labelled triplets from the configured data set, and the Lightning data module that batches them.

Every reader's items end up with absolute image paths (CLIC names are joined with the images folder),
so one :class:`~prfnet.data.TripletDataset` with ``root=None`` serves all formats.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import lightning as L
from lightning.pytorch.accelerators import CUDAAccelerator
from torch.utils.data import DataLoader, DistributedSampler

from ..data import (
    LabeledTriplet,
    TripletDataset,
    mos_pairs,
    read_bapps,
    read_clic_oracle,
    read_kadid,
    read_mos_csv,
    read_pieapp,
    read_pipal,
    read_tid2013,
    split_by_reference,
)
from ..errors import ConfigError, DataError
from ..ioutil import write_csv
from .config import DEFAULT_TRAIN_PATH, DataSettings


@dataclass
class TrainingData:
    """Train and validation triplets (absolute paths); ``val`` is empty when there is no validation set."""

    train: list[LabeledTriplet]
    val: list[LabeledTriplet]
    description: str


def _as_list(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _resolve(root: str | None, path: str) -> Path:
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    return (Path(root).expanduser() if root else Path.cwd()) / p


def _with_root(items: list[LabeledTriplet], images: Path) -> list[LabeledTriplet]:
    """CLIC names are relative to the images folder: make them absolute paths."""
    return [dataclasses.replace(t, ref=str(images / t.ref), a=str(images / t.a), b=str(images / t.b)) for t in items]


def read_source(settings: DataSettings, path: Path, seed: int, images: str | None = None) -> list[LabeledTriplet]:
    """Labelled triplets of one file/folder in ``settings.format`` (paths made absolute); ``images``: the CLIC images
    folder of this file (default ``settings.images``)."""
    fmt = settings.format
    if fmt == "clic":
        key = "data.val.images" if images else "data.images"
        images = _resolve(settings.root, images or settings.images)
        if not images.is_dir():
            raise DataError(f"{images}: CLIC images folder not found (set {key}, or --data DIR with DIR/images)")
        return _with_root(read_clic_oracle(path).triplets, images.resolve())
    if fmt == "bapps":
        return read_bapps(path)
    if fmt == "pieapp":
        return read_pieapp(path)
    readers = {"kadid": read_kadid, "pipal": read_pipal, "tid2013": read_tid2013}
    if settings.mos_kind == "csv":
        mos = read_mos_csv(path, higher_better=settings.mos_higher_better)
    else:
        mos = readers[settings.mos_kind](path)
    return mos_pairs(mos, settings.mos_min_gap, settings.mos_max_pairs_per_ref, seed)


def load_training_data(settings: DataSettings, seed: int = 0) -> TrainingData:
    """Read ``data.train`` (and ``data.val.path``, or hold out ``data.val.holdout_fraction`` of the references
    with :func:`~prfnet.data.split_by_reference` seeded by ``seed``). :class:`DataError` on empty sets."""
    if settings.format == "mos" and settings.mos_kind == "csv" and settings.train is None:
        raise ConfigError("data.train must name the ref,dist,score CSV file when data.mos_kind is csv")
    default = [DEFAULT_TRAIN_PATH[settings.format]]
    train_paths = [_resolve(settings.root, p) for p in _as_list(settings.train) or default]
    train = [t for p in train_paths for t in read_source(settings, p, seed)]
    if not train:
        raise DataError(f"{', '.join(map(str, train_paths))}: no labelled triplets to train on")
    val_paths = [_resolve(settings.root, p) for p in _as_list(settings.val.path)]
    if val_paths:
        val = [t for p in val_paths for t in read_source(settings, p, seed, settings.val.images)]
        how = f"validation from {', '.join(map(str, val_paths))}"
    elif settings.val.holdout_fraction > 0:
        train, val = split_by_reference(train, settings.val.holdout_fraction, seed=seed)
        how = f"validation = {settings.val.holdout_fraction:g} of the references held out (seed {seed})"
    else:
        val, how = [], "no validation set"
    if not train:
        raise DataError(f"{train_paths[0]}: no training triplets left after holding out the validation references")
    n_refs = len({t.ref for t in train})
    description = (
        f"{settings.format}: {len(train)} training triplets ({n_refs} references) from "
        f"{', '.join(map(str, train_paths))}; {len(val)} validation triplets, {how}"
    )
    return TrainingData(train, val, description)


def write_triplets_csv(path: Path, items: list[LabeledTriplet]) -> None:
    """``ref,a,b,p_a,votes,kind`` with a header row (e.g. ``out/val_triplets.csv``), written atomically."""
    rows = ([t.ref, t.a, t.b, f"{t.p_a:.6g}", t.votes, t.kind] for t in items)
    write_csv(path, rows, ["ref", "a", "b", "p_a", "votes", "kind"])


def check_crop(dataset: TripletDataset, key: str, what: str) -> None:
    """:class:`ConfigError` naming ``key`` when ``dataset.crop`` is larger than its smallest image, found from
    the file headers before training starts (instead of at the first item, inside the fit)."""
    if dataset.crop is None:
        return
    smallest = dataset.smallest_image()
    if smallest is None:
        return
    path, width, height = smallest
    if dataset.crop > min(width, height):
        raise ConfigError(
            f"{key} = {dataset.crop} is larger than the {what} images: {path} is {width}x{height} px (the "
            f"smallest); set {key} to at most {min(width, height)} (--set {key}={min(width, height)}), or to null "
            "for whole images"
        )


class EpochSampler(DistributedSampler):
    """A :class:`DistributedSampler` (also with one replica) whose ``set_epoch`` reaches the dataset too:
    the order and the augmentation draws depend on (seed, epoch) only, so a resumed run sees the same data."""

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)


class ResumableSampler(EpochSampler):
    """An :class:`EpochSampler` that can start an epoch part-way: after a resume from a checkpoint taken inside
    epoch ``e``, its first pass over epoch ``e`` leaves out the items already trained on."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.resume_at: tuple[int, int] | None = None  # (epoch, items of this process already trained on)

    def __iter__(self):
        indices = list(super().__iter__())
        if self.resume_at is not None and self.resume_at[0] <= self.epoch:
            (epoch, done), self.resume_at = self.resume_at, None
            if epoch == self.epoch:
                indices = indices[done:]
        return iter(indices)


class LazyLoader(DataLoader):
    """A DataLoader whose iteration starts at the first ``next()``: on a resume Lightning calls ``iter()`` before
    it gives the sampler the epoch, and worker processes would draw the indices at once, in the wrong order."""

    def __iter__(self):
        yield from super().__iter__()


class TripletDataModule(L.LightningDataModule):
    """Batches of ``{"ref","a","b": (N, 3, crop, crop) in [0, 1], "p_a", "label": (N,), "index", "files"}``.

    The datasets are built (and every image path checked) at construction, before training starts;
    samplers are built per trainer so that each DDP rank gets its share.

    Training batches continue an epoch where a checkpoint left it: ``state_dict`` (stored in every checkpoint)
    says how many batches of which epoch were trained; after a resume the sampler leaves them out, so the
    resumed epoch gets the batches the uninterrupted run had (Lightning alone would restart that epoch's order).
    The data module's hooks are used rather than the loader's: Lightning restores a data module before it builds
    the loaders, but applies a loader's saved state only to a loader built after the loops are restored, and
    ours is built earlier, when ``configure_optimizers`` reads ``trainer.estimated_stepping_batches``.
    """

    def __init__(
        self, train_items: list[LabeledTriplet], val_items: list[LabeledTriplet], settings: DataSettings, seed
    ):
        super().__init__()
        self.settings, self.seed = settings, seed
        self.train_set = TripletDataset(train_items, None, crop=settings.crop, train=True, seed=seed)
        # in reference order: a validation batch then holds few references, each encoded once per batch
        # (PRFNetModule.validation_step computes each (reference, distorted) distance once per pass)
        val_items = sorted(val_items, key=lambda t: t.ref)
        self.val_set = TripletDataset(val_items, None, crop=settings.val.crop, train=False) if val_items else None
        check_crop(self.train_set, "data.crop", "training")
        if self.val_set is not None:
            check_crop(self.val_set, "data.val.crop", "validation")
        self._resume_at: tuple[int, int] | None = None
        self._train_loader: DataLoader | None = None

    def _sampler(self, dataset, shuffle: bool) -> EpochSampler:
        world, rank = (self.trainer.world_size, self.trainer.global_rank) if self.trainer else (1, 0)
        if dataset is not self.train_set:
            return EpochSampler(dataset, num_replicas=world, rank=rank, shuffle=shuffle, seed=self.seed)
        sampler = ResumableSampler(dataset, num_replicas=world, rank=rank, shuffle=shuffle, seed=self.seed)
        sampler.resume_at, self._resume_at = self._resume_at, None
        return sampler

    def _loader(self, dataset, batch_size: int, shuffle: bool) -> DataLoader:
        workers = self.settings.num_workers
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=self._sampler(dataset, shuffle),
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=self.trainer is not None and isinstance(self.trainer.accelerator, CUDAAccelerator),
        )

    def train_dataloader(self) -> DataLoader:
        loader = self._loader(self.train_set, self.settings.batch_size, shuffle=True)
        loader.__class__ = LazyLoader  # the same loader, every setting kept
        self._train_loader = loader
        return loader

    def val_dataloader(self) -> DataLoader | list:
        if self.val_set is None:
            return []
        return self._loader(self.val_set, self.settings.val.batch_size or self.settings.batch_size, shuffle=False)

    def state_dict(self) -> dict:
        loader = self._train_loader
        if loader is None or self.trainer is None:
            return {}
        done = self.trainer.fit_loop.epoch_loop.batch_progress.current.processed
        return {"epoch": loader.sampler.epoch, "items": done * loader.batch_size}

    def load_state_dict(self, state: dict) -> None:
        if {"epoch", "items"} <= state.keys():
            self._resume_at = (int(state["epoch"]), int(state["items"]))
