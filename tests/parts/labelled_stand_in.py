"""Stand-in data for the recipes whose data lives in ``../shared/data`` (SST-2, ChnSentiCorp).

Tests never read the real data (on a user's machine that folder does not exist): for each such
file a recipe names, a tiny labelled file of the same format (suffix, header, columns) is
written, and ``--set`` overrides point the recipe at it.
"""

from __future__ import annotations

import csv
from pathlib import Path

import yaml

SHARED_PREFIX = "../shared/"
ENGLISH = (("great fun", "lovely warm", "fine good"), ("awful dull", "bad boring", "poor weak"))
CHINESE = (("很好，喜欢", "不错，满意", "推荐，干净"), ("很差，失望", "太贵，吵闹", "脏，不推荐"))


def write_labelled(
    path: Path, text_column: str, label_column: str, rows: int, chinese: bool = False
) -> None:
    """``rows`` labelled texts (1 positive, 0 negative, alternating) in the format of
    ``path``'s suffix: CSV, or tab-separated with a header row."""
    positive, negative = CHINESE if chinese else ENGLISH
    records = [
        (str(1 - i % 2), f"{(positive if i % 2 == 0 else negative)[i % 3]} {i}")
        for i in range(rows)
    ]
    with path.open("w", encoding="utf-8", newline="") as handle:
        if path.suffix == ".csv":
            writer = csv.writer(handle)
            writer.writerow([label_column, text_column])
            writer.writerows(records)
        else:
            handle.write(f"{label_column}\t{text_column}\n")
            handle.writelines(f"{label}\t{text}\n" for label, text in records)


def stand_in_overrides(recipe: Path, folder: Path) -> list[str]:
    """``--set`` arguments that replace every ``../shared/`` file of ``recipe``'s data section
    by a stand-in written under ``folder`` (none for a recipe that needs no shared data)."""
    data = yaml.safe_load(recipe.read_text(encoding="utf-8")).get("data") or {}
    overrides = []
    for key, rows in (("path", 40), ("val_path", 12)):
        value = data.get(key)
        if not isinstance(value, str) or not value.startswith(SHARED_PREFIX):
            continue
        target = folder / f"stand-in-{key}{Path(value).suffix}"
        write_labelled(
            target,
            data.get("text_column", "text"),
            data.get("label_column", "label"),
            rows,
            chinese="chnsenticorp" in value,
        )
        overrides += ["--set", f"data.{key}={target}"]
    return overrides
