"""seqkit.tabular: the textbook's first neural network — an MLP regressing hourly bike-sharing
demand from weather and calendar fields — trained by the same Trainer as everything else.

It lives in its own small package rather than in :mod:`seqkit.vision` because it shares nothing
with images (no pixels, convolutions or augmentation): its data are rows of a CSV file, its
features one-hot calendar fields and standardised measurements, its targets counts.

Modules: :mod:`~seqkit.tabular.data` (CSV → features, time-ordered splits, the data module),
:mod:`~seqkit.tabular.models` (the regressor and its model builder) and
:mod:`~seqkit.tabular.tasks` (the regression task, scored against simple baselines).
"""
