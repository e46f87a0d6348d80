"""One module per paper; each declares its ``CITATION``, and a paper that pretrains registers its objective with
:func:`kbench.pretrain.register_objective` when it is imported."""
from __future__ import annotations


def load_objectives() -> dict:
    """Import every paper module, so that each registers its pretraining objective; return the registry."""
    import importlib
    import pkgutil

    from kbench.pretrain import OBJECTIVES

    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return OBJECTIVES
