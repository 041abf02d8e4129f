"""Subcommands of ``seqkit`` beyond train, generate and recipes, one module each.

Each module defines ``register(commands)``, which adds its parser to the ``seqkit`` subparsers and
sets ``run`` to a function ``(args) -> exit code``. ``seqkit.cli.COMMAND_MODULES`` lists them.
"""
