"""The one exception type for mistakes a user can make.

Anything raised as :class:`UserError` reaches the user as a single line on stderr and exit
code 2 (see :mod:`seqkit.cli`); everything else is a bug in seqkit and keeps its traceback.
"""


class UserError(Exception):
    """A problem the user can fix: a bad path, key, value or input file.

    The message must be one line that names the offending thing and, where it helps, the
    valid choices.
    """


OPTIONAL_EXTRAS = {
    "music21": "music",
    "miditok": "music",
    "symusic": "music",
    "gymnasium": "rl",
    "networkx": "graph",
    "peft": "lora",
}
"""Packages only a sibling family or a feature (LoRA) needs, and the pip extra that installs
them (``pip install 'seqkit[music]'``; ``seqkit[all]`` installs every one)."""


def missing_extra(error: BaseException) -> str | None:
    """The one-line advice for an ImportError of an optional package, else None."""
    if not isinstance(error, ModuleNotFoundError) or not error.name:
        return None
    package = error.name.split(".")[0]
    extra = OPTIONAL_EXTRAS.get(package)
    if extra is None:
        return None
    return f"this needs the optional package {package}: pip install 'seqkit[{extra}]'"
