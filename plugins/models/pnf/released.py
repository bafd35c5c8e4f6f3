"""Reading other projects' released weights: explicit key maps that refuse, never skip.

The PnF originals load their checkpoints with code that copies the parameters
whose names match and silently ignores the rest. An importer here instead maps
every source key to an arbench key, folds weight normalisation into plain
weights, and compares the result with the arbench network's own state dict:
any missing, unexpected or mis-shaped key stops the import with the full list
(`ImportRefused`). Files are read with ``weights_only=True``.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from arbench import CheckpointError, sha256_of

WEIGHT_NORM_SUFFIXES = {  # torch.nn.utils.weight_norm, then its parametrizations successor
    "weight_g": ("weight", "g"), "weight_v": ("weight", "v"),
    "parametrizations.weight.original0": ("weight", "g"),
    "parametrizations.weight.original1": ("weight", "v"),
}


class ImportRefused(CheckpointError):
    """Released weights that do not fit the architecture key for key."""

    def __init__(self, source: Path, missing: list[str], unexpected: list[str],
                 misshaped: list[str]) -> None:
        lines = [f"{source} does not fit the architecture; nothing was written."]
        for title, keys in (("missing", missing), ("unexpected", unexpected),
                            ("mis-shaped", misshaped)):
            if keys:
                lines.append(f"  {title} ({len(keys)}): " + ", ".join(keys))
        super().__init__("\n".join(lines))
        self.missing, self.unexpected, self.misshaped = missing, unexpected, misshaped


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a released file: a state dict, or one nested under ``state_dict``
    (the wavenet_vocoder layout), with DataParallel's ``module.`` prefix removed."""
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        if zipfile.is_zipfile(path):  # a torch.save archive whose pickle needs more
            raise CheckpointError(f"{path} holds Python objects besides tensors; arbench "
                                  "reads released weights with weights_only=True only"
                                  ) from None
        raise CheckpointError(f"{path} is not a readable torch file (no torch.save archive)"
                              ) from None
    except (RuntimeError, EOFError, OSError) as error:
        raise CheckpointError(f"{path} is not a readable torch file ({error})") from None
    state = loaded.get("state_dict", loaded) if isinstance(loaded, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor)
                                              for v in state.values()):
        raise CheckpointError(f"{path} holds no state dict of tensors (top level or under "
                              "'state_dict')")
    broken = [key for key, value in state.items()
              if value.is_floating_point() and not bool(torch.isfinite(value).all())]
    if broken:
        named = ", ".join(broken[:5]) + (", ..." if len(broken) > 5 else "")
        raise CheckpointError(f"{path} holds NaN or infinite weights in {len(broken)} "
                              f"tensor(s) ({named}); a diverged or damaged checkpoint, "
                              "nothing was written")
    return {key.removeprefix("module."): value for key, value in state.items()}


def fold_weight_norm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Replace each weight-normalised pair (g, v) by the weight it stands for,
    ``g * v / ||v||`` with the norm over every dimension but the first (torch's dim=0)."""
    plain: dict[str, torch.Tensor] = {}
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        for suffix, (name, part) in WEIGHT_NORM_SUFFIXES.items():
            if key.endswith("." + suffix):
                pairs.setdefault(key.removesuffix(suffix) + name, {})[part] = value
                break
        else:
            plain[key] = value
    for key, pair in pairs.items():
        if set(pair) != {"g", "v"}:
            plain[key + "_" + next(iter(pair))] = next(iter(pair.values()))  # reported below
            continue
        v = pair["v"].double()
        norm = v.flatten(1).norm(dim=1).view(-1, *[1] * (v.dim() - 1))
        plain[key] = (pair["g"].double() * v / norm).to(pair["v"].dtype)
    return plain


def map_exactly(source: Path, state: dict[str, torch.Tensor], key_map: dict[str, str],
                target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`state` renamed by `key_map` (source key -> arbench key), checked against the
    arbench network's state dict `target`: every key present once, every shape equal."""
    missing = sorted(set(key_map) - set(state))
    unexpected = sorted(set(state) - set(key_map))
    misshaped = sorted(
        f"{key} {tuple(state[key].shape)} (expected {tuple(target[key_map[key]].shape)})"
        for key in set(state) & set(key_map)
        if state[key].shape != target[key_map[key]].shape
    )
    if missing or unexpected or misshaped:
        raise ImportRefused(source, missing, unexpected, misshaped)
    return {key_map[key]: value for key, value in state.items()}


def source_record(files: list[Path]) -> list[dict[str, Any]]:
    """What the sidecars record of the files an import read: name and sha256."""
    return [{"file": str(path), "sha256": sha256_of(path)} for path in files]
