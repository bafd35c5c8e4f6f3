"""arbench: a benchmark suite for sampling from autoregressive models.

This package is the public API: a plugin imports everything it needs from ``arbench``
itself (``from arbench import Sampler, SampleOutput, hookimpl``), never from the
modules behind it, so it survives any move inside the core. The names are declared
once, in ``__init__.pyi``, and each is imported from its module on first use: importing
arbench is cheap, and registration modules and ``arbench --help`` never import torch.
"""

import lazy_loader

__version__ = "0.1.0"

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
