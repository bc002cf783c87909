"""The phase-retrieval benchmark's own logic (benchmarks/phase_retrieval.py): the published rows carry their
source and protocol, headlines are chosen on validation figures (never test), targets are judged only under
their conditions, and Fig. 1 is drawn. No training, no data download."""

from __future__ import annotations

import math
import sys

import pytest
import torch
from omegaconf import OmegaConf

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import phase_retrieval as bench


def test_published_rows_name_their_table_and_sit_in_the_paper_columns_only():
    assert {row["cited"].rsplit(", ", 1)[1] for row in bench.PUBLISHED} == {
        f"Table {t}" for t in ["II", "III", "IV", "V", "VI"]
    }
    for row in bench.PUBLISHED:
        assert row["source"] == "paper" and set(row["metrics"]) <= {"ssim_paper", "psnr_paper", "mse", "mae"}
        if row["method"].startswith(("CPR", "PRCGAN")) and row["dataset"] != "celeba":
            assert (row["protocol"], row["n"]) == ("uelwer", 1024)  # quoted from Uelwer et al.
    table_v = {r["method"]: r["metrics"] for r in bench.PUBLISHED if r["cited"].endswith("Table V")}
    haar = table_v["PR-DAD Haar Packet (published)"]
    assert haar == {"mse": 0.0078, "mae": 0.0471, "ssim_paper": 0.8186, "psnr_paper": 42.1862}
    # their PSNR is 20 log10(1 / MSE): 42.16 from the rounded MSE 0.0078
    assert 20 * math.log10(1 / haar["mse"]) == pytest.approx(haar["psnr_paper"], abs=0.1)
    row = bench.table_row(bench.PUBLISHED[0])
    assert row[bench.COLUMNS.index("SSIM dr2 (ours)")] == "–"  # never beside our conventions


def ours(method, val, test, n=10000, mode_rows=None):
    return {
        "method": method,
        "dataset": "fashion_mnist",
        "data_key": "fashion_mnist",
        "protocol": "prdad",
        "n": n,
        "metrics": {"ssim_paper": test, "mse": 0.005},
        "val_metrics": {"ssim_paper": val},
        "ms_per_image": 0.5,
    }


def test_the_headline_is_chosen_on_validation_and_its_test_row_reported():
    rows = [ours("prdad_haar", val=0.84, test=0.83), ours("ablation_idct", val=0.83, test=0.90)]
    kinds = {"prdad_haar": "network", "ablation_idct": "network"}
    lines, chosen = bench.select_headlines(rows, kinds, val_count=2000)
    assert chosen["fashion_mnist/prdad:network"]["method"] == "prdad_haar"  # not the better test row
    assert rows[0]["chosen"] and "chosen" not in rows[1]
    assert "`prdad_haar`, chosen on validation" in lines["fashion_mnist"][0]
    assert "Test: SSIM (paper) 0.8300" in lines["fashion_mnist"][0]


def test_targets_are_judged_only_on_the_whole_prdad_test_set_in_full_mode():
    rows = [ours("prdad_haar", 0.9, 0.87), ours("prdad_ae", 0.8, 0.80), *bench.PUBLISHED]
    kinds = {"prdad_haar": "network", "prdad_ae": "network"}
    _, headline = bench.select_headlines(rows, kinds, 2000)
    full = {g["target"]: g for g in bench.targets(rows, headline, "full")}
    haar = full["fashion_mnist: prdad_haar SSIM (paper) ≥ 0.8242 (every published row)"]
    assert haar["met"] is True and haar["value"] == 0.87
    assert full["fashion_mnist: prdad_ae SSIM (paper) ≥ 0.8242 (every published row)"]["met"] is False
    assert full["mnist: prdad_haar SSIM (paper) ≥ 0.8815 (its Table II row)"]["met"] is None  # no MNIST row
    quick = bench.targets([ours("prdad_haar", 0.9, 0.87, n=100), *bench.PUBLISHED], headline, "quick")
    assert all(goal["met"] is None for goal in quick)  # shown, not judged


def test_fig1_swaps_magnitude_and_phase_of_test_images(tmp_path, monkeypatch):
    images = torch.rand(12, 1, 32, 32)
    monkeypatch.setattr(bench, "test_images", lambda cfg, count: images[:count])
    path = tmp_path / "fig1.png"
    bench.fig1(OmegaConf.create({}), path, pairs=6)
    from PIL import Image

    width, height = Image.open(path).size
    assert height == 2 + len(bench.FIG1_ROWS) * (3 * 32 + 2) and width == 2 + 6 * (3 * 32 + 2)


def test_the_hio_target_judges_the_hio_variant_chosen_on_validation():
    rows = [
        ours("hio", 0.30, 0.31),
        ours("hio_shrinkwrap", 0.35, 0.34),
        ours("raar", 0.50, 0.50),
        *bench.PUBLISHED,
    ]
    goals = bench.targets(rows, {}, "full")
    hio = next(
        g for g in goals if g["target"].startswith("fashion_mnist: classical HIO") and "SSIM" in g["target"]
    )
    assert "hio_shrinkwrap" in hio["target"] and hio["value"] == 0.34 and hio["met"] is False  # goal 0.44


def test_a_table_without_our_data_says_so_in_a_row():
    text = bench.markdown(bench.PUBLISHED, {}, [], {"fig1_path": "fig1.png"}, "full", "python x")
    emnist = text.split("## Table III")[1].split("## Table IV")[0]
    assert "| ours: not run |" in emnist and "EMNIST (balanced): download code only here" in emnist
    assert emnist.count("(published)") == 4
