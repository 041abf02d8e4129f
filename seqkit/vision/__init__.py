"""seqkit.vision: image models (MLP, LeNet CNN, ResNet, denoising autoencoder), image data and
augmentation, trained by the same Trainer as the sequence models.

Modules: :mod:`~seqkit.vision.models` (configs and networks), :mod:`~seqkit.vision.data`
(sources and splits), :mod:`~seqkit.vision.augment` (tensor augmentations),
:mod:`~seqkit.vision.tasks` (training tasks), :mod:`~seqkit.vision.plots` (grids, feature maps,
confusion matrix); the parts a recipe composes are the model builders at the end of
:mod:`~seqkit.vision.models`, the ``images`` data module and the two tasks.
Nothing is imported here, so ``import seqkit.vision.data`` stays light.
"""
