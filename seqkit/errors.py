"""The one exception type for mistakes a user can make.

Anything raised as :class:`UserError` reaches the user as a single line on stderr and exit
code 2 (see :mod:`seqkit.cli`); everything else is a bug in seqkit and keeps its traceback.
"""


class UserError(Exception):
    """A problem the user can fix: a bad path, key, value or input file.

    The message must be one line that names the offending thing and, where it helps, the
    valid choices.
    """
