"""Input checks (``prfnet.model.inputs``) as the model's methods apply them: RGB float in [0, 1] or uint8, finite,
sides >= 32, matching sizes and batch sizes; every refusal is a typed :class:`InputError`."""

from __future__ import annotations

import pytest
import torch

from prfnet import InputError, PRFNetError


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (torch.rand(1, 1, 64, 64), "RGB"),
        (torch.rand(1, 3, 64, 64) * 255, "[0, 1]"),
        (torch.rand(1, 3, 64, 64) * 2 - 1, "[0, 1]"),
        (torch.full((1, 3, 64, 64), float("nan")), "NaN"),
        (torch.randint(0, 255, (1, 3, 64, 64), dtype=torch.int32), "float"),  # uint8 is 0..255, accepted
        (torch.rand(1, 3, 16, 64), ">= 32"),
        (torch.rand(3, 64, 64), "(N, 3, H, W)"),
    ],
)
def test_bad_inputs_raise_typed_errors(tiny_model, images, bad, message):
    with pytest.raises(InputError, match=None) as info:
        tiny_model.compare(images(1), bad, images(1))
    assert message in str(info.value)
    assert isinstance(info.value, PRFNetError)


def test_size_mismatch_is_an_input_error(tiny_model, images):
    with pytest.raises(InputError, match="same height and width"):
        tiny_model.compare(images(1, 64, 64), images(1, 64, 64), images(1, 64, 96))
    with pytest.raises(InputError, match="batch sizes"):
        tiny_model.compare(images(2), images(3), images(2))
