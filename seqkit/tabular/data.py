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
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from seqkit.checks import check_choice, check_ranges, count
from seqkit.errors import UserError
from seqkit.recipes import DataSection as BaseDataSection

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
MAX_DAYS = 100_000
"""Most days a split may ask for (bike-sharing data has two years)."""
"""Columns a recipe may regress."""
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
    feature_names: list[str]
    target_mean: float
    target_std: float
    columns: dict[str, np.ndarray]
    """The raw columns, for baselines."""
    parts: dict[str, np.ndarray]
    """Row indices of each part."""


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


def load_splits(data: TabularDataSection) -> TableSplits:
    """Features and standardised targets, split by day: train | val_days | test_days."""
    if not data.path:
        raise UserError("set data.path to the bike-sharing hour.csv file")
    columns = read_table(Path(data.path))
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
    parts = {name: np.flatnonzero(part == name) for name in ("train", "val", "test")}
    train = parts["train"]

    blocks, names = [], []
    for name, values in CATEGORIES.items():
        column = columns[name].astype(int)
        blocks += [(column == value).astype(np.float32) for value in values]
        names += [f"{name}={value}" for value in values]
    for name in FLAGS:
        blocks.append(columns[name].astype(np.float32))
        names.append(name)
    scaled = list(MEASUREMENTS) + (["instant"] if data.row_index_feature else [])
    for name in scaled:
        mean, std = columns[name][train].mean(), columns[name][train].std() or 1.0
        blocks.append(((columns[name] - mean) / std).astype(np.float32))
        names.append(name)
    features = torch.from_numpy(np.stack(blocks, axis=1))  # (N, F)
    target = columns[data.target]
    target_mean, target_std = float(target[train].mean()), float(target[train].std() or 1.0)
    labels = torch.from_numpy(((target - target_mean) / target_std).astype(np.float32))[:, None]

    def subset(rows: np.ndarray) -> TableDataset:
        index = torch.from_numpy(rows)
        return TableDataset(features[index], labels[index])

    return TableSplits(
        train=subset(train),
        val=subset(parts["val"]),
        test=subset(parts["test"]),
        feature_names=names,
        target_mean=target_mean,
        target_std=target_std,
        columns=columns,
        parts=parts,
    )


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
