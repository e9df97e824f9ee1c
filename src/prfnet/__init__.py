"""prfnet: PRFNet full-reference quality model for compressed images.

Images are float RGB tensors (N, 3, H, W) in [0, 1] (uint8 tensors are read as 0..255). ``PRFNet.score``
is a distance (>= 0, lower = closer to the reference); ``PRFNet.compare`` is the probability that A is
closer than B.
"""

from .errors import (
    CheckpointError,
    ConfigError,
    DataError,
    ImageReadError,
    InputError,
    ModelOutputError,
    OutputError,
    PRFNetError,
)
from .images import load_image, save_image
from .integrations.loss import PRFNetLoss
from .model import PRFNet, PRFNetConfig, Ranking, ReferenceFeatures

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "ImageReadError",
    "InputError",
    "ModelOutputError",
    "OutputError",
    "PRFNet",
    "PRFNetConfig",
    "PRFNetError",
    "PRFNetLoss",
    "Ranking",
    "ReferenceFeatures",
    "__version__",
    "load_image",
    "save_image",
]
