"""Distribution smoothing end to end on the shipped checkpoints: the 2-D table and its
density plots through the CLI, grids that find the right pairs, and the digits pair."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from conftest import plan_cells, run_cli, shipped

from arbench.plugin.conditions import Noisy
from arbench.plugin.registry import build_registry
from arbench.results.record import Record
from arbench.run.grid import GridSpec
from arbench_plugins.datasets.digits import Digits
from arbench_plugins.datasets.points import Rings
from arbench_plugins.samplers.distribution_smoothing import SingleStep, TwoStep

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def builtins():
    return build_registry()


def test_without_samplers_a_grid_holds_every_pair_that_can_run(builtins):
    cells = plan_cells([GridSpec(tasks=["density"], datasets=["rings"])], builtins)
    assert {(c.sampler, c.model, c.variant) for c in cells} == {
        ("ancestral", "made-mol", "made-mol.mixtures=3"),
        ("ancestral", "made-mol", "made-mol.mixtures=6"),
        ("ancestral", "true-density", ""),
        ("smoothing-two-step", "smoothed-made-mol", ""),
    }
    assert all(c.skip_reason is None for c in cells)
    made = {c.variant: c.inputs.checkpoint_sha256 for c in cells if c.model == "made-mol"}
    assert len(set(made.values())) == 2 and all(made.values())  # each variant its checkpoint


def test_the_true_density_joins_named_models_unless_baselines_are_off(builtins):
    named = GridSpec(tasks=["density"], datasets=["olympics"],
                     models=["made-mol", "smoothed-made-mol"])
    assert "true-density" in {c.model for c in plan_cells([named], builtins)}
    assert "true-density" not in {c.model for c in plan_cells(
        [replace(named, baselines=False)], builtins)}
    assert "true-density" in {c.model for c in plan_cells([named], builtins)}  # unchanged


@pytest.mark.slow
def test_cli_prints_the_2d_table_and_writes_the_density_plots(tmp_path):
    result = run_cli(["run", "--task", "density", "--dataset", "rings,olympics",
                      "--model", "made-mol,smoothed-made-mol", "--name", "2d",
                      "--timing-repeats", "0"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    table = result.stdout.split("### density (points)")[1].split("###")[0]
    header, _, *rows = [line for line in table.strip().splitlines() if line.startswith("|")]
    columns = [column.strip() for column in header.strip("|").split("|")]
    assert sorted(columns[1:-1]) == ["made-mol / mixtures=3", "made-mol / mixtures=6",
                                     "smoothed-made-mol"]
    assert columns[-1] == "true-density"  # the floor closes the table
    assert [row.split("|")[1].strip() for row in rows] == ["olympics", "rings"]
    records = [Record.model_validate_json(p.read_bytes())
               for p in (tmp_path / "results/2d/cells").glob("*.json")]
    nll = {(r.identity.dataset, r.identity.model, r.identity.variant): r.metrics["nll_nats"].value
           for r in records}
    assert len(nll) == 8 and all(r.status == "ok" for r in records)
    for dataset in ("rings", "olympics"):
        floor = nll[(dataset, "true-density", "")]
        models = [v for (d, m, _), v in nll.items() if d == dataset and m != "true-density"]
        assert min(models) > floor  # nothing beats the true density
        # more mixtures fit better
        assert (nll[(dataset, "made-mol", "made-mol.mixtures=6")]
                < nll[(dataset, "made-mol", "made-mol.mixtures=3")])
    for dataset in ("rings", "olympics"):
        assert (tmp_path / f"results/2d/plots/density_{dataset}.png").stat().st_size > 10_000


def test_smoothed_2d_pair_denoises_towards_the_ring():
    rings = Rings()
    rings.name = "rings"
    pair = shipped("smoothed-made-mol", rings)
    generator = torch.Generator().manual_seed(0)
    noisy = pair.sample_noisy(4000, generator)
    single = SingleStep().sample(pair, rings, 4000, None, generator).samples
    two = TwoStep().sample(pair, rings, 4000, None, generator).samples

    def off_ring(points: torch.Tensor) -> float:
        return (points.norm(dim=1) - 1).abs().median().item()

    # x~ is spread by sigma = 0.2; the reverse model puts samples back on the ring
    assert off_ring(noisy) > 0.1
    assert off_ring(single) < 0.6 * off_ring(noisy)
    assert off_ring(two) < 0.02


@pytest.fixture(scope="module")
def digits_pair():
    digits = Digits()
    digits.name = "digits"
    return digits, shipped("smoothed-pixelcnn", digits)


def test_digits_pair_denoises_better_than_the_noise_and_bounds_the_nll(digits_pair):
    digits, pair = digits_pair
    x = digits.load("test")[:128]
    clean = digits.continuous(x)
    generator = torch.Generator().manual_seed(0)
    noisy = clean + pair.sigma * torch.randn(clean.shape, generator=generator)

    def mse(estimate: torch.Tensor) -> float:
        return (estimate - clean).pow(2).mean().item()

    single = SingleStep().sample(pair, digits, 128, None, generator,
                                 condition=Noisy(noisy, pair.sigma))
    two = TwoStep().sample(pair, digits, 128, None, generator, condition=Noisy(noisy, pair.sigma))
    assert single.nfe == 1 and two.nfe == 64
    assert mse(single.samples) < 0.5 * mse(noisy)
    assert mse(digits.continuous(two.samples)) < mse(noisy)
    torch.manual_seed(0)
    bound = TwoStep().nll(pair, x, None).nll_nats.mean().item()
    assert 0 < bound < 64 * 2.5 * 0.6931  # under 2.5 bits/dim on digits
