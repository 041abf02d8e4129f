"""Value checks for recipe fields and command options: one home, one message format.

Every check raises :class:`~seqkit.errors.UserError` with one line that names the field (or
option) and the valid range, e.g. ``model.dropout must be in [0, 1), got 1.5`` or
``--num-samples must be in [1, 10000], got 1000000000``. Values shown in a message are cut to
:data:`SHOW_LIMIT` characters, so a pasted megabyte never floods the terminal.

The section dataclasses call these from ``__post_init__``, so a config built in Python is held
to the same rules as one read from a recipe. NaN and infinities are refused wherever a number
is checked: every comparison with NaN is false, so an unchecked NaN slips past ``x < 0`` tests
and only fails (or silently poisons the weights) much later.
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from seqkit.errors import UserError

SHOW_LIMIT = 80
"""Longest value, in characters, that an error message repeats."""

MAX_SEED = 2**32 - 1
"""Largest seed: numpy's ``RandomState`` (which ``set_seed`` also seeds) takes 32 bits."""
MAX_STEPS = 10**9
"""Largest step count (optimizer steps, warm-up, decay): beyond it a run would never end."""
MAX_BATCH = 2**20
"""Largest batch size: a batch that size of the smallest example already fills a machine."""
MAX_WIDTH = 2**16
"""Largest model width (embedding, hidden, feed-forward size)."""
MAX_DEPTH = 1024
"""Largest number of layers or attention heads."""
MAX_POSITIONS = 2**20
"""Largest context length or sequence length in tokens."""
MAX_VOCAB = 2**20
"""Largest tokenizer vocabulary a recipe may ask for."""
MAX_NEW_TOKENS = 100_000
"""Most tokens one generation may ask for (the whole sequence is kept in memory)."""
MAX_BEAM = 128
"""Widest beam search (each beam is a whole hypothesis, scored over the whole vocabulary)."""
MAX_LENGTH_PENALTY = 10.0
"""Largest length-penalty exponent, either sign (0 = raw log-probability; 1 = per token)."""
MAX_EPISODES = 100_000
"""Most episodes of an environment one run or command may play (each is played in full)."""
MAX_SAMPLES = 10_000
"""Most samples (images, pieces, sentences) one command or run may ask for."""


def show(value: Any, limit: int = SHOW_LIMIT) -> str:
    """``value`` as the user wrote it (strings quoted, YAML's null/true/false), at most
    ``limit`` characters: a longer one is cut and ends in ``...``."""
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, dict):
        text = "a mapping"
    elif isinstance(value, int) and abs(value) >= 10**limit:
        text = f"an integer of {len(str(abs(value)))} digits"  # str() of it alone is slow
    else:
        text = repr(value)
    return cut(text, limit)


def cut(text: str, limit: int = SHOW_LIMIT) -> str:
    """``text`` if it has at most ``limit`` characters, else its start ending in ``...``."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _number(value: float) -> str:
    """A bound as written in a message: ``1`` for 1.0, ``1e-08`` stays as Python writes it."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return str(value)


def check_range(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
) -> None:
    """Refuse ``value`` unless it is a finite number within the bounds (closed unless ``*_open``).

    ``integer`` also refuses floats. ``name`` is the field or option, e.g. ``trainer.lr``.
    """
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if integer and not (isinstance(value, int) and not isinstance(value, bool)):
        raise UserError(f"{name} must be an integer, got {show(value)}")
    if not is_number:
        raise UserError(f"{name} must be a number, got {show(value)}")
    finite = not isinstance(value, float) or math.isfinite(value)
    above = low is None or (value > low if low_open else value >= low)
    below = high is None or (value < high if high_open else value <= high)
    if finite and above and below:
        return
    if integer:  # a count: say which side it missed ("at least 1", "at most 10000")
        if not above:
            words = f"> {low}" if low_open else f"at least {low}"
        else:
            words = f"< {high}" if high_open else f"at most {high}"
    elif low is not None and high is not None:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        words = f"in {left}{_number(low)}, {_number(high)}{right}"
    elif low is not None:
        words = f"> {_number(low)}" if low_open else _at_least(value, low)
    elif high is not None:
        words = f"< {_number(high)}" if high_open else f"at most {_number(high)}"
    else:
        words = ""
    if not finite:  # NaN compares false with everything; say "finite" as well as the range
        words = f"a finite number {words}".rstrip()
    raise UserError(f"{name} must be {words}, got {show(value)}")


def _at_least(value: Any, low: float) -> str:
    # "at least 1" reads well for counts; ">= 0" for a real number such as a temperature.
    return f"at least {_number(low)}" if isinstance(value, int) else f">= {_number(low)}"


def check_optional_range(name: str, value: Any, *args: Any, **kwargs: Any) -> None:
    """:func:`check_range`, with None (the field's "not set") accepted."""
    if value is not None:
        check_range(name, value, *args, **kwargs)


def check_path(name: str, path: str | Path) -> None:
    """Refuse a path that cannot name a file to read: one with a NUL character, or one that
    exists but is neither a regular file nor a folder (``/dev/zero``, a FIFO, a socket), which
    a reader would wait on or read forever. A missing path passes: its reader says so."""
    if "\0" in str(path):
        raise UserError(f"{name} contains a NUL character, which no file name can: {show(path)}")
    try:
        mode = os.stat(Path(path).expanduser()).st_mode
    except (OSError, RuntimeError):  # missing, unreadable or too long: the reader reports it
        return
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return
    if stat.S_ISFIFO(mode):
        kind = "a FIFO (named pipe)"
    elif stat.S_ISSOCK(mode):
        kind = "a socket"
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        kind = "a device"
    else:
        kind = "a special file"
    raise UserError(
        f"{name}: {cut(str(path))} is {kind}, not a regular file or folder; refusing to read it"
    )


def check_choice(name: str, value: Any, choices: Iterable[str]) -> None:
    """Refuse ``value`` unless it is one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise UserError(f"{name} must be one of {', '.join(choices)}, got {show(value)}")


def check_ranges(where: str, obj: Any, rules: dict[str, dict[str, Any]]) -> None:
    """:func:`check_optional_range` on each attribute of ``obj`` named in ``rules``, with the
    keyword arguments given there; ``where`` prefixes the names (``model`` ->
    ``model.n_layer``). The fields' declared order is kept, so the first bad one is reported."""
    for field_name, bounds in rules.items():
        check_optional_range(f"{where}.{field_name}", getattr(obj, field_name), **bounds)


def count(low: int = 1, high: int | None = None) -> dict[str, Any]:
    """Rule for :func:`check_ranges`: an integer in ``[low, high]``."""
    return {"low": low, "high": high, "integer": True}


def probability(*, high_open: bool = True, low_open: bool = False) -> dict[str, Any]:
    """Rule for :func:`check_ranges`: a number in ``[0, 1)`` (dropout and the like)."""
    return {"low": 0, "high": 1, "low_open": low_open, "high_open": high_open}


def positive(high: float | None = None) -> dict[str, Any]:
    """Rule for :func:`check_ranges`: a finite number > 0 (learning rates, eps)."""
    return {"low": 0, "high": high, "low_open": True}


def non_negative(high: float | None = None) -> dict[str, Any]:
    """Rule for :func:`check_ranges`: a finite number >= 0 (weight decay, min_lr)."""
    return {"low": 0, "high": high}
