"""seqkit.gan: a DCGAN trained by the same Trainer as every other model, with two optimizers.

Modules: :mod:`~seqkit.gan.models` (generator, discriminator, config),
:mod:`~seqkit.gan.task` (the adversarial training task and the sample-grid callback),
:mod:`~seqkit.gan.quality` (download-free quality numbers from a digits classifier) and
:mod:`~seqkit.gan.family` (recipes → jobs, ``seqkit generate`` and ``seqkit evaluate``).
"""
