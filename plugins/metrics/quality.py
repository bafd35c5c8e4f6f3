"""Sample-quality metrics for images: FID and Inception Score in a pluggable feature space.

Both are computed by torchmetrics (`FrechetInceptionDistance`, `InceptionScore`)
given a custom feature module, so neither ever builds torchmetrics' own
Inception network or fetches its weights. What they measure depends entirely on
the feature extractor, so each registered metric fixes one, and its unit names
it: FIDs in different feature spaces are as incomparable as numbers in
different units.

- ``digits-classifier`` (default): the 64 penultimate features and the 10 class
  logits of the shipped digits CNN (`arbench_plugins.models.digits_classifier`).
  Inception features mean little on 8x8 grey images; MNIST-scale work measures
  FID with a small in-domain classifier in the same way.
- ``inception``: pytorch-fid's Inception-V3 pool3 (2048 features), for
  comparison with published image FIDs. Used only if pytorch-fid imports and its
  weights file is already on disk; arbench never downloads it.

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

import importlib
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from arbench.capabilities import ImageFeatures
from arbench.contracts import Dataset, Metric
from arbench.params import Param
from arbench.statistics import REPLICATES, Measured, resample_indices
from arbench_plugins.metrics.reference_stats import (
    FeatureStatistics,
    extract,
    reference_statistics,
)

INCEPTION_WEIGHTS_GLOB = "pt_inception-2015-12-05-*.pth"
INCEPTION_WEIGHTS_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                         "pt_inception-2015-12-05-6726825d.pth")


class ExtractorUnavailable(RuntimeError):
    """A feature extractor's package or weights are not installed (nothing is downloaded)."""


ExtractorLoader = Callable[..., ImageFeatures]  # (dataset, device, **options)


def _load_digits_classifier(dataset: Dataset, device: torch.device, checkpoint: Any = None,
                            **_: Any) -> ImageFeatures:
    from arbench_plugins.models.digits_classifier import DigitsClassifier

    return DigitsClassifier.load(dataset, device, checkpoint=checkpoint)


def inception_weights_path(weights: str | Path | None = None) -> Path | None:
    """The local pytorch-fid Inception weights: `weights`, else the torch hub cache's copy."""
    if weights is not None:
        path = Path(weights).expanduser()
        return path if path.is_file() else None
    found = sorted((Path(torch.hub.get_dir()) / "checkpoints").glob(INCEPTION_WEIGHTS_GLOB))
    return found[0] if found else None


class InceptionExtractor(nn.Module):
    """pytorch-fid's FID Inception-V3 pool3 features of grey or RGB images in [-1, 1]."""

    name = "inception"
    num_features = 2048

    def __init__(self, weights: Path) -> None:
        super().__init__()
        from unittest import mock

        from pytorch_fid import inception as pytorch_fid_inception

        from arbench.checkpoints import sha256_of

        def local_weights(*_: Any, **__: Any) -> dict[str, torch.Tensor]:
            return torch.load(weights, map_location="cpu", weights_only=True)

        # pytorch-fid fetches its weights by URL; hand it the local file instead.
        with mock.patch.object(pytorch_fid_inception, "load_state_dict_from_url", local_weights):
            self.net = pytorch_fid_inception.InceptionV3([3], resize_input=True,
                                                         normalize_input=True).eval()
        self.sha256 = sha256_of(weights)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return self.net((x + 1) / 2)[0].flatten(1)  # pytorch-fid takes [0, 1]

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("pytorch-fid's Inception stops at pool3: it has no class "
                                  "logits, so no Inception Score with extractor 'inception'")


def _load_inception(dataset: Dataset, device: torch.device, weights: Any = None,
                    **_: Any) -> ImageFeatures:
    if len(dataset.shape) != 3 or dataset.shape[0] not in (1, 3):
        raise ValueError(f"Inception FID takes grey or RGB images (C, H, W); dataset "
                         f"'{dataset.name}' has shape {tuple(dataset.shape)}")
    problems = []
    path = inception_weights_path(weights)
    if path is None:
        where = (f"the file {weights} does not exist" if weights is not None else
                 f"no {INCEPTION_WEIGHTS_GLOB} in {Path(torch.hub.get_dir()) / 'checkpoints'}")
        problems.append(
            f"its weights are missing ({where}); download {INCEPTION_WEIGHTS_URL} yourself "
            f"and put it in that folder, or pass weights=PATH")
    try:
        importlib.import_module("pytorch_fid.inception")
    except Exception as error:  # not installed, or torchvision does not match torch
        problems.append(f"pytorch-fid does not import ({type(error).__name__}: {error}); "
                        "install it with `pip install -e \".[fid]\"` and a torchvision "
                        "matching your torch")
    if problems or path is None:
        raise ExtractorUnavailable("Inception FID is unavailable, and arbench never downloads "
                                   "anything: " + "; ".join(problems))
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
    parameters = {
        "extractor": Param("digits-classifier", "feature network: a registered extractor "
                           "name or an instance", type=object),
        "checkpoint": Param(None, "the extractor's checkpoint (None: the shipped one)",
                            type=str),
        "weights": Param(None, "Inception weights file on disk", type=str),
        "batch_size": Param(512, "examples per feature-extraction batch", ge=1),
    }

    def _prepare(self, samples: torch.Tensor,
                 dataset: Dataset) -> tuple[torch.Tensor, ImageFeatures]:
        if tuple(samples.shape[1:]) != tuple(dataset.shape):
            raise ValueError(f"samples of shape {tuple(samples.shape)} do not match dataset "
                             f"'{dataset.name}' examples {tuple(dataset.shape)}")
        values = dataset.continuous(samples.detach())
        extractor = self.params["extractor"]
        if isinstance(extractor, str):
            # Building the network draws its throwaway initial weights from the global
            # RNG; a metric must not shift the random stream of whatever runs next.
            with torch.random.fork_rng(devices=[]):
                extractor = load_extractor(extractor, dataset, values.device,
                                           checkpoint=self.params["checkpoint"],
                                           weights=self.params["weights"])
        return values.float(), extractor


class FID(_QualityMetric):
    """Fréchet distance between Gaussians fitted to features of samples and test data.

    The value is torchmetrics' FID; its uncertainty comes from `replicates` FIDs of
    bootstrap resamples of the generated set against the same reference statistics
    (the sample size stays N, so each replicate carries the same finite-N bias).
    """

    parameters = {**_QualityMetric.parameters,
                  "replicates": Param(REPLICATES, "bootstrap replicates for the interval",
                                      ge=2)}

    def measure(self, samples: torch.Tensor, dataset: Dataset) -> Measured:
        from torchmetrics.image.fid import FrechetInceptionDistance

        values, extractor = self._prepare(samples, dataset)
        n, dims = len(values), extractor.num_features
        if n < 2:
            raise ValueError("FID needs at least 2 samples")
        if n < 2 * dims:
            warnings.warn(f"FID of {n} samples in {dims} features is strongly biased upward "
                          f"(singular covariance below {dims + 1}); compare only at equal N",
                          stacklevel=2)
        device = values.device
        reference = reference_statistics(dataset, extractor, device,
                                         batch_size=self.params["batch_size"])
        features = extract(extractor.features, values, self.params["batch_size"])
        # torchmetrics gets the features themselves (an identity feature module).
        fid = FrechetInceptionDistance(_Precomputed(dims)).to(device)
        mean = torch.as_tensor(reference.mean, dtype=torch.float64, device=device)
        cov = torch.as_tensor(reference.cov, dtype=torch.float64, device=device)
        # torchmetrics keeps sums; rebuild them from the cached mean and covariance.
        fid.real_features_sum = mean * reference.n
        fid.real_features_cov_sum = cov * (reference.n - 1) + reference.n * torch.outer(mean, mean)
        fid.real_features_num_samples = torch.tensor(reference.n, device=device)
        with torch.no_grad():
            fid.update(features, real=False)
            value = max(float(fid.compute()), 0.0)  # identical statistics can round to -1e-12
        replicates = bootstrap_fids(features.cpu().numpy(), reference, self.params["replicates"])
        return Measured(value, replicates=replicates)


def bootstrap_fids(features: np.ndarray, reference: FeatureStatistics,
                   replicates: int) -> np.ndarray:
    """FID of each bootstrap resample of `features` against `reference`, float64.

    tr sqrt(S_r S_g) is the sum of the square roots of the eigenvalues of
    A S_g A with A = sqrt(S_r), a symmetric matrix: one eigvalsh per replicate.
    """
    from scipy.linalg import sqrtm

    root = np.real(sqrtm(reference.cov))
    root = (root + root.T) / 2
    return np.array([frechet_distance(features[index], reference, root)
                     for index in resample_indices(len(features), replicates)])


def frechet_distance(features: np.ndarray, reference: FeatureStatistics,
                     root: np.ndarray) -> float:
    """FID of `features` against `reference`, given ``root = sqrtm(reference.cov)``."""
    mean, cov = features.mean(axis=0), np.cov(features, rowvar=False)
    eigenvalues = np.linalg.eigvalsh(root @ cov @ root)
    covariance = np.trace(reference.cov) + np.trace(cov) - 2 * np.sqrt(
        np.clip(eigenvalues, 0, None)).sum()
    return max(float(((mean - reference.mean) ** 2).sum() + covariance), 0.0)


class InceptionScore(_QualityMetric):
    """exp(E_x KL(p(y|x) || p(y))) of the extractor's class posteriors over the samples.

    Between 1 and the number of classes. ``splits=1`` by default (see the module
    docstring); the shuffle torchmetrics does before splitting uses a fixed seed
    and leaves the global random state untouched. Its uncertainty: the score of
    `replicates` bootstrap resamples of the samples.
    """

    parameters = {**_QualityMetric.parameters,
                  "splits": Param(1, "splits of the samples averaged over", ge=1),
                  "replicates": Param(REPLICATES, "bootstrap replicates for the interval",
                                      ge=2)}

    def measure(self, samples: torch.Tensor, dataset: Dataset) -> Measured:
        from torchmetrics.image.inception import InceptionScore as TorchmetricsIS

        values, extractor = self._prepare(samples, dataset)
        logits = extract(extractor.logits, values, self.params["batch_size"])
        with warnings.catch_warnings():  # "will save all extracted features in buffer"
            warnings.filterwarnings("ignore", message=".*save all extracted features.*")
            score = TorchmetricsIS(_Precomputed(0),
                                   splits=self.params["splits"])
        with torch.no_grad():
            score.update(logits)
            with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
                torch.manual_seed(0)
                # The spread over one split is undefined; only the mean is returned.
                warnings.filterwarnings("ignore", message=r"std\(\): degrees of freedom")
                mean, _ = score.compute()
        probs = torch.softmax(logits, dim=1).cpu().numpy()
        return Measured(float(mean),
                        replicates=bootstrap_scores(probs, self.params["replicates"]))


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
    """FID in pytorch-fid's Inception-V3 pool3 features (weights must be on disk)."""

    parameters = {**FID.parameters,
                  "extractor": Param("inception", "feature network", type=object)}
