"""Model capabilities as typed Protocols: what a sampler may ask of a model.

A model declares capability names in ``provides`` on its class, beside the methods
that implement them (grids read it there, `ModelSpec.provided`). Each name stands for a
Protocol below; `ModelSpec.load` refuses a class that lacks a method one of its
capabilities needs, naming it. Samplers get a typed view of the model with `require`, never with
``hasattr``::

    from arbench.plugin.capabilities import OrderedCodes, require

    codes = require(model, OrderedCodes, "anytime sampling")  # Incompatible if not
    z = codes.prior_sample(n, k, generator)

A capability name no Protocol stands for (a third party's own) is matched by
name only. The `Logits` mixin implements `log_prob` and `sample_value` from
`logits`, so a discrete model provides both causal Protocols with `logits` alone.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard, TypeVar, runtime_checkable

from arbench.errors import ContractError, Incompatible
from arbench.plugin.calls import free, network_call, returns_cache, returns_model, rows

if TYPE_CHECKING:
    import torch

    from arbench.plugin.contracts import Model

P = TypeVar("P")


# What one call of the capabilities' methods that draw values one by one costs, in
# example-evaluations (the rest are `batched`: one per row):
def _codes_drawn(model: Any, n: int, k: int | None = None, *args: Any, **kwargs: Any) -> float:
    return float(n * (model.num_codes if k is None else k))


def _noisy_draws(model: Any, n: int, *args: Any, **kwargs: Any) -> float:
    return float(n * model.dims)


def _clean_draws(model: Any, noisy: Any, *args: Any, **kwargs: Any) -> float:
    return float(rows(noisy) * model.dims)


def _elbo_draws(model: Any, x: Any, samples: int, *args: Any, **kwargs: Any) -> float:
    return rows(x) * 2 * samples


class InOrder:
    """Mixin of a "causal-conditionals" model that draws in raster order over ``shape``
    with no per-value cache (override either to say otherwise)."""

    def value_order(self) -> torch.Tensor | None:
        """The flat positions in the order `sample_value` and `incremental` draw them;
        None is raster order over ``shape``. A model whose factorisation runs otherwise
        over the stored layout (PixelCNN++: pixel by pixel, RGB within each, over
        channel-first images) returns a permutation of ``range(dims)``."""
        return None

    def incremental(self, n: int) -> Any:
        """A cache that draws `n` sequences value by value at O(layers) per value, or
        None: then ancestral sampling recomputes the history at every step. Its
        ``logits(previous)`` gives the next value's logits ``(n, K)`` from the value drawn
        before it (None first), equal to `logits` of the whole history. A cache may also
        offer ``window(x, starts, width)``, the logits ``(n, width, K)`` at each row's
        raster positions ``starts .. starts + width - 1`` of `x` ``(n, D)``, keeping what
        it computed for positions before a row's later starts (speculative sampling
        verifies a draft with it: the transformer's). A cache whose step evaluates more
        than the one position (or a window more than its width) per row says how many in
        ``step_positions``, read after each call (PixelCNN's rows so far)."""
        return None


class Logits(InOrder, ABC):
    """Mixin of a discrete causal model: implement `logits` and get `log_prob` and
    `sample_value` from it, i.e. both "causal-logits" and "causal-conditionals"."""

    @abstractmethod
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, D, K)``; row i is p(x_i | x_<i) in the model's order."""

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log-likelihood of each example in nats, shape ``(B,)``."""
        import torch.nn.functional as F

        logits = self.logits(x)
        target = x.reshape(x.shape[0], -1)
        return -F.cross_entropy(logits.transpose(1, 2), target, reduction="none").sum(dim=1)

    def sample_value(self, x: torch.Tensor, i: int, generator: torch.Generator) -> torch.Tensor:
        """Draw value i of every example given its values before it, ``(B,)``: one network
        call, from the categorical of `logits`."""
        import torch

        probs = torch.softmax(self.logits(x)[:, i], dim=-1)
        return torch.multinomial(probs, 1, generator=generator).squeeze(1)


@runtime_checkable
class CausalConditionals(Protocol):
    """"causal-conditionals": the values of an example in the model's order (raster order
    over ``shape`` unless `value_order` says otherwise), each drawn or scored given those
    before it (PixelCNN, WaveNet, a MADE over 2-D points; PixelCNN++ goes pixel by pixel,
    red, green, blue within each, over images stored channel-first).

    Ancestral sampling needs nothing else::

        x = torch.zeros(n, *shape, dtype=torch.long)
        order = model.value_order()
        for i in range(dims) if order is None else order.tolist():
            x.view(n, -1)[:, i] = model.sample_value(x, i, generator)
    """

    @network_call()
    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log-likelihood in nats of each example, ``(B,)``."""
        ...

    @network_call()
    def sample_value(self, x: torch.Tensor, i: int, generator: torch.Generator
                     ) -> torch.Tensor:
        """Flat value i of every example given the values before it in the model's order,
        ``(B,)``; one call."""
        ...

    @free
    def value_order(self) -> torch.Tensor | None:
        """The flat positions in the order the model draws them, or None: raster order."""
        ...

    @returns_cache
    def incremental(self, n: int) -> Any:
        """A per-value cache for drawing `n` sequences in the model's order, or None
        (recompute the history)."""
        ...


@runtime_checkable
class CausalLogits(Protocol):
    """"causal-logits": a discrete causal model's categorical logits for every position in
    one call, ``(B, D, K)`` with row i = p(x_i | x_<i): what scores data in one pass and
    what fixed-point (Jacobi) decoding iterates. ``model.logits(x).argmax(-1)`` is every
    position's greedy value given the rest of `x` as its history."""

    @network_call()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, D, K)`` of levels `x` ``(B, *shape)``."""
        ...

    @free
    def value_order(self) -> torch.Tensor | None:
        """The flat positions in the model's order, or None: raster order."""
        ...


@runtime_checkable
class NoiseConditioned(Protocol):
    """"noise-conditioned": the Gaussian-smoothed model of PnF over continuous values in
    data units, where level k of the data sits at ``levels[k]``. A Langevin step::

        x = x.requires_grad_()
        (grad,) = torch.autograd.grad(model.smoothed_log_prob(x, sigma).sum(), x)
        x = x + eta * grad + (2 * eta) ** 0.5 * torch.randn_like(x)
        samples = model.quantize(x)  # back to levels at the end
    """

    @network_call()
    def smoothed_log_prob(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        """log p_sigma(x) ``(B,)`` of continuous ``(B, *shape)``, differentiable in x."""
        ...

    @free
    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        """Continuous values to the nearest level index."""
        ...


@runtime_checkable
class NoiseLevels(Protocol):
    """"noise-levels": a bank of networks, one per noise level (the PnF originals' scheme:
    each level fine-tuned on its own). PnF anneals over exactly these levels::

        for sigma in model.noise_levels():  # largest first
            ...model.smoothed_log_prob(x, sigma)...  # served by the network of that level
    """

    @free
    def noise_levels(self) -> list[float]:
        """The levels the bank has networks for, in data units, largest first."""
        ...


@runtime_checkable
class SourcePriors(Protocol):
    """A model of a multi-source dataset (separation): one prior per source, each with the
    capabilities of the whole (``model.prior("piano").smoothed_log_prob(x, sigma)``)."""

    @returns_model
    def prior(self, source: str) -> NoiseConditioned:
        """The model of source `source`."""
        ...


@runtime_checkable
class OrderAgnostic(Protocol):
    """"order-agnostic" (one stage) and "upscale-stages" (coarse-to-fine base-`branch`
    digits, `stages` > 1): an ARDM. Any subset of positions, in any order, is predicted
    in one call, and `loss_components` ``(stages, dims)`` is the expected loss of step t
    that the budget's dynamic program splits. One parallel step::

        log_p = model.step_log_probs(x, known, stage)  # (B, D, K) over the next digit
        drawn = torch.multinomial(log_p.exp().flatten(0, 1), 1, generator=generator)
    """

    dims: int
    num_levels: int
    stages: int
    digits: Any  # the stage arithmetic: coarse(x, stage), digit(x, stage), unit(stage)

    @property
    def loss_components(self) -> torch.Tensor:
        """Expected NLL in nats of step t of each stage, ``(stages, dims)``."""
        ...

    @network_call()
    def step_log_probs(self, current: torch.Tensor, known: torch.Tensor, stage: int
                       ) -> torch.Tensor:
        """Log-probabilities ``(B, D, K)`` of each position's digit at `stage`."""
        ...


@runtime_checkable
class OrderedCodes(Protocol):
    """"ordered-codes": a VQ-VAE whose `num_codes` codes per image are ordered coarse to
    fine, with a causal prior over them (anytime sampling)::

        codes = model.prior_sample(n, k, generator)  # k prior calls
        images = model.decode(codes, k)              # codes after k read as zeros
    """

    num_codes: int

    @free
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Code indices ``(B, num_codes, ...)`` of levels `x`."""
        ...

    @free
    def decode(self, codes: torch.Tensor, k: int | None = None, sample: bool = False,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Levels from the first `k` codes (the rest zeroed): argmax, or a sample."""
        ...

    @network_call(_codes_drawn, positions=_codes_drawn)
    def prior_sample(self, n: int, k: int | None, generator: torch.Generator
                     ) -> torch.Tensor:
        """`n` draws of the first `k` codes from the prior, one call per code."""
        ...


@runtime_checkable
class SmoothedPair(Protocol):
    """"smoothed-pair": distribution smoothing's p(x~) on data noised at `sigma` and the
    reverse p(x | x~). Single-step denoising::

        (grad,) = torch.autograd.grad(model.noisy_log_prob(noisy).sum(), noisy)
        clean = noisy + model.sigma**2 * grad
    """

    sigma: float
    dims: int

    @network_call()
    def noisy_log_prob(self, noisy: torch.Tensor) -> torch.Tensor:
        """log p(x~) ``(B,)``, differentiable in x~."""
        ...

    @network_call(_noisy_draws)
    def sample_noisy(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """`n` draws of x~ (`dims` calls)."""
        ...

    @network_call(_clean_draws)
    def sample_clean(self, noisy: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One x ~ p(x | x~) per row (`dims` calls)."""
        ...

    @network_call()
    def clean_log_prob(self, x: torch.Tensor, noisy: torch.Tensor) -> torch.Tensor:
        """log p(x | x~) ``(B,)``: the reverse model's likelihood of clean `x`."""
        ...

    @network_call(_elbo_draws)
    def elbo(self, x: torch.Tensor, samples: int, generator: torch.Generator | None = None
             ) -> torch.Tensor:
        """The smoothing lower bound on log p(x) per example, ``(B,)``."""
        ...


@runtime_checkable
class ImageFeatures(Protocol):
    """"image-features": a network whose features FID compares and whose class logits the
    Inception Score reads, on continuous images ``(B, *shape)`` in data units. `sha256`
    names the weights (it keys the reference-statistics cache; empty disables it)::

        mu = model.features(images).mean(0)  # (num_features,)
    """

    name: str
    sha256: str
    num_features: int

    @free
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Features ``(B, num_features)``."""
        ...

    @network_call()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, C)``."""
        ...


@runtime_checkable
class Reconstructs(Protocol):
    """A sampler that also maps data to a reconstruction under a budget (the
    reconstruction task's anytime codes): the same contract as `Sampler.sample`."""

    def reconstruct(self, model: Model | None, x: torch.Tensor, budget: int | None,
                    generator: torch.Generator) -> Any:
        """A `SampleOutput` whose samples reconstruct `x`."""
        ...


PROTOCOLS: dict[str, type] = {
    "causal-conditionals": CausalConditionals,
    "causal-logits": CausalLogits,
    "noise-conditioned": NoiseConditioned,
    "noise-levels": NoiseLevels,
    "order-agnostic": OrderAgnostic,
    "upscale-stages": OrderAgnostic,
    "ordered-codes": OrderedCodes,
    "smoothed-pair": SmoothedPair,
    "image-features": ImageFeatures,
}
"""The Protocol each built-in capability name stands for."""


def members(protocol: type) -> tuple[list[str], list[str]]:
    """The (methods, attributes) a Protocol asks for, in declaration order."""
    methods = [name for name, value in vars(protocol).items()
               if not name.startswith("_") and (callable(value) or isinstance(value, property))]
    attributes = [name for name in vars(protocol).get("__annotations__", {})
                  if name not in methods]
    return methods, attributes


def _implemented(cls: type, name: str) -> bool:
    method = getattr(cls, name, None)
    return method is not None and not getattr(method, "__isabstractmethod__", False)


def missing(target: object, protocol: type) -> list[str]:
    """What `target` (a class, or an instance: then attributes are checked too) lacks of
    `protocol`, e.g. ``["logits()"]``; empty when it implements it all."""
    cls = target if isinstance(target, type) else type(target)
    methods, attributes = members(protocol)
    lacking = [f"{name}()" for name in methods if not _implemented(cls, name)]
    if not isinstance(target, type):
        lacking += [name for name in attributes if not hasattr(target, name)]
    return lacking


def implements(target: object, protocol: type[P]) -> TypeGuard[P]:
    """Whether `target` implements `protocol` (abstract methods do not count)."""
    return not missing(target, protocol)


def require(model: object, protocol: type[P], who: str) -> P:
    """`model` typed as `protocol`, or `Incompatible` naming what `who` needs and lacks."""
    if model is None:
        raise Incompatible(f"{who}: no model given; it needs one implementing "
                           f"{protocol.__name__}")
    lacking = missing(model, protocol)
    if lacking:
        raise Incompatible(f"{who}: {type(model).__name__} does not implement "
                           f"{protocol.__name__} (lacks {', '.join(lacking)})")
    return model  # type: ignore[return-value]


def verify_model_class(cls: type, name: str) -> None:
    """`cls` implements each capability's Protocol it ``provides``; else a `ContractError`
    naming the missing methods."""
    provides: frozenset[str] = frozenset(getattr(cls, "provides", frozenset()))
    for capability in sorted(provides):
        protocol = PROTOCOLS.get(capability)
        lacking = missing(cls, protocol) if protocol is not None else []
        if protocol is not None and lacking:
            raise ContractError(
                f"model '{name}' ({cls.__name__}) provides {capability!r} but does not "
                f"implement {', '.join(lacking)} of {protocol.__name__}")
