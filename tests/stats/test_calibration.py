"""Brier score, expected calibration error and the calibration table (prfnet.stats.calibration) by hand."""

from __future__ import annotations

import pytest

from prfnet.stats.calibration import brier_score, calibration_table, expected_calibration_error


def test_brier_and_ece_by_hand():
    assert brier_score([1.0, 0.0, 0.5, 0.8], [1.0, 1.0, 0.5, 0.6]) == pytest.approx((0 + 1 + 0 + 0.04) / 4)
    prob, frac = [0.05, 0.15, 0.15, 0.95], [0.0, 0.5, 0.3, 1.0]
    # bins: [0, .1): |0.05 - 0| x 1/4; [.1, .2): |0.15 - 0.4| x 2/4; [.9, 1]: |0.95 - 1| x 1/4
    assert expected_calibration_error(prob, frac) == pytest.approx(0.05 / 4 + 0.25 / 2 + 0.05 / 4)
    table = calibration_table([1.0, 0.0, 0.999], [1.0, 0.0, 0.5], bins=4)
    assert [(r["low"], r["count"]) for r in table] == [(0.0, 1), (0.75, 2)]
    assert expected_calibration_error([0.3, 0.7], [0.3, 0.7]) == 0.0
    with pytest.raises(ValueError):
        brier_score([0.5], [0.5, 0.5])
