"""seqkit.gan: a DCGAN trained by the same Trainer as every other model, with two optimizers.

Modules: :mod:`~seqkit.gan.models` (generator, discriminator, config and the ``dcgan`` model
builder), :mod:`~seqkit.gan.data` (the ``gan-images`` data module),
:mod:`~seqkit.gan.task` (the ``gan`` task: adversarial training, the sample-grid callback,
``seqkit generate`` and ``seqkit evaluate``) and :mod:`~seqkit.gan.quality` (download-free
quality numbers from a digits classifier). :mod:`seqkit.parts.registry` names them.
"""
