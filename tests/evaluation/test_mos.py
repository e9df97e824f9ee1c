"""The MOS protocol (prfnet.evaluation.mos): correlations of a metric with MOS or DMOS, oriented by direction."""

from __future__ import annotations

import pytest

from prfnet.evaluation import evaluate_mos
from tests.conftest import noisy, smooth_image, write_png


def test_evaluate_mos_csv_in_both_directions(tmp_path):
    rows = ["ref,dist,score"]
    for r, sigmas in enumerate([(0.01, 0.03, 0.07, 0.15), (0.02, 0.05, 0.1, 0.2)]):
        write_png(tmp_path / f"r{r}.png", smooth_image(r))
        for level, sigma in enumerate(sigmas):
            write_png(tmp_path / f"r{r}_{level}.png", noisy(smooth_image(r), sigma, level))
            rows.append(f"r{r}.png,r{r}_{level}.png,{sigma}")  # the noise level as a DMOS: lower = better
    (tmp_path / "dmos.csv").write_text("\n".join(rows) + "\n")
    dmos = evaluate_mos("csv", csv=tmp_path / "dmos.csv", metrics=["psnr"], higher_better=False, progress=False)
    assert dmos["psnr"]["srcc"] == pytest.approx(1.0)  # PSNR falls with the noise: oriented positive
    assert dmos["psnr"]["n"] == 8
    as_mos = evaluate_mos("csv", csv=tmp_path / "dmos.csv", metrics=["psnr"], higher_better=True, progress=False)
    assert as_mos["psnr"]["srcc"] == pytest.approx(-1.0)
