"""The paper-smoothing suite runs end to end on tiny files in the real formats: CIFAR-10
python batches, two PixelCNN++ checkpoints trained by `arbench train` at the tiny preset,
and an Inception weights file (random He-initialised, so its features are not degenerate);
the report shows the paper's figures beside arbench's."""

import pytest
import torch
from conftest import run_cli
from test_image_files import write_cifar

from arbench_plugins.metrics.inception_net import FIDInceptionV3


def he_initialised_inception(path) -> None:
    torch.manual_seed(0)
    net = FIDInceptionV3()
    for module in net.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    torch.save(net.state_dict(), path)


@pytest.mark.slow
def test_paper_smoothing_renders_the_papers_figures_beside_arbenchs(tmp_path):
    write_cifar(tmp_path / "cifar")
    for model, options in (("pixelcnn++", ["sigma_max=0", "epochs=1"]),
                           ("smoothed-pixelcnn++", ["steps=2", "eval_every=2"])):
        sets = [arg for option in ["preset=tiny", *options] for arg in ("--set", option)]
        trained = run_cli(["train", model, "--dataset", "cifar10", "--data-dir", "cifar",
                           *sets, "--out", f"{model}.pt"], cwd=tmp_path)
        assert trained.returncode == 0, trained.stderr
    he_initialised_inception(tmp_path / "inception.pth")
    result = run_cli(["run", "--suite", "paper-smoothing", "--data-dir", "cifar",
                      "--set", "pixelcnn++.checkpoint=pixelcnn++.pt",
                      "--set", "smoothed-pixelcnn++.checkpoint=smoothed-pixelcnn++.pt",
                      "--set", "unconditional.n_samples=2",
                      "--set", "unconditional.inception_weights=inception.pth",
                      "--timing-repeats", "0"], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    beside = result.stdout.split("## The paper's figures beside ours")[1].split("###")[0]
    rows = [line for line in beside.splitlines() if line.startswith("| unconditional")]
    assert len(rows) == 3 and all("not run" not in row for row in rows)
    assert "65.93" in rows[0] and "29.83" in rows[1] and "7.84" in rows[2]
    assert "| cifar10   | smoothed-pixelcnn++ | smoothing-two-step" in result.stdout
