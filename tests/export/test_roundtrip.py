"""Every seqkit model type: exported as a native Hub folder, loaded back through the
``transformers`` Auto classes, bit for bit.

The model types are not listed here: they are read from what the seqkit modules registered with
``AutoConfig`` (:mod:`seqkit.export.registry`), so a family added later is tested without
touching this file.
"""

from __future__ import annotations

import re

import pytest
import torch
from transformers import AutoConfig

from seqkit.errors import UserError
from seqkit.export.exporter import export_model
from seqkit.export.registry import (
    STOCK_CONVERTERS,
    auto_model_classes,
    example_config,
    import_model_modules,
    seqkit_config_classes,
)

import_model_modules()
CONFIG_CLASSES = seqkit_config_classes()


def most_specific_auto_class(config_class):
    """``{model class: the most specific Auto class registered for it}``."""
    pairs = auto_model_classes(config_class)  # most specific first
    return {model: auto for auto, model in reversed(pairs)}


CASES = [
    pytest.param(config_class, auto_class, model_class, id=f"{model_type}-{model_class.__name__}")
    for model_type, config_class in CONFIG_CLASSES.items()
    for model_class, auto_class in most_specific_auto_class(config_class).items()
]


def test_the_registry_finds_the_families():
    assert "seqkit-gpt" in CONFIG_CLASSES
    assert all(auto_model_classes(config_class) for config_class in CONFIG_CLASSES.values())


@pytest.mark.parametrize(("config_class", "auto_class", "model_class"), CASES)
def test_native_export_round_trips_bit_for_bit(config_class, auto_class, model_class, tmp_path):
    torch.manual_seed(0)
    model = model_class(example_config(config_class)).eval()
    # Keeps the suite fast as families are added; a big default config needs an entry.
    assert model.num_parameters() < 2_000_000, (
        f"add a small {config_class.model_type} config to seqkit.export.registry.EXAMPLE_CONFIGS"
    )
    source = tmp_path / "source"
    model.save_pretrained(source)
    out = tmp_path / "export"
    result = export_model(source, out, format="native")
    assert result.model.architecture == model_class.__name__

    # The card's own loading code, run as a user would (it imports the seqkit module).
    card = (out / "README.md").read_text(encoding="utf-8")
    namespace: dict = {}
    exec(re.search(r"```python\n(.*?)```", card, re.S).group(1), namespace)
    assert type(namespace["config"]) is config_class
    assert type(namespace["model"]) is model_class

    assert type(AutoConfig.from_pretrained(out)) is config_class
    loaded = auto_class.from_pretrained(out)
    assert type(loaded) is model_class
    expected = model.state_dict()
    for state in (loaded.state_dict(), namespace["model"].state_dict()):
        assert state.keys() == expected.keys()
        for name, tensor in expected.items():
            assert state[name].dtype == tensor.dtype, name
            assert torch.equal(state[name], tensor), name
    if config_class.model_type not in STOCK_CONVERTERS:
        with pytest.raises(UserError, match="no stock transformers class"):
            export_model(source, tmp_path / "stock", format="transformers")
        assert not (tmp_path / "stock").exists()

    ignored = {"transformers_version", "_name_or_path"}
    assert {k: v for k, v in loaded.config.to_dict().items() if k not in ignored} == {
        k: v for k, v in model.config.to_dict().items() if k not in ignored
    }
