"""The model's architecture description (``prfnet.model.config``): unknown options are configuration errors."""

from __future__ import annotations

import pytest

from prfnet import ConfigError, PRFNet
from tests.conftest import TINY


def test_unknown_options_raise_config_errors():
    with pytest.raises(ConfigError, match="pair_block"):
        PRFNet(TINY, pair_block="bogus")
    with pytest.raises(ConfigError, match="fusion"):
        PRFNet(TINY, fusion="bogus")
    with pytest.raises(ConfigError, match="backbone"):
        PRFNet("no_such_backbone_xyz")
