"""Metrics on disk: ``metrics.jsonl`` (one JSON object per logged step) and the loss plot.

``metrics.jsonl`` is the run's own record, written whatever trackers (TensorBoard, wandb) are
enabled: plain text, appended one flushed line at a time, so a crash loses nothing already
logged and any tool can read it. Each row is ``{"step": N, "time": seconds, "name": value...}``.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

TRAIN_LOSS = "train/loss"
EVAL_LOSS = "eval/loss"


class MetricsLogger:
    """Append metric rows to ``path`` (``metrics.jsonl``).

    Args:
        path: the JSON-lines file.
        resume_step: ``None`` for a fresh run, which starts a new file. Otherwise the step of
            the checkpoint being resumed: rows logged after it (by the run that crashed after
            its last checkpoint) are dropped before appending, so no step appears twice, and
            ``time`` continues from the last row kept.
    """

    def __init__(self, path: Path, resume_step: int | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        time_offset = 0.0
        if resume_step is None:
            mode = "w"
        else:
            kept = [row for row in _read_rows(self.path) if row["step"] <= resume_step]
            _atomic_write_text(self.path, "".join(_format_row(row) for row in kept))
            time_offset = max((float(row.get("time", 0.0)) for row in kept), default=0.0)
            mode = "a"
        self._file = self.path.open(mode, encoding="utf-8")
        self._start = time.perf_counter() - time_offset

    def log(self, step: int, metrics: Mapping[str, Any]) -> None:
        """Write one row: ``step``, ``time`` and ``metrics`` as floats (tensors via ``.item()``)."""
        row: dict[str, Any] = {"step": int(step), "time": time.perf_counter() - self._start}
        for name, value in metrics.items():
            if name in ("step", "time"):
                raise ValueError(f"metric name {name!r} is reserved in metrics.jsonl")
            row[name] = float(value.item() if isinstance(value, torch.Tensor) else value)
        self._file.write(_format_row(row))
        # Flush every row: a crash must not lose what was logged (the OS has it after this).
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> MetricsLogger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """All rows of a ``metrics.jsonl`` file, in order ([] if it does not exist)."""
    return _read_rows(Path(path))


def _format_row(row: Mapping[str, Any]) -> str:
    # NaN/Infinity are kept (Python's json writes and reads them): a diverged loss is worth
    # seeing in the log rather than silently dropped.
    return json.dumps(row, separators=(",", ":")) + "\n"


def _read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            # A process killed mid-write can leave a partial last line; anything else is damage.
            if number == len(lines):
                break
            raise ValueError(f"{path}:{number}: not a JSON object") from None
    return rows


def _atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that readers see the old or the new file, never half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def plot_loss(metrics_path: Path, out_png: Path, title: str | None = None) -> Path | None:
    """Plot train and eval loss against step from ``metrics_path`` into the PNG ``out_png``.

    Plots ``train/loss`` and ``eval/loss``; a run that logs neither (a GAN's generator and
    discriminator losses) gets every metric whose name ends in ``loss``. Returns ``out_png``,
    or ``None`` (and writes nothing) when there is no loss to plot. The file is replaced
    atomically, so a crash never leaves a truncated PNG.
    """
    # Imported here: matplotlib takes ~0.5 s to import and most commands never plot. The
    # object-oriented API with an explicit Agg canvas needs no display and leaves pyplot's
    # global state (and the user's chosen backend) alone.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = read_metrics(Path(metrics_path))
    names = [name for name in (TRAIN_LOSS, EVAL_LOSS) if any(name in row for row in rows)]
    if not names:
        found = {name for row in rows for name in row if name.endswith("loss")}
        names = sorted(found)
    if not names:
        return None

    figure = Figure(figsize=(7, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for name in names:
        points = [
            (row["step"], row[name])
            for row in rows
            if name in row and row[name] is not None and math.isfinite(row[name])
        ]
        steps = [step for step, _ in points]
        values = [value for _, value in points]
        # Evaluations are sparse: markers make single points visible.
        marker = "o" if name.startswith("eval/") else None
        axes.plot(steps, values, label=name, marker=marker, markersize=4, linewidth=1.5)
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.set_title(title or "loss")
    axes.grid(True, alpha=0.3)
    axes.legend()
    figure.tight_layout()

    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_png.parent, prefix=f".{out_png.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            figure.savefig(file, format="png")
        os.replace(tmp, out_png)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out_png
