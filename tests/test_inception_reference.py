"""arbench's Inception FID equals pytorch-fid's own, on the same images and weights.

pytorch-fid builds its network from torchvision, which imports only beside its own
torch build, so CI runs this file in a second environment (`.ci/run`: torch 2.14.1,
torchvision 0.29.1, pytorch-fid) with ARBENCH_REQUIRE_PYTORCH_FID=1, which turns the
skip below into a failure. The weights are torchvision's random initialisation saved
as a file like pytorch-fid's; all but eight channels of the last block are switched
off (batch-norm scale 0, shift -1, so the ReLU gives 0) so that a few dozen images
give full-rank covariances, where both FIDs are well defined.
"""

import os

import numpy as np
import pytest
import torch
from PIL import Image

from arbench_plugins.datasets.images import ImageFolder
from arbench_plugins.metrics.quality import InceptionExtractor, InceptionFID

if os.environ.get("ARBENCH_REQUIRE_PYTORCH_FID"):
    import torchvision
    from pytorch_fid import fid_score
    from pytorch_fid import inception as pytorch_fid_inception
else:
    torchvision = pytest.importorskip("torchvision")
    fid_score = pytest.importorskip("pytorch_fid.fid_score")
    pytorch_fid_inception = pytest.importorskip("pytorch_fid.inception")

LIVE = 8  # channels of the last block left on


def random_weights(path) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    net = torchvision.models.inception_v3(weights=None, aux_logits=False, num_classes=1008,
                                          init_weights=True)
    for name, module in net.named_modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
            if name.startswith("Mixed_7c."):
                keep = LIVE if name == "Mixed_7c.branch1x1.bn" else 0
                with torch.no_grad():
                    module.weight[keep:] = 0
                    module.bias[keep:] = -1
    state = net.state_dict()
    torch.save(state, path)
    return state


def test_arbench_inception_fid_equals_pytorch_fids(tmp_path, monkeypatch):
    monkeypatch.setenv("ARBENCH_CACHE", str(tmp_path / "cache"))
    weights = tmp_path / "pt_inception-2015-12-05-random.pth"
    state = random_weights(weights)
    rng = np.random.default_rng(0)
    (tmp_path / "images").mkdir()
    for k in range(160):  # ~16 land in the test split: the FID reference
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(
            tmp_path / "images" / f"img{k:03d}.png")
    dataset = ImageFolder(data_dir=str(tmp_path / "images"), size=8)
    dataset.name = "imagefolder"
    reference = dataset.load("test")
    samples = torch.as_tensor(rng.integers(0, 128, (24, 3, 8, 8)))  # darker: a real gap

    ours = InceptionFID(weights=str(weights), replicates=2)(samples, dataset)

    monkeypatch.setattr(pytorch_fid_inception, "load_state_dict_from_url",
                        lambda *args, **kwargs: state)
    theirs_net = pytorch_fid_inception.InceptionV3([3]).eval()

    def features(levels: torch.Tensor) -> np.ndarray:
        """pytorch-fid's features of the images arbench feeds its network, in [0, 1]."""
        with torch.no_grad():
            images = (dataset.continuous(levels).float() + 1) / 2
            return theirs_net(images)[0].flatten(1).double().numpy()

    def statistics(f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return f.mean(axis=0), np.cov(f, rowvar=False)

    theirs = fid_score.calculate_frechet_distance(*statistics(features(samples)),
                                                  *statistics(features(reference)))
    assert len(reference) > LIVE + 1 and theirs > 0
    assert ours == pytest.approx(theirs, rel=1e-6)
    extractor = InceptionExtractor(weights)
    with torch.no_grad():
        mine = extractor.features(dataset.continuous(samples)).double().numpy()
    assert np.allclose(mine, features(samples), rtol=1e-6, atol=0)
