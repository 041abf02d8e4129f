"""seqkit: sequence models written from scratch in PyTorch, trained by one Trainer."""

__version__ = "0.1.0"

# Every seqkit model type loads with transformers' Auto classes (and so with ``pipeline``) once
# seqkit is imported; the registration itself waits until transformers' Auto machinery is
# imported, so ``import seqkit`` stays free of torch and transformers (seqkit.models.auto).
from seqkit.models.auto import install as _install_auto_classes

_install_auto_classes()


_API = ("train", "load", "Run", "Trained")


def __getattr__(name: str):
    """``seqkit.train``, ``seqkit.load``… (:mod:`seqkit.api`), imported on first use so that
    ``import seqkit`` stays free of torch."""
    if name in _API:
        from seqkit import api

        return getattr(api, name)
    raise AttributeError(f"module 'seqkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
