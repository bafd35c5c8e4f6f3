"""What PnF's noise-conditioned models share: the Gaussian-smoothed conditional, level banks,
and key maps for the authors' released weights.
"""
