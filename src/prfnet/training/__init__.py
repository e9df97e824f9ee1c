"""Two-step training of PRFNet on PyTorch Lightning: step 1 classification (BCE on the majority label),
step 2 regression (MSE of sigmoid(logit) on the vote fraction), from YAML configs. See ``docs/training.md``."""

from .config import TrainConfig, load_train_config, parse_override, resolve_config_path, shipped_configs
from .run import TrainResult, train

__all__ = [
    "TrainConfig",
    "TrainResult",
    "load_train_config",
    "parse_override",
    "resolve_config_path",
    "shipped_configs",
    "train",
]
