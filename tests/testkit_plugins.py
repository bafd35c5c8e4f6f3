"""Tiny plugins for testing the core without real models.

Data: vectors of 4 values in {0, 1, 2}. The `uniform` model predicts equal
probabilities, so every NLL is exactly log2(3) bits/dim. `slow` sleeps per
cell (for kill-and-resume tests); `exploding` raises; `nan` returns NaN;
`die-once` kills its own process the first time (while `marker` does not
exist), as a worker killed mid-cell would be. `peek` is a cheating conditional
sampler: it returns the condition's values as they are, hidden entries included,
so it would score perfectly if a task leaked the ground truth there.
The sampler behaviour is chosen by the `mode` parameter. `NLL_PENALTY` (nats
per example) is the regression knob: tests install a copy of this module with
it raised, as a pull request that makes the sampler worse would.
"""

from __future__ import annotations

import math
import os
import signal
import time
from pathlib import Path

import torch

from arbench import (
    Dataset,
    DatasetSpec,
    Incompatible,
    LikelihoodOutput,
    Logits,
    Model,
    ModelSpec,
    Param,
    SampleOutput,
    Sampler,
    SamplerSpec,
    TaskSpec,
    hookimpl,
)

NLL_PENALTY = 0.0


class Tiny(Dataset):
    modality = "image"
    shape = (4,)
    num_levels = 3

    def load(self, split: str) -> torch.Tensor:
        g = torch.Generator().manual_seed(0 if split == "train" else 1)
        return torch.randint(0, 3, (20, 4), generator=g)


class Uniform(Logits, Model):
    provides = frozenset({"causal-conditionals"})

    @classmethod
    def shipped_checkpoint(cls, dataset_name, *, family, **params):
        return None  # nothing to load

    @classmethod
    def load(cls, dataset, device, *, family, checkpoint, **params):
        model = cls(**params)
        model.net = torch.nn.Identity()  # a torch module a sampler may call directly
        return model

    @classmethod
    def train(cls, dataset, out, seed=0, *, family, **options):
        raise NotImplementedError

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(x.shape[0], 4, 3)


class Toy(Sampler):
    """`mode`: ok, slow, exploding, nan, die-once; or a broken contract: half (half the
    samples), wrong-shape, nan-samples, out-of-range (levels), short-nll, over-budget,
    bad-diagnostics, float64 or meta (samples), negative-nll (log p > 0 on levels),
    hidden-calls (10 logits calls per value, 4 reported), direct-net (the same through
    the model's torch module), nan-example (one per-example NLL NaN), huge-nll (finite
    NLLs beyond float32's range, which a record cannot store)."""

    class Params(Sampler.Params):
        mode: str = Param("ok", "what the sampler does (see the class docstring)")
        sleep: float = Param(0.3, "seconds a slow cell sleeps", ge=0)
        marker: str = Param("", "the file die-once makes when it dies")

    params: Params

    def _check(self, budget):
        if budget is not None and budget < 4:
            raise Incompatible(f"toy needs 4 network calls; budget {budget} is smaller")
        if self.params.mode == "slow":
            time.sleep(self.params.sleep)
        if self.params.mode == "exploding":
            raise RuntimeError("boom")
        if self.params.mode == "die-once" and not Path(self.params.marker).exists():
            Path(self.params.marker).touch()
            os.kill(os.getpid(), signal.SIGKILL)

    def sample(self, model, dataset, n, budget, generator, condition=None):
        self._check(budget)
        mode = self.params.mode
        samples = torch.randint(0, 3, (n, 4), generator=generator)
        for _ in range(40 * (mode == "hidden-calls")):
            model.logits(samples)
        for _ in range(40 * (mode == "direct-net")):
            model.net(samples.float())
        if mode == "float64":
            samples = samples.double()
        elif mode == "meta":
            samples = samples.to("meta")
        elif mode == "half":
            samples = samples[: n // 2]
        elif mode == "wrong-shape":
            samples = samples[:, :3]
        elif mode == "nan-samples":
            samples = samples.float() * math.nan
        elif mode == "out-of-range":
            samples = samples + 3
        return SampleOutput(samples, nfe=4 * (1 + 9 * (mode == "over-budget")))

    def nll(self, model, x, budget):
        self._check(budget)
        nats = -model.log_prob(x) + NLL_PENALTY
        if self.params.mode == "nan":
            nats = nats * math.nan
        if self.params.mode == "short-nll":
            nats = nats[: len(nats) // 2]
        if self.params.mode == "negative-nll":
            nats = nats - 10.0
        if self.params.mode == "huge-nll":
            nats = nats.double() * 1e40
        for _ in range(40 * (self.params.mode == "hidden-calls")):
            model.logits(x)
        diagnostics = {"scored": len(x)}
        if self.params.mode == "bad-diagnostics":
            diagnostics = {"per_example": nats}  # a tensor: not JSON
        return LikelihoodOutput(nats, nfe=4, diagnostics=diagnostics)


class Peek(Sampler):
    def sample(self, model, dataset, n, budget, generator, condition=None):
        return SampleOutput(condition.values.clone(), nfe=0)


@hookimpl
def arbench_datasets():
    return [DatasetSpec(name="tiny", factory=Tiny, description="4 values in {0,1,2}")]


@hookimpl
def arbench_models():
    return [ModelSpec(name="uniform", factory=Uniform, description="equal probabilities",
                      datasets=frozenset({"tiny"}))]


@hookimpl
def arbench_samplers():
    return [
        SamplerSpec(name="toy", factory=Toy, description="configurable test sampler",
                    requires=frozenset({"causal-conditionals"}),
                    serves=frozenset({"density", "unconditional", "swept-density"})),
        SamplerSpec(name="peek", factory=Peek, description="returns the condition's values",
                    serves=frozenset({"superres", "inpainting"})),
        SamplerSpec(name="needs-ardm", factory=Toy, description="needs an order-agnostic model",
                    requires=frozenset({"order-agnostic"}), serves=frozenset({"density"})),
    ]


@hookimpl
def arbench_tasks():
    return [TaskSpec(name="swept-density", factory="arbench_plugins.tasks.density:Density",
                     description="density with a baseline and a default sweep",
                     modalities=frozenset({"image"}), default_datasets=("tiny",),
                     baselines=("toy",), sweep={"image": {"max_examples": (5, 10)}})]
