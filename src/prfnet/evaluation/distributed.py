"""Scoring split across processes and nodes with Lightning's ``Trainer.predict`` (DDP, one process per device).

Each process takes every ``world_size``-th chunk (Lightning's ``UnrepeatedDistributedSampler``: no chunk is
padded or repeated, so every pair is scored exactly once), decodes it in its own ``DataLoader`` workers and
commits each chunk's scores to the shared :class:`~prfnet.store.ScoreStore` in one transaction. After a barrier
every process reads the union from the store. The store is an SQLite file in WAL mode: all processes must reach
it on one host's local file system (one node with several GPUs); see ``docs/store.md`` for several nodes.
"""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch import nn

from ..errors import ConfigError, DataError
from ..store import ScoreStore
from .pair_loader import PairChunkDataset, chunk_loader


class _ChunkScoring(pl.LightningModule):
    """``predict_step``: one chunk -> {metric: (rows, scores)}; the PRFNet models are submodules (moved to the
    process's device by Lightning)."""

    def __init__(self, scorer, dataset: PairChunkDataset, workers: int):
        super().__init__()
        self.scorer = scorer
        self.dataset = dataset
        self.workers = workers
        models = [getattr(m, "model", None) for m in scorer.metrics]
        self.models = nn.ModuleList([m for m in models if isinstance(m, nn.Module)])

    def predict_dataloader(self):
        sampler = UnrepeatedDistributedSampler(
            self.dataset, num_replicas=self.trainer.world_size, rank=self.trainer.global_rank, shuffle=False
        )
        return chunk_loader(self.dataset, self.workers, pin_memory=self.device.type == "cuda", sampler=sampler)

    def predict_step(self, batch, batch_idx):
        if batch["error"]:
            raise DataError(batch["error"])
        self.scorer.device = self.device
        return self.scorer(self.dataset.chunks[int(batch["index"])], batch["ref"], batch["dists"])


class _StoreWriter(BasePredictionWriter):
    """Commits each chunk's scores to the store (its own connection per process) in one transaction."""

    def __init__(self, store_path, ids: dict[str, str], keys: list[tuple[str, str]]):
        super().__init__(write_interval="batch")
        self.store_path, self.ids, self.keys = store_path, ids, keys
        self.store: ScoreStore | None = None

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx):
        from .engine import _store_rows

        if self.store is None:
            self.store = ScoreStore(self.store_path)
        if prediction:
            self.store.add(_store_rows(prediction, self.ids, self.keys))


def score_chunks_distributed(chunks, scorer, store: ScoreStore, ids, keys, source, max_pixels, workers, trainer):
    """Score ``chunks`` with ``Trainer(**trainer).predict`` into ``store``; returns once every process is done."""
    allowed = {"accelerator", "devices", "num_nodes", "strategy"}
    unknown = set(trainer) - allowed
    if unknown:
        raise ConfigError(f"trainer settings for scoring may only be {sorted(allowed)}, got {sorted(unknown)}")
    settings = {k: v for k, v in trainer.items() if v is not None}
    writer = _StoreWriter(store.path, ids, keys)
    runner = pl.Trainer(
        **settings,
        callbacks=[writer],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,  # the module's own UnrepeatedDistributedSampler (batch_size=None loader)
    )
    module = _ChunkScoring(scorer, PairChunkDataset(chunks, source, max_pixels), workers)
    try:
        with warnings.catch_warnings():  # one chunk per item (batch_size=None): the writer needs no batch indices
            warnings.filterwarnings("ignore", message=".*infer the batch indices.*")
            runner.predict(module, return_predictions=False)
        runner.strategy.barrier("prfnet-scoring-done")
    finally:
        if writer.store is not None:
            writer.store.close()
