"""The one table of seqkit model types and the ``transformers`` Auto classes that load them.

After ``import seqkit``, ``AutoConfig``, ``AutoModelForCausalLM`` and the other Auto classes (and
so ``pipeline``) load every seqkit folder: a config whose ``model_type`` is ``seqkit-gpt``,
``seqkit-bert``… resolves to the seqkit class its model builder names (:func:`auto_classes`).
Registration uses transformers' public API (``AutoConfig.register``,
``AutoModelForX.register``), as the "custom models" guide describes; this module only decides
*when* it runs.

When. Registering needs the classes, and the classes need ``torch`` and transformers'
``PreTrainedModel``. Measured on this project's 2-core machine (shared, so noisy; ``python -c``,
three runs each): ``import seqkit`` 0.03-0.04 s, ``import transformers`` 1.0 s, ``from
transformers import PreTrainedModel`` 6.4-6.7 s, and every seqkit model module on top of that
6.3-7.1 s (the modules themselves cost a few hundred ms). So registering at ``import seqkit``
would make ``seqkit recipes`` or ``seqkit --help`` some 100× slower, and registering at
``import transformers`` would add 5 s to anything that only wants transformers' logging (the
CLI's set-up) or a tokenizer. Registration therefore waits for the first moment transformers'
Auto machinery exists — the module ``transformers.models.auto``, which ``AutoConfig``, every
``AutoModelFor…``, ``AutoTokenizer``, ``pipeline`` and ``PreTrainedModel`` itself import — by
which time torch and ``PreTrainedModel`` are (almost always) loaded already and registering
costs only the seqkit model modules' own import. No Auto class can look a model type up before
that module exists, so no lookup can miss the registration. What ``import seqkit`` pays is
this module: 3.6 ms under ``python -X importtime`` (it avoids ``dataclasses``, which would pull
in ``inspect``); the whole process, median of 11 runs, went from 0.057-0.064 s to
0.062-0.070 s.

How. :func:`install` (called by ``seqkit/__init__.py``) registers at once if
``transformers.models.auto`` is already imported; otherwise it puts a finder at the front of
``sys.meta_path`` that wraps the loaders of ``transformers``' and seqkit's own modules while
registration is pending. Registration cannot run the instant ``transformers.models.auto``
finishes executing: that module is usually imported *from inside* another import still under
way — ``transformers.modeling_utils`` (``PreTrainedModel``), or ``seqkit.models.gpt`` whose
first lines import transformers — and registering then would import ``seqkit.models.gpt``
while it is half-initialised (``ImportError: cannot import name 'GPTConfig' from partially
initialized module``). So the wrapped loaders count, per thread, the wrapped imports under
way, and registration runs when the outermost of them finishes. The finder removes itself
after registering; from then on imports cost nothing extra. ``transformers`` replaces its own
module object with a lazy one while it executes; the finder never touches module objects, only
wraps ``exec_module``, so that laziness is unaffected.

A failure to register inside an import (a broken seqkit module) must not break the unrelated
import that triggered it: it becomes a warning, and :func:`register_auto_classes` — which also
registers on demand — raises it.
"""

from __future__ import annotations

# Only modules that a bare ``python`` has loaded already, or nearly free ones: this module is
# imported by ``import seqkit`` (a dataclass here would pull in ``inspect``, ~10 ms).
import sys
import threading
import warnings
from collections import namedtuple
from types import ModuleType

AutoEntry = namedtuple("AutoEntry", ["model_type", "config", "models"])
AutoEntry.__doc__ = """One seqkit model type: ``model_type`` (as written in ``config.json``),
``config`` (``"module:ConfigClass"``) and ``models``, the ``(Auto class name in transformers,
"module:ModelClass")`` pairs that load it."""


def _path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def auto_classes(failures: list[Exception] | None = None) -> tuple[AutoEntry, ...]:
    """Every seqkit model type with its config class and ``(Auto class, model class)`` pairs,
    read from the registered model builders (:data:`seqkit.parts.registry.MODEL_BUILDERS`):
    each builder's model for a task is registered with that task's Auto class
    (``Task.auto_class``), plus any its builder adds (``extra_auto_classes``). So a new
    architecture's registry line is all the Auto classes need. Imports every builder's module
    (torch); a module that fails to import is left out, its error appended to ``failures``."""
    from seqkit.parts.registry import MODEL_BUILDERS, TASKS

    configs: dict[str, str] = {}
    models: dict[str, list[tuple[str, str]]] = {}
    for name in MODEL_BUILDERS.names():
        try:
            builder = MODEL_BUILDERS.get(name)
        except Exception as error:  # that architecture's own tests report it
            if failures is not None:
                failures.append(error)
            continue
        heads = builder.head_classes().items()
        pairs = [(TASKS.get(task).auto_class, head) for task, head in heads]
        pairs += list(builder.extra_auto_classes.items())
        for auto_class, model_class in pairs:
            model_type = model_class.config_class.model_type
            configs[model_type] = _path(model_class.config_class)
            pair = (auto_class, _path(model_class))
            if pair not in models.setdefault(model_type, []):
                models[model_type].append(pair)
    return tuple(AutoEntry(t, configs[t], tuple(models[t])) for t in sorted(configs))


# The module whose arrival means an Auto class may be used (see the module docstring).
_TRIGGER = "transformers.models.auto"

_lock = threading.RLock()
_registered = False
_trigger_loaded = False
_in_flight = threading.local()  # .depth: wrapped imports under way in this thread


def register_auto_classes() -> None:
    """Register every entry of :func:`auto_classes` with its Auto classes (imports torch and
    every seqkit model module). Idempotent; ``import seqkit`` arranges for it to run by
    itself, so call it only to register before transformers' Auto machinery is imported.

    An entry whose module fails to import is skipped, so one broken module leaves the other
    model types loadable; the first such error is raised once the rest are registered."""
    global _registered
    with _lock:
        if _registered:
            return
        _uninstall()  # the imports below need no watching
        import transformers

        from seqkit.parts.registry import import_target

        failures: list[Exception] = []
        for entry in auto_classes(failures):
            try:
                config_class = import_target(entry.config)
                models = [(getattr(transformers, a), import_target(m)) for a, m in entry.models]
            except Exception as error:
                failures.append(error)
                continue
            transformers.AutoConfig.register(entry.model_type, config_class, exist_ok=True)
            for auto_class, model_class in models:
                auto_class.register(config_class, model_class, exist_ok=True)
        _registered = not failures
        if failures:
            raise failures[0]


def _register_from_import() -> None:
    """Register at the end of an import: a failure is reported, never raised into an import
    that has nothing to do with it."""
    try:
        register_auto_classes()
    except Exception as error:
        warnings.warn(
            f"seqkit could not register its model types with transformers' Auto classes "
            f"({type(error).__name__}: {error}); call seqkit.models.auto.register_auto_classes() "
            "to see the whole error",
            RuntimeWarning,
            stacklevel=2,
        )


class _WatchedLoader:
    """Runs the real loader, counting the imports under way; registers after the outermost
    one once ``transformers.models.auto`` exists. Other attributes (``get_source``,
    ``get_resource_reader``…) are the real loader's."""

    def __init__(self, loader: object, name: str) -> None:
        self._loader = loader
        self._name = name

    def __getattr__(self, name: str) -> object:
        if name == "_loader":  # not set yet (a copy being built): no endless recursion
            raise AttributeError(name)
        return getattr(self._loader, name)

    def create_module(self, spec: object) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        global _trigger_loaded
        _in_flight.depth = getattr(_in_flight, "depth", 0) + 1
        try:
            self._loader.exec_module(module)
        finally:
            _in_flight.depth -= 1
        if self._name == _TRIGGER:
            _trigger_loaded = True
        if _trigger_loaded and _in_flight.depth == 0 and not _registered:
            _register_from_import()


class _AutoRegistrationFinder:
    """Finds nothing itself: asks the other finders, and wraps the loader of what they find
    for ``transformers`` and ``seqkit`` modules."""

    def find_spec(
        self, fullname: str, path: object, target: ModuleType | None = None
    ) -> object | None:
        if fullname.partition(".")[0] not in ("transformers", "seqkit"):
            return None
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            if finder is self or find_spec is None:
                continue
            spec = find_spec(fullname, path, target)
            if spec is None:
                continue
            if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                spec.loader = _WatchedLoader(spec.loader, fullname)
            return spec
        return None


_finder = _AutoRegistrationFinder()


def _uninstall() -> None:
    if _finder in sys.meta_path:
        sys.meta_path.remove(_finder)


def install() -> None:
    """Arrange for :func:`register_auto_classes` to run as soon as transformers' Auto classes
    can be used (at once if they already can). Called by ``import seqkit``; cheap."""
    with _lock:
        if _registered or _finder in sys.meta_path:
            return
        if _TRIGGER in sys.modules:
            _register_from_import()
        else:
            sys.meta_path.insert(0, _finder)
