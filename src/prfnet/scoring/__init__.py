"""The scoring engine: (reference, distorted) file pairs -> one score per pair and metric, for ``eval``, ``rd`` and
the demo. Each pair is scored once per metric, each reference encoded once, chunks decoded in DataLoader workers,
optionally across processes (Lightning ``Trainer.predict``) and resumably through a score store. Scores keep each
metric's own direction (``higher_better``); nothing is flipped here.
"""

from .engine import score_pairs
from .metrics import MetricSelection, PRFNetMetric, parse_metric_names, select_metrics
from .plan import PairScores

__all__ = ["MetricSelection", "PRFNetMetric", "PairScores", "parse_metric_names", "score_pairs", "select_metrics"]
