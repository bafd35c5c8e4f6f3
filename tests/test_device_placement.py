"""Code that must run on a GPU places its tensors there, checked without a GPU.

Training: the meta device stands in (shapes, no values). A tensor a recipe leaves on the
CPU fails there with "not on the expected device", while a recipe that places its step
right gets through its data, its networks and the forward and backward pass of its
first minibatch, to the first value read (`.item()`, which meta tensors cannot give).
Evaluation is not reached: the recipes' evaluation code moves each chunk to the
network's device by hand.

Sampling: meta tensors cannot stand in (there is no meta random generator, and samplers
draw from the cell's), so the sampling code (samplers, tasks, metrics) is read instead:
every torch factory call names its device, or is one of the reviewed ones below, each
kept on the CPU on purpose."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch
import torch.fx.experimental._config as fx_config
from torch import nn

from arbench import DatasetSpec, ModelSpec
from arbench.plugin.registry import registry
from arbench.training.loop import TrainingLoop

RECIPES = {  # model: (dataset, training options)
    "pixelcnn": ("digits", {}), "digits-classifier": ("digits", {}),
    "pixelcnn-smooth": ("digits", {}), "wavenet": ("piano", {}),
    "pixelcnn++": ("digits", {"preset": "tiny"}), "smoothed-pixelcnn": ("digits", {}),
    "smoothed-pixelcnn++": ("digits", {"preset": "tiny"}), "made-mol": ("rings", {}),
    "smoothed-made-mol": ("rings", {}), "oa-ardm": ("digits", {}),
    "upscale-ardm": ("digits", {}), "ordered-vqvae": ("digits", {}), "vqvae": ("digits", {}),
    "transformer": ("text", {"preset": "tiny"}),
    "transformer-medium": ("text", {"preset": "tiny"}),
}
NOT_TRAINED = {"pnf-pixelcnn++", "pnf-wavenet", "true-density", "hf"}  # imported, a formula
# or a folder of the user's (no `arbench train hf` yet)
# the first value read: the loop's loss.item(), or a data-dependent branch (the VQ-VAE's
# codebook restarts) before it
REACHED_THE_FIRST_VALUE = r"item\(\) cannot be called on meta tensors|copy out of meta tensor"


def test_every_trainable_model_is_checked():
    assert {spec.name for spec in registry().all(ModelSpec)} - NOT_TRAINED == set(RECIPES)


@pytest.mark.parametrize("model", sorted(RECIPES))
def test_each_recipe_runs_its_first_step_on_the_device_it_is_given(model, tmp_path):
    name, options = RECIPES[model]
    dataset = registry().get(DatasetSpec, name).load()()
    dataset.name = name
    recipe = registry().get(ModelSpec, model).load()
    # the VQ-VAE's codebook update masks by usage: let meta assume every code is used
    with (fx_config.patch(meta_nonzero_assume_all_nonzero=True),
          pytest.raises(RuntimeError, match=REACHED_THE_FIRST_VALUE)):
        recipe.train(dataset, out=tmp_path / "model.pt", device="meta", family=model, **options)


def test_the_stand_in_catches_a_tensor_left_on_the_cpu():
    net = nn.Linear(2, 1)
    data = torch.randn(8, 2)

    def loss(batch: torch.Tensor, _: int) -> torch.Tensor:
        return (net(batch) - torch.zeros(len(batch), 1)).pow(2).mean()  # zeros: on the CPU

    loop = TrainingLoop(net, torch.optim.SGD(net.parameters(), lr=0.1), loss=loss,
                        evaluate=lambda _: 0.0, batches=lambda _: [data], periods=1,
                        device="meta")
    with pytest.raises(RuntimeError, match="not on the expected device"):
        loop.run()


FACTORIES = {"arange", "as_tensor", "empty", "eye", "full", "linspace", "logspace", "ones",
             "rand", "randint", "randn", "randperm", "tensor", "zeros"}
SAMPLING_CODE = ("samplers", "tasks", "metrics")
ON_THE_CPU_ON_PURPOSE = {  # (file, factory): why it stays on the CPU
    ("samplers/pnf.py", "logspace"): "noise levels, read as Python floats (.tolist())",
    ("samplers/jacobi.py", "zeros"): "per-example bookkeeping, filled from .cpu() masks",
    ("tasks/density.py", "arange"): "the grid, moved with .to(cell.device) when scored",
    ("tasks/density.py", "tensor"): "the plot's extent, an output kept on the CPU",
    ("tasks/inpainting.py", "zeros"): "the hole mask, moved with .to(cell.device)",
    ("tasks/superres.py", "zeros"): "the subsampling mask, moved with .to(cell.device)",
}


def unplaced_factories(root: Path) -> set[tuple[str, str]]:
    """(file, factory) of every ``torch.FACTORY(...)`` call without ``device=``."""
    found = set()
    for folder in SAMPLING_CODE:
        for path in sorted((root / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and isinstance(node.func.value, ast.Name)
                        and node.func.value.id == "torch" and node.func.attr in FACTORIES
                        and not any(keyword.arg == "device" for keyword in node.keywords)):
                    found.add((path.relative_to(root).as_posix(), node.func.attr))
    return found


def test_sampling_code_creates_its_tensors_on_the_cells_device(tmp_path):
    import arbench_plugins

    root = Path(arbench_plugins.__file__).parent
    assert unplaced_factories(root) == set(ON_THE_CPU_ON_PURPOSE)
    # the check sees a factory without a device
    (tmp_path / "samplers").mkdir()
    (tmp_path / "samplers" / "new.py").write_text("x = torch.zeros(3)\ny = torch.ones(2, "
                                                  "device=z.device)\n")
    assert unplaced_factories(tmp_path) == {("samplers/new.py", "zeros")}
