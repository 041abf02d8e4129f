"""seqkit: sequence models written from scratch in PyTorch, trained by one Trainer."""

__version__ = "0.1.0"

# Every seqkit model type loads with transformers' Auto classes (and so with ``pipeline``) once
# seqkit is imported; the registration itself waits until transformers' Auto machinery is
# imported, so ``import seqkit`` stays free of torch and transformers (seqkit.models.auto).
from seqkit.models.auto import install as _install_auto_classes

_install_auto_classes()
