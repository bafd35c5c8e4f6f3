"""The other methods' models at 32x32x3: `arbench train --set preset=tiny` completes on
tiny CIFAR-10 files in the real format, and each checkpoint serves its capability."""

import pytest
import torch
from conftest import run_cli, shipped
from test_image_files import write_cifar

from arbench_plugins.datasets.images import Cifar10

MODELS = ("oa-ardm", "upscale-ardm", "ordered-vqvae", "vqvae")


@pytest.mark.slow
def test_ardms_and_vqvaes_train_on_cifar10_at_the_tiny_preset(tmp_path):
    write_cifar(tmp_path / "cifar")
    dataset = Cifar10(data_dir=str(tmp_path / "cifar"))
    dataset.name = "cifar10"
    test = dataset.load("test")
    for name in MODELS:
        result = run_cli(["train", name, "--dataset", "cifar10", "--data-dir", "cifar",
                          "--set", "preset=tiny", "--out", f"{name}.pt"], cwd=tmp_path)
        assert result.returncode == 0, (name, result.stderr)
        model = shipped(name, dataset, checkpoint=str(tmp_path / f"{name}.pt"))
        if name.endswith("ardm"):
            assert model.loss_components.shape == (model.stages, 3072)
            assert (model.loss_components > 0).all()  # interpolated between measured steps
            known = torch.zeros(test.shape[0], 3072, dtype=torch.bool)
            start = torch.zeros(test.shape[0], 3072, dtype=torch.long)
            log_p = model.step_log_probs(start, known, 1)
            assert log_p.shape == (len(test), 3072, model.branch)
            assert torch.allclose(log_p.exp().sum(-1), torch.ones(()), atol=1e-4)
        else:
            codes = model.encode(test)
            assert codes.shape == (len(test), 4)
            assert model.decode(codes, 2).shape == test.shape
