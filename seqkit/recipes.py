"""Recipes: YAML files validated into typed configs, with ``--set a.b=c`` overrides.

Modelled on torchtune's recipe configs: a recipe is data, one schema serves every family, and
the resolved recipe (defaults filled in, overrides applied) is saved with each run. Top-level
sections::

    description  one line, shown by `seqkit recipes`
    task         the family, e.g. gpt
    model        validated later by the family's own dataclass (kept a mapping here)
    tokenizer    TokenizerSection
    data         DataSection
    trainer      seqkit.trainer.config.TrainerConfig
    sample       SampleSection (what the run prints after training)

:func:`parse_section` is the generic validator: a dataclass with a docstring under each field
is the schema, and every mistake becomes a one-line :class:`~seqkit.errors.UserError` that
names the key (``trainer.max_steps must be an integer, got 'abc'``).
"""

from __future__ import annotations

import copy
import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin

import yaml

from seqkit.checks import (
    MAX_NEW_TOKENS,
    MAX_POSITIONS,
    MAX_VOCAB,
    check_choice,
    check_optional_range,
    check_path,
    check_range,
    cut,
    show,
)
from seqkit.errors import UserError
from seqkit.trainer.config import TrainerConfig

_INSTALLED_RECIPES = Path(__file__).resolve().parent / "_recipes"
RECIPES_DIR = (
    _INSTALLED_RECIPES
    if _INSTALLED_RECIPES.is_dir()
    else Path(__file__).resolve().parent.parent / "recipes"
)
"""The recipes that ship with seqkit: ``seqkit/_recipes`` in an installed wheel (setup.py copies
them there), else the repository's ``recipes/`` (an editable install or a checkout)."""

TOKENIZER_KINDS = ("char", "bpe")
"""Values of ``tokenizer.kind``."""

MAX_YAML_VALUES = 100_000
"""Most values (mappings, lists and scalars, each alias counted as what it stands for) that a
recipe or an override may hold: a real recipe holds a few hundred; aliases of aliases
("billion laughs") could otherwise stand for more than memory or time allow."""

SECTIONS = ("description", "task", "model", "tokenizer", "data", "trainer", "sample")
"""Top-level keys of a recipe, in the order a saved recipe writes them."""


# ---------------------------------------------------------------------------- schema

DataSectionFor = typing.Callable[[str, typing.Any], type]
"""``data_section_for(task, data)``: the dataclass that validates a recipe's ``data`` section."""


@dataclass
class TokenizerSection:
    """The ``tokenizer`` section: which tokenizer turns the corpus into ids."""

    kind: str = "char"
    """char (one token per character) or bpe (byte-pair encoding)."""
    path: str | None = None
    """Load this saved tokenizer folder instead of training one on the corpus."""
    vocab_size: int | None = None
    """Vocabulary size for tokenizers that learn one (bpe); char uses the corpus's characters."""

    def __post_init__(self) -> None:
        check_choice("tokenizer.kind", self.kind, TOKENIZER_KINDS)
        if self.path is not None:
            check_path("tokenizer.path", self.path)
        check_optional_range("tokenizer.vocab_size", self.vocab_size, 1, MAX_VOCAB, integer=True)


@dataclass
class DataSection:
    """The ``data`` section: the corpus and how it is cut into examples."""

    module: str | None = None
    """The data module that reads it (text...); default: the one the task names."""
    path: str | None = None
    """A local text file, a folder whose *.txt files are read in sorted order, a glob, or
    .json, .jsonl, .csv or .parquet rows (a file, a folder or a glob of them) whose text_column
    is joined by newlines. Wins over hub and embedded, so ``--set data.path=FILE`` retargets
    any recipe."""
    hub: str | None = None
    """A Hub data set name (e.g. karpathy/tiny_shakespeare); used when path is not set."""
    hub_config: str | None = None
    """The Hub data set's config (subset), e.g. wikitext-103-raw-v1 for wikitext."""
    hub_split: str = "train"
    """Split of the Hub data set to read."""
    hub_revision: str | None = None
    """A branch, tag or commit of the Hub data set (default: the newest)."""
    hub_data_files: list[str] | None = None
    """Which files of the Hub repository to read (paths or patterns; default: its own layout)."""
    text_column: str = "text"
    """Column of the Hub data set or of the JSON/CSV/Parquet file that holds the text (rows
    are joined by newlines)."""
    embedded: str | None = None
    """A corpus that ships with seqkit's dependencies (pydoc-topics); used when neither path
    nor hub is set."""
    val_fraction: float = 0.1
    """Fraction of the token stream, taken from its end, held out for validation (0 = none)."""
    block_size: int | None = None
    """Tokens per training example; default: the model's context length."""
    stride: int = 1
    """Distance between the starts of consecutive training windows (1 = every window;
    block_size = non-overlapping blocks)."""

    def __post_init__(self) -> None:
        if self.path is not None:
            check_path("data.path", self.path)
        check_range("data.val_fraction", self.val_fraction, 0, 1, high_open=True)
        check_optional_range("data.block_size", self.block_size, 1, MAX_POSITIONS, integer=True)
        check_range("data.stride", self.stride, 1, MAX_POSITIONS, integer=True)

    def check_encoding_settings(self) -> None:
        """Check the fields of a module that reads a corpus once into seqkit's cache, where it
        has them: ``cache_dir`` (a path), ``num_proc`` (1 to ``MAX_WORKERS`` processes) and
        ``tokenizer_sample_chars`` (at least 1 when set). Each such module declares the fields
        itself, since what they cache and sample differs."""
        from seqkit.trainer.config import MAX_WORKERS

        if getattr(self, "cache_dir", None) is not None:
            check_path("data.cache_dir", self.cache_dir)
        if hasattr(self, "num_proc"):
            check_range("data.num_proc", self.num_proc, 1, MAX_WORKERS, integer=True)
        if hasattr(self, "tokenizer_sample_chars"):
            check_optional_range(
                "data.tokenizer_sample_chars", self.tokenizer_sample_chars, 1, integer=True
            )


@dataclass
class SampleSection:
    """The ``sample`` section: the text generated after training, to eyeball the model."""

    prompt: str = "\n"
    """Text the sample continues."""
    max_new_tokens: int = 200
    """Tokens to generate."""
    temperature: float = 0.8
    """Softmax temperature; 0 = greedy."""
    top_k: int | None = None
    """Sample only from the k most likely tokens (null = all)."""
    top_p: float | None = None
    """Sample only from the smallest set of tokens whose probability reaches p (null = all)."""

    def __post_init__(self) -> None:
        check_sampling("sample.", self.max_new_tokens, self.temperature, self.top_k, self.top_p)


def check_sampling(
    prefix: str,
    max_new_tokens: int | None,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
) -> None:
    """The sampling settings shared by ``sample`` and ``seqkit generate``; ``prefix`` names
    them (``sample.`` for recipe fields, ``--`` for options, whose names use dashes)."""

    def name(field: str) -> str:
        return prefix + (field.replace("_", "-") if prefix == "--" else field)

    check_optional_range(name("max_new_tokens"), max_new_tokens, 1, MAX_NEW_TOKENS, integer=True)
    check_range(name("temperature"), temperature, 0)
    check_optional_range(name("top_k"), top_k, 1, MAX_VOCAB, integer=True)
    check_optional_range(name("top_p"), top_p, 0, 1, low_open=True)


@dataclass
class Recipe:
    """A whole recipe, validated; ``model`` stays a mapping until the family parses it."""

    task: str
    """The family that trains it (gpt, ...)."""
    description: str = ""
    """One line shown by `seqkit recipes`."""
    model: dict[str, Any] = field(default_factory=dict)
    """Model settings, validated by the family's own ``ModelSection``."""
    tokenizer: TokenizerSection = field(default_factory=TokenizerSection)
    """See :class:`TokenizerSection`."""
    data: DataSection = field(default_factory=DataSection)
    """See :class:`DataSection`."""
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    """See :class:`seqkit.trainer.config.TrainerConfig`."""
    sample: SampleSection = field(default_factory=SampleSection)
    """See :class:`SampleSection`."""
    source: Path | None = field(default=None, compare=False)
    """The file it was loaded from (not part of the recipe, never written back)."""


# ---------------------------------------------------------------------------- YAML dialect


# Recipes are read with the YAML 1.2 core schema instead of PyYAML's YAML 1.1 rules, which
# misread exactly the values recipes hold: in 1.1, `3e-4` is a *string* (a float needs a dot),
# `no`/`off`/`yes` are booleans (so `--set trainer.mixed_precision=no` would fail), `1:30` is
# the int 90 and `010` is 8. Here plain scalars are null, true/false, decimal or hex integers,
# or floats; anything else is a string.
_INT = r"^(?:[-+]?(?:0|[1-9][0-9_]*)|0x[0-9a-fA-F_]+)$"
_DOTTED = r"(?:[0-9][0-9_]*\.[0-9_]*|\.[0-9][0-9_]*)"
_FLOAT = (
    rf"^(?:[-+]?(?:{_DOTTED}(?:[eE][-+]?[0-9]+)?|[0-9][0-9_]*[eE][-+]?[0-9]+)"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_CORE_SCHEMA = [
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    ("tag:yaml.org,2002:int", _INT, list("-+0123456789")),
    ("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789.")),
    ("tag:yaml.org,2002:merge", r"^(?:<<)$", ["<"]),  # keep `<<: *defaults` working
]


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema scalars, an error for duplicate keys, and a budget
    of :data:`MAX_YAML_VALUES` values with every alias expanded."""

    yaml_implicit_resolvers: typing.ClassVar[dict] = {}

    def get_single_node(self) -> yaml.Node | None:
        node = super().get_single_node()
        if node is not None:
            _check_expanded_size(node)
        return node

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        # PyYAML keeps the last of two equal keys silently; in a recipe that hides a typo.
        seen: set = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *defaults` may be overridden by the keys after it
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _check_expanded_size(root: yaml.Node) -> None:
    """Refuse a document whose aliases expand past :data:`MAX_YAML_VALUES` values, or refer to
    themselves: both are cheap to parse and endless to walk.

    Each node's expanded size is computed once (aliases share node objects), so the check is
    linear in the text, however large the expansion would be.
    """
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in in_progress:
            raise yaml.composer.ComposerError(
                None, None, "an alias refers to the value that contains it", node.start_mark
            )
        in_progress.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        in_progress.discard(key)
        if total > MAX_YAML_VALUES:
            raise yaml.composer.ComposerError(
                None,
                None,
                f"aliases expand to more than {MAX_YAML_VALUES} values; write the values out",
                node.start_mark,
            )
        sizes[key] = total
        return total

    size(root)


class _Dumper(yaml.SafeDumper):
    """SafeDumper that also quotes strings the core schema reads as something else.

    It keeps the YAML 1.1 rules too, so a saved recipe quotes `'no'` and `'1e5'` and reads the
    same in seqkit and in any other YAML reader.
    """


for _tag, _pattern, _first in _CORE_SCHEMA:
    _Loader.add_implicit_resolver(_tag, re.compile(_pattern), _first)
_Dumper.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(_FLOAT), list("-+0123456789."))


def _yaml_error(error: yaml.YAMLError, where: str) -> UserError:
    """A one-line message with the file, line and column of a YAML error."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    if mark is None:
        return UserError(f"{where}: invalid YAML: {problem}")
    return UserError(f"{where}:{mark.line + 1}:{mark.column + 1}: invalid YAML: {problem}")


# ---------------------------------------------------------------------------- validation

T = TypeVar("T")


def parse_section(cls: type[T], mapping: Any, where: str) -> T:
    """Validate ``mapping`` (from YAML) into dataclass ``cls``; ``where`` names it in errors.

    Keys must be fields of ``cls``; values are checked against the field annotations (int,
    float, bool, str, ``X | None``, ``list[X]``, ``tuple[X, Y]``, ``dict``, ``Path``, nested
    dataclasses) and converted where that is lossless (an int for a float, a list for a tuple).
    Missing keys take the dataclass defaults.
    """
    if mapping is None:  # `trainer:` with nothing under it
        mapping = {}
    if not isinstance(mapping, dict):
        raise UserError(f"'{where}' must be a mapping of keys to values, got {_show(mapping)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    for key in mapping:
        if key not in fields:
            raise UserError(
                f"unknown key '{where}.{cut(str(key), 40)}'; "
                f"valid keys in '{where}': {', '.join(sorted(fields))}"
            )
    hints = typing.get_type_hints(cls)  # resolves annotations written as strings
    values = {}
    for name, spec in fields.items():
        if name in mapping:
            values[name] = _coerce(mapping[name], hints[name], f"{where}.{name}")
        elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            raise UserError(f"missing key '{where}.{name}'")
    return cls(**values)


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """``value`` checked against (and converted to) ``annotation``; UserError if it is not."""
    origin, args = get_origin(annotation), get_args(annotation)
    if annotation is Any:
        return value
    if origin is Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        for member in args:
            if member is type(None):
                continue
            if dataclasses.is_dataclass(member) and isinstance(value, dict):
                return parse_section(member, value, where)  # its own error names the key
            try:
                return _coerce(value, member, where)
            except UserError:
                continue
        raise _mismatch(value, annotation, where)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise _mismatch(value, annotation, where)
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():  # 1e3 for max_steps
            return int(value)  # is_integer() is False for nan and inf
        raise _mismatch(value, annotation, where)
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                # YAML's .nan and .inf pass here; each section's range check refuses them.
                return float(value)
            except OverflowError:  # an int too large for a float
                raise _mismatch(value, annotation, where) from None
        raise _mismatch(value, annotation, where)
    if annotation is str:
        if isinstance(value, str):
            return value
        # `--set sample.prompt=1984` arrives as an int; the user meant the text.
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise _mismatch(value, annotation, where)
    if annotation is Path:
        if isinstance(value, str):
            return Path(value)
        raise _mismatch(value, annotation, where)
    if origin is list:
        (item,) = args or (Any,)
        if not isinstance(value, (list, tuple)):
            if isinstance(value, (dict, type(None))):
                raise _mismatch(value, annotation, where)
            value = [value]  # `--set trainer.report_to=tensorboard`
        return [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise _mismatch(value, annotation, where)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise _mismatch(value, annotation, where)
        return tuple(
            _coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True))
        )
    if annotation is dict or origin is dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise _mismatch(value, annotation, where)
        return dict(value)
    if dataclasses.is_dataclass(annotation):
        return parse_section(annotation, value, where)
    raise TypeError(f"{where}: parse_section does not support the annotation {annotation!r}")


def _describe(annotation: Any) -> str:
    """``annotation`` in words, for error messages."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Union or origin is types.UnionType:
        words = [_describe(a) for a in args if a is not type(None)]
        if type(None) in args:
            words.append("null")
        return " or ".join(words)
    simple = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if annotation in simple:
        return simple[annotation]
    if annotation is Path:
        return "a path"
    if origin is list:
        return f"a list of {_plural(args[0]) if args else 'values'}"
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_plural(args[0])}"
        if len(set(args)) == 1:
            return f"a list of {len(args)} {_plural(args[0])}"
        return f"a list of {len(args)} values ({', '.join(_describe(a) for a in args)})"
    if annotation is dict or origin is dict or dataclasses.is_dataclass(annotation):
        return "a mapping"
    return str(annotation)


def _plural(annotation: Any) -> str:
    names = {bool: "booleans", int: "integers", float: "numbers", str: "strings"}
    return names.get(annotation, "values")


_show = show  # a value as the user wrote it, cut to a line (one home: seqkit.checks)


def _mismatch(value: Any, annotation: Any, where: str) -> UserError:
    return UserError(f"{where} must be {_describe(annotation)}, got {_show(value)}")


# ---------------------------------------------------------------------------- overrides


def apply_overrides(raw: dict, overrides: typing.Iterable[str]) -> dict:
    """A copy of ``raw`` with each ``a.b.c=value`` override set.

    Values are YAML (``3e-4`` is a float, ``null`` is None, ``[0.9, 0.95]`` a list; quote to
    keep spaces: ``'sample.prompt=" To be"'``). An empty value is the empty string. A key
    the schema does not know is set anyway, so validation reports it exactly like a typo in
    the file.
    """
    result = copy.deepcopy(raw)
    for override in overrides:
        key, sep, text = override.partition("=")
        key = key.strip()
        parts = key.split(".")
        if not sep or not key or any(not part for part in parts):
            raise UserError(
                f"--set {override!r}: expected KEY=VALUE with a dotted key, e.g. trainer.lr=3e-4"
            )
        value = _parse_override_value(text)
        node = result
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:  # a missing or empty (`sample:`) section
                child = node[part] = {}
            if not isinstance(child, dict):
                prefix = ".".join(parts[: depth + 1])
                raise UserError(f"--set {key}: '{prefix}' is a value, not a section")
            node = child
        node[parts[-1]] = value
    return result


def _parse_override_value(text: str) -> Any:
    if not text:
        return ""
    try:
        value = yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader: no objects
    except (yaml.YAMLError, ValueError, RecursionError):
        # Not YAML (e.g. `[oops`), an integer of more digits than Python converts, or lists
        # nested past the parser's depth: the user meant the literal text.
        return text
    # `ROMEO:` or `a: b` parse as mappings; an override sets one value, so keep the text.
    return text if isinstance(value, dict) else value


# ---------------------------------------------------------------------------- load / save


def load_recipe(
    path: str | Path,
    overrides: typing.Iterable[str] = (),
    data_section_for: DataSectionFor | None = None,
    expand: typing.Callable[[dict], dict] | None = None,
) -> Recipe:
    """Read, override and validate a recipe file.

    ``data_section_for(task, data)`` names the dataclass that validates the ``data`` section
    (``data`` is the section as written), for data that needs fields of its own (source and
    target languages, an environment); without it, :class:`DataSection`. ``expand`` rewrites
    the recipe mapping before it is validated (a shorthand task written out). Recipes of
    registered parts are read with :func:`seqkit.parts.resolve.load_recipe`, which passes both.
    """
    path = Path(path)
    return recipe_from_dict(
        apply_overrides(_read_mapping(path), overrides),
        source=path,
        data_section_for=data_section_for,
        expand=expand,
    )


def _read_mapping(path: Path) -> dict:
    """The recipe file ``path`` read as YAML: a mapping, or a one-line UserError saying why not."""
    if path.is_dir():
        raise UserError(f"recipe {path} is a directory, not a YAML file")
    if not path.is_file():
        raise UserError(f"recipe {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"cannot read recipe {path}: {error}") from None
    try:
        raw = yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader: no objects
    except yaml.YAMLError as error:
        raise _yaml_error(error, str(path)) from None
    except ValueError as error:  # int() of a number with more digits than Python allows
        raise UserError(f"{path}: invalid YAML: {show(str(error))}") from None
    except RecursionError:
        raise UserError(f"{path}: invalid YAML: values nested too deeply") from None
    if raw is None:
        raise UserError(f"recipe {path} is empty; it needs at least a 'task'")
    if not isinstance(raw, dict):
        raise UserError(
            f"recipe {path} must be a mapping of sections ({', '.join(SECTIONS)}), "
            f"got {type(raw).__name__}"
        )
    return raw


def recipe_from_dict(
    raw: dict,
    source: Path | None = None,
    data_section_for: DataSectionFor | None = None,
    expand: typing.Callable[[dict], dict] | None = None,
) -> Recipe:
    """Validate a recipe mapping (as read from YAML) into a :class:`Recipe`."""
    where = f" in {source}" if source else ""
    if expand is not None and isinstance(raw.get("task"), str):
        raw = expand(raw)
    for key in raw:
        if key not in SECTIONS:
            raise UserError(
                f"unknown section '{cut(str(key), 40)}'; valid sections: {', '.join(SECTIONS)}"
            )
    task = raw.get("task")
    if task is None:
        raise UserError(f"recipe{where} has no 'task' (the model family, e.g. task: gpt)")
    if not isinstance(task, str) or not task:
        raise UserError(f"task must be a family name such as gpt, got {_show(task)}")
    description = raw.get("description") or ""
    if not isinstance(description, str):
        raise UserError(f"description must be a string, got {_show(description)}")
    model = raw.get("model") or {}
    if not isinstance(model, dict):
        raise UserError(f"'model' must be a mapping of keys to values, got {_show(model)}")
    return Recipe(
        task=task,
        description=description,
        model=copy.deepcopy(model),
        tokenizer=parse_section(TokenizerSection, raw.get("tokenizer"), "tokenizer"),
        data=parse_section(
            data_section_for(task, raw.get("data")) if data_section_for else DataSection,
            raw.get("data"),
            "data",
        ),
        trainer=parse_section(TrainerConfig, raw.get("trainer"), "trainer"),
        sample=parse_section(SampleSection, raw.get("sample"), "sample"),
        source=source,
    )


def recipe_to_dict(recipe: Recipe) -> dict[str, Any]:
    """The resolved recipe as plain YAML-ready data (tuples become lists, no ``source``)."""
    return {
        "description": recipe.description,
        "task": recipe.task,
        "model": _plain(recipe.model),
        "tokenizer": _plain(dataclasses.asdict(recipe.tokenizer)),
        "data": _plain(dataclasses.asdict(recipe.data)),
        "trainer": _plain(dataclasses.asdict(recipe.trainer)),
        "sample": _plain(dataclasses.asdict(recipe.sample)),
    }


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def save_recipe(recipe: Recipe, path: str | Path) -> None:
    """Write the resolved recipe as YAML that :func:`load_recipe` reads back equal."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.dump(
        recipe_to_dict(recipe),
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )
    header = "# Resolved recipe: every default filled in, every --set override applied.\n"
    path.write_text(header + text, encoding="utf-8")


# ---------------------------------------------------------------------------- discovery


def list_recipes(
    root: Path = RECIPES_DIR,
    load: typing.Callable[[Path], Recipe] | None = None,
    validate: bool = True,
) -> list[tuple[str, str]]:
    """``(path relative to root, description)`` for every ``*.yaml`` under ``root``, sorted.

    ``load`` reads one recipe (default: :func:`load_recipe` without parts). A file that does not
    load is listed with the reason instead of its description, so one broken recipe never hides
    the others. ``validate=False`` only reads each file's YAML and its ``description`` (what
    ``seqkit recipes`` does): validating every section would import every part, and with them
    torch, to print a list of file names.
    """
    root = Path(root)
    if not root.is_dir():
        return []
    rows = []
    for path in root.rglob("*.yaml"):
        try:
            if validate:
                description = (load or load_recipe)(path).description
            else:
                description = _read_description(path)
            description = description or "(no description)"
        except UserError as error:
            description = f"(invalid recipe: {error})"
        rows.append((path.relative_to(root).as_posix(), description))
    return sorted(rows)


def _read_description(path: Path) -> str:
    """The ``description`` of the recipe file ``path``, checked as :func:`load_recipe` would."""
    description = _read_mapping(path).get("description") or ""
    if not isinstance(description, str):
        raise UserError(f"description must be a string, got {_show(description)}")
    return description


def find_recipe(name_or_path: str | Path, root: Path = RECIPES_DIR) -> Path:
    """A recipe file: a path as given, else a name under ``root`` with or without ``.yaml``."""
    given = Path(name_or_path)
    candidates = [given, Path(root) / given]
    if given.suffix != ".yaml":
        candidates.append(Path(root) / f"{given}.yaml")
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    if given.is_dir():
        raise UserError(f"{given} is a directory, not a recipe file")
    raise UserError(
        f"no recipe {str(name_or_path)!r} (neither a file nor a name under {root}); "
        "run `seqkit recipes` to list them"
    )
