"""WaveNet: the PnF audio prior, its fast-generation cache and the importer of the authors'
released WaveNets.
"""

from __future__ import annotations

from arbench import ModelSpec

SPECS = [
    ModelSpec(
        name="wavenet",
        factory="arbench_plugins.models.wavenet.model:WaveNet",
        description="Dilated causal-conv WaveNet conditioned on the noise level (PnF audio)",
        datasets=frozenset({"piano", "voice", "pianovoice", "tones", "wavdir"}),
    ),
    ModelSpec(
        name="pnf-wavenet",
        factory="arbench_plugins.models.wavenet.released:PnFWaveNet",
        description="The PnF authors' released WaveNets, one per noise level "
                    "(`arbench import pnf-wavenet DIR --out BANK`)",
        datasets=frozenset({"wavdir"}),
        ships_weights=False,
    ),
]
