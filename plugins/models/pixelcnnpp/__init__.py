"""PixelCNN++ (Salimans et al., 2017): network, mixture likelihood, fast cache, the PnF prior,
its released-weight importer and the distribution-smoothing pair.
"""
