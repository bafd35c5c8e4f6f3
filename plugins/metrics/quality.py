"""Sample-quality metrics for images: FID and Inception Score in a pluggable feature space.

FID is the Frechet distance of the features' Gaussians in float64 (the same
function gives its bootstrap replicates; tests check it against torchmetrics'
and pytorch-fid's); the Inception Score is torchmetrics' `InceptionScore` on
precomputed logits. Neither ever builds torchmetrics' own Inception network or
fetches weights. What they measure depends entirely on
the feature extractor, so each registered metric fixes one, and its unit names
it: FIDs in different feature spaces are as incomparable as numbers in
different units.

- ``digits-classifier`` (default): the 64 penultimate features and the 10 class
  logits of the shipped digits CNN (`arbench_plugins.models.classifier.model`).
  Inception features mean little on 8x8 grey images; MNIST-scale work measures
  FID with a small in-domain classifier in the same way.
- ``inception``: the FID Inception-V3 (`inception_net`, pool3's 2048 features
  and 1008 class logits), for comparison with published image FIDs. It needs
  pytorch-fid's weights file on disk (``weights=``, $ARBENCH_INCEPTION_WEIGHTS
  or the torch hub cache); arbench never downloads it.

A third-party extractor is any object with the `ImageFeatures` attributes:
register a loader with `register_extractor` and subclass `FID` /
`InceptionScore` with ``parameters = {**FID.parameters, "extractor": Param(NAME)}``, or pass
an instance as ``extractor=``.

Samples are continuous values in data units (``(B, *dataset.shape)`` in [-1, 1])
or integer levels, which are converted with ``dataset.continuous``. FID compares
them with the dataset's test split, whose feature mean and covariance are cached
on disk (see `reference_statistics`).

Sample size matters. FID is biased upward at finite N (the bias falls roughly
as 1/N; Chong & Forsyth, "Effectively Unbiased FID and Inception Score", 2020)
and the sample covariance is singular for N <= F (64 here). Compare FIDs only
at equal N, and use a few hundred samples or more on digits; a warning is
issued below 2F. The Inception Score defaults to one split: splitting a small
sample only biases each split's class marginal.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from arbench import (
    REPLICATES,
    Dataset,
    ImageFeatures,
    Measured,
    Metric,
    Param,
    load_model,
    require,
    resample_indices,
)
from arbench_plugins.metrics.inception_net import NUM_FEATURES, FIDInceptionV3
from arbench_plugins.metrics.reference_stats import (
    FeatureStatistics,
    extract,
    reference_statistics,
)

INCEPTION_WEIGHTS_GLOB = "pt_inception-2015-12-05-*.pth"
INCEPTION_WEIGHTS_ENV = "ARBENCH_INCEPTION_WEIGHTS"
INCEPTION_WEIGHTS_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                         "pt_inception-2015-12-05-6726825d.pth")


class ExtractorUnavailable(RuntimeError):
    """A feature extractor's package or weights are not installed (nothing is downloaded)."""


ExtractorLoader = Callable[..., ImageFeatures]  # (dataset, device, **options)


def _load_digits_classifier(dataset: Dataset, device: torch.device, checkpoint: Any = None,
                            **_: Any) -> ImageFeatures:
    return require(load_model("digits-classifier", dataset, device, checkpoint=checkpoint),
                   ImageFeatures, "the digits FID")


def inception_weights_path(weights: str | Path | None = None) -> Path | None:
    """The local pytorch-fid Inception weights: `weights`, else $ARBENCH_INCEPTION_WEIGHTS,
    else the torch hub cache's copy; None when the file named is not there."""
    weights = weights or os.environ.get(INCEPTION_WEIGHTS_ENV) or None
    if weights is not None:
        path = Path(weights).expanduser()
        return path if path.is_file() else None
    found = sorted((Path(torch.hub.get_dir()) / "checkpoints").glob(INCEPTION_WEIGHTS_GLOB))
    return found[0] if found else None


class InceptionExtractor(nn.Module):
    """The FID Inception-V3 (`inception_net`) on grey or RGB images in [-1, 1]: pool3
    features for FID, the 1008 class logits for the Inception Score."""

    name = "inception"
    num_features = NUM_FEATURES

    def __init__(self, weights: Path) -> None:
        super().__init__()
        from arbench import sha256_of

        self.net = FIDInceptionV3()
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            self.net.load_state_dict(state)
        except Exception as error:  # not a torch file, or another network's weights
            raise ExtractorUnavailable(
                f"{weights} is not pytorch-fid's Inception weights file "
                f"({type(error).__name__}: {str(error)[:200]})") from None
        self.net.eval()
        self.sha256 = sha256_of(weights)

    @staticmethod
    def _rgb(x: torch.Tensor) -> torch.Tensor:
        """[-1, 1] grey or RGB -> RGB in [0, 1], what the network takes."""
        return (x.float().expand(-1, 3, -1, -1) + 1) / 2

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.features(self._rgb(x))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.logits(self._rgb(x))


def _load_inception(dataset: Dataset, device: torch.device, weights: Any = None,
                    **_: Any) -> ImageFeatures:
    if len(dataset.shape) != 3 or dataset.shape[0] not in (1, 3):
        raise ValueError(f"Inception FID takes grey or RGB images (C, H, W); dataset "
                         f"'{dataset.name}' has shape {tuple(dataset.shape)}")
    path = inception_weights_path(weights)
    if path is None:
        named = weights or os.environ.get(INCEPTION_WEIGHTS_ENV)
        where = (f"the file {named} does not exist" if named else
                 f"no {INCEPTION_WEIGHTS_GLOB} in {Path(torch.hub.get_dir()) / 'checkpoints'}")
        raise ExtractorUnavailable(
            f"Inception FID is unavailable: its weights are missing ({where}), and arbench "
            f"never downloads anything. Download {INCEPTION_WEIGHTS_URL} yourself, then "
            f"put it in that folder, set {INCEPTION_WEIGHTS_ENV}=PATH, or pass "
            "--set METRIC.weights=PATH")
    return InceptionExtractor(path).to(device)


EXTRACTORS: dict[str, ExtractorLoader] = {
    "digits-classifier": _load_digits_classifier,
    "inception": _load_inception,
}


def register_extractor(name: str, loader: ExtractorLoader) -> None:
    """Make `loader(dataset, device, **options)` available as extractor `name`."""
    if name in EXTRACTORS and EXTRACTORS[name] is not loader:
        raise ValueError(f"feature extractor '{name}' is already registered")
    EXTRACTORS[name] = loader


def load_extractor(name: str, dataset: Dataset, device: torch.device,
                   **options: Any) -> ImageFeatures:
    """The feature network `name` for FID and IS on `dataset` (the digits classifier, or the
    Inception-V3 from a local weights file)."""
    if name not in EXTRACTORS:
        raise ValueError(f"unknown feature extractor '{name}'; known: {', '.join(EXTRACTORS)}")
    return EXTRACTORS[name](dataset, device, **options)


# --- statistics -----------------------------------------------------------------------------


# --- metrics --------------------------------------------------------------------------------


class _Precomputed(nn.Module):
    """torchmetrics' feature network for features extracted already (once, and kept for
    the bootstrap); ``num_features`` spares it a probe call."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.double()  # float64 also makes torchmetrics return float64


class _QualityMetric(Metric):
    class Params(Metric.Params):
        extractor: Any = Param("digits-classifier", "feature network: a registered extractor "
                           "name or an instance")
        checkpoint: str | None = Param(None, "the extractor's checkpoint (None: the shipped one)")
        weights: str | None = Param(None, "Inception weights file on disk")
        batch_size: int = Param(512, "examples per feature-extraction batch", ge=1)

    params: Params

    def _prepare(self, samples: torch.Tensor,
                 dataset: Dataset) -> tuple[torch.Tensor, ImageFeatures]:
        if tuple(samples.shape[1:]) != tuple(dataset.shape):
            raise ValueError(f"samples of shape {tuple(samples.shape)} do not match dataset "
                             f"'{dataset.name}' examples {tuple(dataset.shape)}")
        values = dataset.continuous(samples.detach())
        extractor = self.params.extractor
        if isinstance(extractor, str):
            # Building the network draws its throwaway initial weights from the global
            # RNG; a metric must not shift the random stream of whatever runs next.
            with torch.random.fork_rng(devices=[]):
                extractor = load_extractor(extractor, dataset, values.device,
                                           checkpoint=self.params.checkpoint,
                                           weights=self.params.weights)
        return values.float(), extractor


class FID(_QualityMetric):
    """Fréchet distance between Gaussians fitted to features of samples and test data.

    The value is torchmetrics' FID; its uncertainty comes from `replicates` FIDs of
    bootstrap resamples of the generated set against the same reference statistics
    (the sample size stays N, so each replicate carries the same finite-N bias).
    """

    class Params(_QualityMetric.Params):
        replicates: int = Param(REPLICATES, "bootstrap replicates for the interval", ge=2)

    params: Params

    def measure(self, samples: torch.Tensor, dataset: Dataset) -> Measured:
        values, extractor = self._prepare(samples, dataset)
        n, dims = len(values), extractor.num_features
        if n < 2:
            raise ValueError("FID needs at least 2 samples")
        if n < 2 * dims:
            warnings.warn(f"FID of {n} samples in {dims} features is strongly biased upward "
                          f"(singular covariance below {dims + 1}); compare only at equal N",
                          stacklevel=2)
        reference = reference_statistics(dataset, extractor, values.device,
                                         batch_size=self.params.batch_size)
        features = extract(extractor.features, values, self.params.batch_size).cpu().numpy()
        root = _symmetric_sqrt(reference.cov)
        replicates = np.array([frechet_distance(features[index], reference, root) for index
                               in resample_indices(n, self.params.replicates)])
        return Measured(frechet_distance(features, reference, root), replicates=replicates)


def _symmetric_sqrt(cov: np.ndarray) -> np.ndarray:
    """The PSD square root of a covariance, by its eigendecomposition (rounding's tiny
    negative eigenvalues read as 0)."""
    eigenvalues, vectors = np.linalg.eigh(cov)
    result: np.ndarray = (vectors * np.sqrt(np.clip(eigenvalues, 0, None))) @ vectors.T
    return result


def frechet_distance(features: np.ndarray, reference: FeatureStatistics,
                     root: np.ndarray) -> float:
    """FID of `features` against `reference`, given ``root = sqrt(reference.cov)``.

    tr sqrt(S_r S_g) is the sum of the square roots of the eigenvalues of the
    symmetric A S_g A, A = sqrt(S_r), which are those of P^T P / (N - 1) with
    P = (features - mean) A, or of the smaller P P^T / (N - 1) when N <= F:
    float64 from the centred features (no sums of squares, which lose digits when
    the means are large beside the spread), and cheap for few samples in many
    features.
    """
    centred = features - features.mean(axis=0)
    projected = centred @ root
    gram = (projected @ projected.T if len(features) <= len(root)
            else projected.T @ projected) / (len(features) - 1)
    eigenvalues = np.linalg.eigvalsh(gram)
    mean_term = ((features.mean(axis=0) - reference.mean) ** 2).sum()
    covariance = (np.trace(reference.cov) + (centred ** 2).sum() / (len(features) - 1)
                  - 2 * np.sqrt(np.clip(eigenvalues, 0, None)).sum())
    return max(float(mean_term + covariance), 0.0)


class InceptionScore(_QualityMetric):
    """exp(E_x KL(p(y|x) || p(y))) of the extractor's class posteriors over the samples.

    Between 1 and the number of classes. ``splits=1`` by default (see the module
    docstring); the shuffle torchmetrics does before splitting uses a fixed seed
    and leaves the global random state untouched. Its uncertainty: the score of
    `replicates` bootstrap resamples of the samples.
    """

    class Params(_QualityMetric.Params):
        splits: int = Param(1, "splits of the samples averaged over", ge=1)
        replicates: int = Param(REPLICATES, "bootstrap replicates for the interval", ge=2)

    params: Params

    def measure(self, samples: torch.Tensor, dataset: Dataset) -> Measured:
        from torchmetrics.image.inception import InceptionScore as TorchmetricsIS

        values, extractor = self._prepare(samples, dataset)
        logits = extract(extractor.logits, values, self.params.batch_size)
        with warnings.catch_warnings():  # "will save all extracted features in buffer"
            warnings.filterwarnings("ignore", message=".*save all extracted features.*")
            score = TorchmetricsIS(_Precomputed(0),
                                   splits=self.params.splits)
        with torch.no_grad():
            score.update(logits)
            with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
                torch.manual_seed(0)
                # The spread over one split is undefined; only the mean is returned.
                warnings.filterwarnings("ignore", message=r"std\(\): degrees of freedom")
                mean, _ = score.compute()
        probs = torch.softmax(logits, dim=1).cpu().numpy()
        return Measured(float(mean),
                        replicates=bootstrap_scores(probs, self.params.replicates))


def bootstrap_scores(probs: np.ndarray, replicates: int) -> np.ndarray:
    """Inception Score of each bootstrap resample of class posteriors ``probs (N, C)``."""
    return np.array([inception_score_of(probs[index])
                     for index in resample_indices(len(probs), replicates)])


def inception_score_of(probs: np.ndarray) -> float:
    """exp(mean_i sum_c p_ic log p_ic - sum_c q_c log q_c), q the marginal of ``probs``."""
    marginal = probs.mean(axis=0)
    within = (probs * np.log(np.clip(probs, 1e-300, None))).sum(axis=1).mean()
    return float(np.exp(within - (marginal * np.log(np.clip(marginal, 1e-300, None))).sum()))


class InceptionFID(FID):
    """FID in the FID Inception-V3's pool3 features (pytorch-fid's weights, on disk)."""

    class Params(FID.Params):
        extractor: Any = Param("inception", "feature network")

    params: Params


class InceptionInceptionScore(InceptionScore):
    """The Inception Score in the FID Inception-V3's 1008 classes (weights on disk)."""

    class Params(InceptionScore.Params):
        extractor: Any = Param("inception", "feature network")

    params: Params
