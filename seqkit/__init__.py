"""seqkit: sequence models written from scratch in PyTorch, trained by one Trainer."""

__version__ = "0.1.0"
