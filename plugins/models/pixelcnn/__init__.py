"""PixelCNN on 8-bit digits: the plain model, PnF's noise-conditioned one, and the
distribution-smoothing pair.
"""
