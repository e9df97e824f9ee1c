"""Scoring split across processes and nodes with Lightning's ``Trainer.predict`` (DDP, one process per device).

Only global rank 0 touches the score store itself: in the module's ``setup`` (after the processes have joined)
it merges shards of earlier runs, reads what is stored and plans the chunks (:func:`.plan.plan_scoring`), and
broadcasts that plan. Each process then takes every ``world_size``-th chunk (Lightning's
``UnrepeatedDistributedSampler``: no chunk padded or repeated, so every pair is scored exactly once), decodes it in
its own ``DataLoader`` workers and commits each chunk's scores in one transaction to its own shard,
``<store>.rank-NNNN`` beside the store (one writer per file, rollback journal: safe on a file system all nodes
mount). After a barrier rank 0 merges the shards into the store and reads the union back; a run killed mid-way
leaves its shards, which the next run merges first.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path

from torch import nn

from ..errors import ConfigError, DataError
from ..store import ScoreStore
from .pair_loader import PairChunkDataset, chunk_loader
from .plan import ChunkScorer, PairScores, plan_scoring, store_rows, stored_rows

TRAINER_KEYS = ("accelerator", "devices", "num_nodes", "strategy")


@functools.cache
def _lightning_classes() -> dict[str, type]:
    """The Lightning module and prediction writer of a distributed run, built at their first use: importing Lightning
    takes 1-2 s, which one-process scoring (``prfnet eval`` or ``rd`` without ``--devices``) does not pay."""
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import BasePredictionWriter
    from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler

    class ChunkScoring(pl.LightningModule):
        """``setup``: the plan (rank 0 reads the store, every rank receives it); ``predict_step``: one chunk ->
        {metric: (rows, scores)}. The PRFNet models are submodules, moved to each process's device by Lightning."""

        def __init__(self, unique, metrics, store_path: Path, source: str, batch_size: int, max_pixels, workers: int):
            super().__init__()
            self.unique, self.metrics, self.store_path = unique, list(metrics), store_path
            self.source, self.batch_size, self.max_pixels, self.workers = source, batch_size, max_pixels, workers
            models = [getattr(m, "model", None) for m in self.metrics]
            self.models = nn.ModuleList([m for m in models if isinstance(m, nn.Module)])
            self.plan = self.scorer = self.dataset = None

        def setup(self, stage: str) -> None:
            plan = None
            if self.trainer.is_global_zero:
                with ScoreStore(self.store_path) as store:
                    store.absorb_shards()
                    plan = plan_scoring(self.unique, self.metrics, store, self.batch_size)
            self.plan = self.trainer.strategy.broadcast(plan, src=0)
            self.scorer = ChunkScorer(self.metrics, self.plan.todo, self.source, self.device)
            self.dataset = PairChunkDataset(self.plan.chunks, self.source, self.max_pixels)

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

    class ShardWriter(BasePredictionWriter):
        """Commits each chunk's scores to this process's shard of the store, in one transaction."""

        def __init__(self, store_path: Path):
            super().__init__(write_interval="batch")
            self.store_path = store_path
            self.shard: ScoreStore | None = None

        def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx):
            if self.shard is None:
                path = ScoreStore.shard_path_of(self.store_path, trainer.global_rank)
                self.shard = ScoreStore(path, wal=False)
            if prediction:
                self.shard.add(store_rows(prediction, pl_module.plan.ids, pl_module.plan.keys))

    classes = {"ChunkScoring": ChunkScoring, "ShardWriter": ShardWriter}
    for name, cls in classes.items():
        cls.__qualname__ = name  # pickled by reference as prfnet.scoring.distributed.<name>: see __getattr__
    return classes


def __getattr__(name: str):
    """``ChunkScoring`` and ``ShardWriter`` (PEP 562): built on first access, so that a process that unpickles them
    (e.g. under ``strategy="ddp_spawn"``) finds them here too."""
    if name in ("ChunkScoring", "ShardWriter"):
        return _lightning_classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def score_pairs_distributed(
    unique, metrics, store_path, source, batch_size, max_pixels, workers, trainer: dict
) -> PairScores:
    """:func:`.engine.score_pairs` of the unique pairs with ``Trainer(**trainer).predict``. Global rank 0 gets every
    score; the other processes get a :class:`.plan.PairScores` with ``partial=True`` (only what was stored before
    the run), to be ignored: only rank 0 writes outputs."""
    unknown = set(trainer) - set(TRAINER_KEYS)
    if unknown:
        raise ConfigError(f"trainer settings for scoring may only be {list(TRAINER_KEYS)}, got {sorted(unknown)}")
    import lightning.pytorch as pl  # heavy: only a distributed run needs it

    classes = _lightning_classes()
    writer = classes["ShardWriter"](Path(store_path))
    runner = pl.Trainer(
        **{k: v for k, v in trainer.items() if v is not None},
        callbacks=[writer],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,  # the module's own UnrepeatedDistributedSampler (batch_size=None loader)
    )
    module = classes["ChunkScoring"](unique, metrics, Path(store_path), source, batch_size, max_pixels, workers)
    try:
        with warnings.catch_warnings():  # one chunk per item (batch_size=None): the writer needs no batch indices
            warnings.filterwarnings("ignore", message=".*infer the batch indices.*")
            runner.predict(module, return_predictions=False)
    finally:
        if writer.shard is not None:
            writer.shard.close()
    runner.strategy.barrier("prfnet-scoring-done")
    plan, scorer = module.plan, module.scorer
    result = plan.result
    result.failed = dict(scorer.failed)
    if not runner.is_global_zero:
        result.partial = True
        return result
    with ScoreStore(store_path) as store:
        store.absorb_shards()
        for name, metric_id in plan.ids.items():
            rows, values = stored_rows(store.lookup(metric_id, plan.keys), plan.keys)
            new = plan.todo[name][rows]  # what the processes scored in this run (the rest was read before it)
            result.scores[name][rows[new]] = values[new]
            result.computed[name] += int(new.sum())
    return result
