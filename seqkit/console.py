"""Where seqkit's log messages go when it runs as the ``seqkit`` command.

Library modules report progress through ``logging.getLogger(__name__)`` and never configure
logging themselves (the program that imports seqkit decides what it shows, as with any
library). The CLI calls :func:`show_logs` once per command: records of the ``seqkit`` loggers
go to stderr as bare lines, so what a command says about its work stays apart from its result
on stdout (generated text, metrics), which a user pipes elsewhere.
"""

from __future__ import annotations

import logging
import sys

LEVELS = {-1: logging.WARNING, 0: logging.INFO, 1: logging.DEBUG}
"""Verbosity (``-q`` = -1, default 0, ``-v`` = 1) to the level shown."""


class _StderrHandler(logging.Handler):
    """Writes each record as one line to the ``sys.stderr`` of the moment.

    Unlike ``logging.StreamHandler``, which keeps the stream it was given, this follows a
    replaced ``sys.stderr`` (pytest's capture, a caller's ``redirect_stderr``) across calls
    of ``main`` in one process.
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


_HANDLER = _StderrHandler()
_HANDLER.setFormatter(logging.Formatter("%(message)s"))


def show_logs(verbosity: int = 0) -> None:
    """Show the ``seqkit`` loggers' records on stderr from the level ``verbosity`` names.

    Idempotent: a second call (another ``main`` in the same process) changes the level and
    adds no second handler.
    """
    level = LEVELS[max(-1, min(1, verbosity))]
    logger = logging.getLogger("seqkit")
    logger.setLevel(level)
    if _HANDLER not in logger.handlers:
        logger.addHandler(_HANDLER)
