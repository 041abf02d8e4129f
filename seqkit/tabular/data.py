"""The UCI Bike Sharing hourly table (Fanaee-T & Gama 2013) as features and targets.

The preparation follows the textbook exercise ("your first neural network"): calendar fields
that are categories, not quantities (season, weather situation, month, hour, weekday), become
one-hot columns; the measurements (temperature, humidity, wind speed) and the target count are
standardised with the *training* rows' mean and standard deviation; the last ``test_days`` days
are the test set and the ``val_days`` before them the validation set. Splitting by time, not at
random, asks the question that matters: how well does the model predict days it has not seen?

``row_index_feature`` adds the ``instant`` column (the row number) as a feature: the textbook's
lesson. Rows are in time order, so on training rows the index carries the trend — and on later
days it takes values the model never saw, and the prediction extrapolates blindly.

What is fitted on the training rows (the measurements' and the target's mean and standard
deviation, and which columns are features) is a :class:`TableFeatures`: the table's
"tokenizer". A run saves it beside the model (``table_features.json``), so a model folder turns
new rows into features exactly as training did, and a resumed run never refits it.
:class:`BikeSharingTable` is the ``bike-sharing`` data module of :mod:`seqkit.parts`.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from seqkit.checks import check_choice, check_ranges, count
from seqkit.errors import UserError
from seqkit.folders import read_json
from seqkit.parts.base import DataModule, Prepared
from seqkit.recipes import DataSection as BaseDataSection
from seqkit.recipes import Recipe

CATEGORIES: dict[str, list[int]] = {
    "season": [1, 2, 3, 4],
    "weathersit": [1, 2, 3, 4],
    "mnth": list(range(1, 13)),
    "hr": list(range(24)),
    "weekday": list(range(7)),
}
"""Categorical columns and every value they may take (fixed, so any subset of rows gives the
same feature columns)."""
FLAGS = ("yr", "holiday")
"""Columns that are already 0/1."""
MEASUREMENTS = ("temp", "hum", "windspeed")
"""Columns standardised with the training rows' statistics."""
TARGETS = ("cnt", "casual", "registered")
"""Columns a recipe may regress."""
MAX_DAYS = 100_000
"""Most days a split may ask for (bike-sharing data has two years)."""
REQUIRED = ("instant", "dteday", "workingday", *CATEGORIES, *FLAGS, *MEASUREMENTS, *TARGETS)
"""Columns read from the CSV (workingday only for the hour-of-day baseline)."""


@dataclass
class TabularDataSection(BaseDataSection):
    """The ``data`` section of a bike-sharing recipe (the text fields of the base are unused)."""

    test_days: int = 21
    """The last this many days are the test set."""
    val_days: int = 60
    """The this many days before the test days are the validation set."""
    target: str = "cnt"
    """Column to predict: cnt (all riders), casual or registered."""
    row_index_feature: bool = False
    """Add the row number (instant) as a feature — the textbook's cautionary example."""

    def __post_init__(self) -> None:
        super().__post_init__()
        # Bounded by the data set's length (two years of days) once it is read.
        check_ranges(
            "data", self, {"test_days": count(1, MAX_DAYS), "val_days": count(0, MAX_DAYS)}
        )
        check_choice("data.target", self.target, TARGETS)


class TableDataset(Dataset):
    """Rows ``{"features": (F,) float, "labels": (1,) float (standardised target)}``."""

    def __init__(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        self.features, self.labels = features, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"features": self.features[index], "labels": self.labels[index]}


@dataclass
class TableSplits:
    """Train/validation/test datasets, the feature names and the target's scaling."""

    train: TableDataset
    val: TableDataset
    test: TableDataset
    features: TableFeatures
    """What was fitted on the training rows."""
    columns: dict[str, np.ndarray]
    """The raw columns, for baselines."""
    parts: dict[str, np.ndarray]
    """Row indices of each part."""

    @property
    def feature_names(self) -> list[str]:
        return self.features.feature_names

    @property
    def target_mean(self) -> float:
        return self.features.target_mean

    @property
    def target_std(self) -> float:
        return self.features.target_std


FEATURES_FILE = "table_features.json"
"""The file a :class:`TableFeatures` is saved in, beside the model."""


@dataclass
class TableFeatures:
    """Rows of the table → the model's features and standardised target, as fitted on the
    training rows: one-hot :data:`CATEGORIES`, :data:`FLAGS` as they are, and the
    :data:`MEASUREMENTS` (with ``instant`` when ``row_index_feature``) standardised."""

    target: str
    """The column the model predicts."""
    row_index_feature: bool
    """Whether the row number (``instant``) is a feature."""
    scaling: dict[str, list[float]]
    """``[mean, std]`` of the training rows for each standardised column, in feature order."""
    target_mean: float
    target_std: float

    @classmethod
    def fit(
        cls, columns: dict[str, np.ndarray], rows: np.ndarray, target: str, row_index: bool
    ) -> TableFeatures:
        """The scaling of the training ``rows`` of ``columns``."""
        scaled = list(MEASUREMENTS) + (["instant"] if row_index else [])
        scaling = {}
        for name in scaled:
            values = columns[name][rows]
            scaling[name] = [float(values.mean()), float(values.std() or 1.0)]
        y = columns[target][rows]
        return cls(target, row_index, scaling, float(y.mean()), float(y.std() or 1.0))

    @property
    def feature_names(self) -> list[str]:
        names = [f"{name}={value}" for name, values in CATEGORIES.items() for value in values]
        return [*names, *FLAGS, *self.scaling]

    def transform(self, columns: dict[str, np.ndarray]) -> torch.Tensor:
        """The features (N, F) of the rows of ``columns``, in :attr:`feature_names` order."""
        blocks = []
        for name, values in CATEGORIES.items():
            column = columns[name].astype(int)
            blocks += [(column == value).astype(np.float32) for value in values]
        blocks += [columns[name].astype(np.float32) for name in FLAGS]
        for name, (mean, std) in self.scaling.items():
            blocks.append(((columns[name] - mean) / std).astype(np.float32))
        return torch.from_numpy(np.stack(blocks, axis=1))

    def standardise(self, target: np.ndarray) -> torch.Tensor:
        """The target (N,) as the model is trained on it: (N, 1), zero mean, unit variance."""
        scaled = (target - self.target_mean) / self.target_std
        return torch.from_numpy(scaled.astype(np.float32))[:, None]

    def save_pretrained(self, folder: str | Path) -> None:
        path = Path(folder) / FEATURES_FILE
        path.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> TableFeatures:
        """The features saved in ``folder``; a missing or damaged file is a UserError."""
        path = Path(folder) / FEATURES_FILE
        fields = read_json(path, "a folder with the table's fitted features")
        try:
            features = cls(**fields)
            if set(features.scaling) - {*MEASUREMENTS, "instant"} or features.target_std <= 0:
                raise ValueError("unknown columns or a scale that is not positive")
            check_choice(f"{path}: target", features.target, TARGETS)
        except (ValueError, TypeError) as error:
            raise UserError(f"{path} is not a table feature file ({error})") from None
        return features


def read_table(path: Path) -> dict[str, np.ndarray]:
    """The CSV's required columns as arrays (``dteday`` as strings), checked."""
    if not path.is_file():
        raise UserError(f"data.path {path} does not exist (the bike-sharing hour.csv)")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise UserError(f"{path} lacks the column(s) {', '.join(missing)}")
        rows = list(reader)
    if not rows:
        raise UserError(f"{path} has a header but no rows")
    columns: dict[str, np.ndarray] = {"dteday": np.array([r["dteday"] for r in rows])}
    for name in REQUIRED:
        if name == "dteday":
            continue
        try:
            columns[name] = np.array([float(r[name]) for r in rows])
        except (TypeError, ValueError):
            line = next(i for i, r in enumerate(rows) if not _is_number(r[name])) + 2
            raise UserError(f"{path}:{line}: column {name} is not a number") from None
    for name, values in CATEGORIES.items():
        bad = sorted(set(columns[name].astype(int).tolist()) - set(values))
        if bad:
            raise UserError(f"{path}: column {name} has unexpected value(s) {bad[:5]}")
    return columns


def _is_number(text: str | None) -> bool:
    try:
        float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True


def split_rows(data: TabularDataSection, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Row indices of the train, val and test parts: the last ``test_days`` days are the test
    set and the ``val_days`` before them the validation set."""
    days = list(dict.fromkeys(columns["dteday"].tolist()))  # in order of appearance
    if len(days) <= data.test_days + data.val_days:
        raise UserError(
            f"{data.path} covers {len(days)} days; test_days + val_days "
            f"({data.test_days} + {data.val_days}) leave none for training"
        )
    test_days = set(days[-data.test_days :])
    val_days = set(days[len(days) - data.test_days - data.val_days : -data.test_days])
    part = np.array(
        [
            "test" if d in test_days else "val" if d in val_days else "train"
            for d in columns["dteday"]
        ]
    )
    return {name: np.flatnonzero(part == name) for name in ("train", "val", "test")}


def read_data(data: TabularDataSection) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The recipe's table (:func:`read_table`) and the rows of each part (:func:`split_rows`)."""
    if not data.path:
        raise UserError("set data.path to the bike-sharing hour.csv file")
    columns = read_table(Path(data.path))
    return columns, split_rows(data, columns)


def load_splits(data: TabularDataSection, features: TableFeatures | None = None) -> TableSplits:
    """Features and standardised targets, split by day: train | val_days | test_days. The
    features are fitted on the training rows unless given (a saved :class:`TableFeatures`)."""
    columns, parts = read_data(data)
    if features is None:
        features = TableFeatures.fit(columns, parts["train"], data.target, data.row_index_feature)
    return make_splits(features, columns, parts)


def make_splits(
    features: TableFeatures, columns: dict[str, np.ndarray], parts: dict[str, np.ndarray]
) -> TableSplits:
    """The rows of each part of ``columns`` as ``features`` turn them into model inputs."""
    inputs = features.transform(columns)  # (N, F)
    labels = features.standardise(columns[features.target])

    def subset(rows: np.ndarray) -> TableDataset:
        index = torch.from_numpy(rows)
        return TableDataset(inputs[index], labels[index])

    return TableSplits(
        train=subset(parts["train"]),
        val=subset(parts["val"]),
        test=subset(parts["test"]),
        features=features,
        columns=columns,
        parts=parts,
    )


def baselines(splits: TableSplits, part: str) -> dict[str, np.ndarray]:
    """Predictions that need no learning, for rows of ``part``: the training mean, and the
    training mean of the same hour on the same kind of day (working day or not)."""
    columns, train, rows = splits.columns, splits.parts["train"], splits.parts[part]
    y = columns[splits.features.target]
    hour_day = columns["hr"].astype(int) * 2 + columns["workingday"].astype(int)
    table = {key: y[train][hour_day[train] == key].mean() for key in np.unique(hour_day[train])}
    overall = y[train].mean()
    return {
        "train_mean": np.full(len(rows), overall),
        "hour_workingday_mean": np.array([table.get(k, overall) for k in hour_day[rows]]),
    }


def write_synthetic_csv(path: Path, days: int = 40, seed: int = 0) -> Path:
    """A stand-in ``hour.csv`` with the real columns and a plausible daily rhythm, for tests
    and for trying the recipe without the real data."""
    import datetime

    rng = np.random.default_rng(seed)
    start = datetime.date(2011, 1, 1)
    header = [
        "instant", "dteday", "season", "yr", "mnth", "hr", "holiday", "weekday", "workingday",
        "weathersit", "temp", "atemp", "hum", "windspeed", "casual", "registered", "cnt",
    ]  # fmt: skip
    rows, instant = [], 0
    for day in range(days):
        date = start + datetime.timedelta(days=day)
        weekday = (date.weekday() + 1) % 7  # the data set counts from Sunday = 0
        working = int(weekday not in (0, 6))
        temp = 0.3 + 0.2 * np.sin(day / 58.0) + 0.05 * rng.standard_normal()
        for hour in range(24):
            instant += 1
            rush = working * (np.exp(-((hour - 8) ** 2) / 2) + np.exp(-((hour - 17.5) ** 2) / 3))
            daytime = np.exp(-((hour - 14) ** 2) / 18)
            weather = int(rng.choice([1, 2, 3], p=[0.7, 0.25, 0.05]))
            level = (40 + 300 * rush + 150 * daytime) * (1.2 - 0.25 * weather) * (0.5 + temp)
            casual = max(0, int(level * 0.2 + rng.normal(0, 5)))
            registered = max(0, int(level * 0.8 + rng.normal(0, 10)))
            rows.append([
                instant, date.isoformat(), (date.month % 12) // 3 + 1, date.year - 2011,
                date.month, hour, 0, weekday, working, weather, round(temp, 2),
                round(temp, 4), round(float(rng.uniform(0.3, 0.9)), 2),
                round(float(rng.uniform(0, 0.4)), 4), casual, registered, casual + registered,
            ])  # fmt: skip
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


# ----------------------------------------------------------------------------- data module


class ScoredRows(TableDataset):
    """The test rows that ``seqkit evaluate`` scores, with the whole split at hand: the task
    also reports the training and validation errors and the baselines' test errors."""

    def __init__(self, splits: TableSplits) -> None:
        super().__init__(splits.test.features, splits.test.labels)
        self.splits = splits


class BikeSharingTable(DataModule):
    """The ``bike-sharing`` data module: ``data.path`` (the UCI hour.csv), its features fitted
    on the training days (:class:`TableFeatures`, the run's "tokenizer"), split by day."""

    Section = TabularDataSection
    load_tokenizer = staticmethod(TableFeatures.from_pretrained)

    def __init__(self, recipe: Recipe):
        super().__init__(recipe)
        self._table: tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None = None
        self._splits: TableSplits | None = None

    def table(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """The columns and the rows of each part, read once."""
        if self._table is None:
            self._table = read_data(self.data)
        return self._table

    def tokenizer(self, init_from: Path | None) -> TableFeatures:
        data = self.data
        if init_from is None:
            columns, parts = self.table()
            return TableFeatures.fit(columns, parts["train"], data.target, data.row_index_feature)
        features = TableFeatures.from_pretrained(init_from)
        if (features.target, features.row_index_feature) != (data.target, data.row_index_feature):
            raise UserError(
                f"model.init_from: {init_from} predicts {features.target} "
                f"(row_index_feature {str(features.row_index_feature).lower()}); set data.target "
                "and data.row_index_feature to the folder's"
            )
        return features

    def splits(self, features: TableFeatures) -> TableSplits:
        """The table as ``features`` turn it into the model's inputs, split by day."""
        if self._splits is None or self._splits.features != features:
            self._splits = make_splits(features, *self.table())
        return self._splits

    def facts(self, tokenizer: TableFeatures) -> dict[str, Any]:
        return {
            "feature_names": tokenizer.feature_names,
            "target_name": tokenizer.target,
            "target_mean": tokenizer.target_mean,
            "target_std": tokenizer.target_std,
        }

    def prepare(self, tokenizer: TableFeatures, window: int, most: int | None) -> Prepared:
        splits = self.splits(tokenizer)
        return Prepared(
            train_data=splits.train,
            eval_data=splits.val if len(splits.val) else None,
            summary={
                "rows (train/val/test)": f"{len(splits.train)}/{len(splits.val)}/"
                f"{len(splits.test)}",
                "features": len(splits.feature_names),
            },
        )

    def evaluation_data(self, tokenizer: TableFeatures, window: int, most: int | None) -> Prepared:
        """The test days, with the rest of the split for the task's other errors."""
        return Prepared(train_data=None, eval_data=ScoredRows(self.splits(tokenizer)))

    def scoring_data(
        self, tokenizer: TableFeatures, window: int, most: int | None, path: Path
    ) -> Prepared:
        raise UserError(
            "--data is not supported for the bike-sharing model; seqkit evaluate scores the "
            "test days of the run's data.path (data.test_days)"
        )

    def vocabulary(self, tokenizer: TableFeatures) -> str:
        return f"none ({len(tokenizer.feature_names)} features)"
