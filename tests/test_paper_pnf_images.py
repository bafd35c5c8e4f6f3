"""PnF's CIFAR-10 table: super-resolution, inpainting and class-group separation (one
prior for both sources) end to end on tiny CIFAR-10 files in the real format, sampled
from a PixelCNN++ trained with a weight average in bfloat16."""

from __future__ import annotations

import pytest
import torch
from conftest import run_cli, shipped
from test_image_files import write_cifar

from arbench.results.record import Record
from arbench_plugins.datasets.class_groups import ANIMALS, MACHINES, Cifar10Groups


def test_cifar10_groups_pair_a_machine_with_an_animal(tmp_path):
    batches = write_cifar(tmp_path)
    groups = Cifar10Groups(data_dir=str(tmp_path))
    test = groups.load("test")
    labels = batches["test_batch"][b"labels"]  # 6, 8, 0, 8, 4, 5: three of each group
    data = batches["test_batch"][b"data"].reshape(-1, 3, 32, 32)
    assert test.shape == (3, 2, 3, 32, 32)
    for pair in test:
        (machine,), (animal,) = ([i for i, image in enumerate(data)
                                 if torch.equal(torch.as_tensor(image, dtype=torch.long), x)]
                                 for x in pair)
        assert labels[machine] in MACHINES and labels[animal] in ANIMALS
    assert torch.equal(groups.load("test"), test)  # the same pairs every time
    with pytest.raises(KeyError, match="sources"):
        groups.source("cifar10")


@pytest.mark.slow
def test_paper_pnf_images_runs_its_three_tables_on_tiny_cifar10_files(tmp_path):
    write_cifar(tmp_path / "cifar")
    trained = run_cli(["train", "pixelcnn++", "--dataset", "cifar10", "--data-dir", "cifar",
                       "--set", "preset=tiny", "--device", "cpu", "--set", "ema=0.999",
                       "--set", "amp=bf16", "--out", "pp.pt"], cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    run = run_cli(["run", "--suite", "paper-pnf-images", "--data-dir", "cifar", "--set",
                   "pixelcnn++.checkpoint=pp.pt", "--set", "pnf.levels=2", "--budget", "4",
                   "--timing-repeats", "0", "--name", "paper", *[
                       arg for task in ("superres", "inpainting", "separation")
                       for arg in ("--set", f"{task}.n_examples=1")]], cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    for table in ("### superres", "### inpainting", "### separation"):
        assert table in run.stdout
    records = [Record.model_validate_json(path.read_bytes())
               for path in (tmp_path / "results/paper/cells").glob("*")]
    pnf = {record.identity.task: record for record in records if record.identity.sampler == "pnf"}
    assert set(pnf) == {"superres", "inpainting", "separation"}
    assert all(record.status == "ok" and record.cost.nfe == 4 for record in pnf.values())
    assert {"si_sdr_db/cifar10-machines", "si_sdr_db/cifar10-animals"} <= set(
        pnf["separation"].metrics)
    # one prior for both sources: the same network
    groups = Cifar10Groups(data_dir=str(tmp_path / "cifar"))
    groups.name = "cifar10-groups"
    priors = shipped("pixelcnn++", groups, checkpoint=str(tmp_path / "pp.pt"))
    assert priors.prior("cifar10-machines") is priors.prior("cifar10-animals")
