"""seqkit.vision: image models (MLP, LeNet CNN, ResNet, denoising autoencoder), image data and
augmentation, trained by the same Trainer as the sequence models.

Modules: :mod:`~seqkit.vision.models` (configs and networks), :mod:`~seqkit.vision.data`
(sources and splits), :mod:`~seqkit.vision.augment` (tensor augmentations),
:mod:`~seqkit.vision.tasks` (training tasks), :mod:`~seqkit.vision.plots` (grids, feature maps,
confusion matrix) and :mod:`~seqkit.vision.family` (recipes → jobs, ``seqkit evaluate``).
Nothing is imported here, so ``import seqkit.vision.data`` stays light.
"""
