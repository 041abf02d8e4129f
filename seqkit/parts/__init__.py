"""Parts: what a recipe composes into a training run.

Between a recipe and the Trainer there are three kinds of parts, each with one registry in
:mod:`seqkit.parts.registry`:

- **model builders** (``model.architecture``): the recipe's ``model`` section, validated once,
  turned into a ``PretrainedConfig`` and the model class for the run's task
  (:class:`seqkit.parts.base.ModelBuilder`; each lives at the end of its model file);
- **data modules** (``data.module``): corpus → tokenizer → data sets → collator, with what the
  model builder needs to know (vocabulary size, labels) (:class:`seqkit.parts.base.DataModule`);
- **tasks** (``task``): the Trainer's :class:`seqkit.trainer.tasks.Task` subclasses, which turn a
  batch into a loss and own the one evaluation that both training and ``seqkit evaluate`` run.

:mod:`seqkit.parts.resolve` finds the three parts a recipe names, :mod:`seqkit.parts.compose`
puts them together into a run, :mod:`seqkit.parts.model_folder` writes and reads the model
folders a run makes, and :mod:`seqkit.parts.evaluation` scores one. No part imports another
family's module, so an architecture is added with its model file, a recipe, its tests and one
registry line.
"""
