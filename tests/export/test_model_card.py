"""The model card: valid Hub metadata, every section, the metrics and the loss plot."""

from __future__ import annotations

import json

import numpy as np
import yaml
from huggingface_hub import ModelCard

from seqkit.export.model_card import (
    base_model_of,
    describe_training_data,
    format_parameter_count,
    read_model_card,
    write_model_card,
)

HOW_TO_LOAD = 'from seqkit import load\nmodel = load("out/final")'
PNG = b"\x89PNG\r\n\x1a\nnot really an image"


def split_card(text: str) -> tuple[dict, str]:
    assert text.startswith("---\n")
    header, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(header), body


def write(folder, **overrides):
    arguments = dict(
        title="seqkit GPT: shakespeare-char",
        family="gpt",
        num_parameters=801_234,
        recipe={"task": "gpt", "trainer": {"lr": 1e-3, "betas": (0.9, 0.95)}},
        metrics={"eval/loss": 1.23456, "eval/perplexity": 3.4367},
        how_to_load=HOW_TO_LOAD,
    )
    arguments.update(overrides)
    return write_model_card(folder, **arguments)


def test_header_is_valid_hub_metadata(tmp_path):
    path = write(
        tmp_path,
        datasets=["tiny_shakespeare"],
        tags=["gpt", "causal-lm"],
        pipeline_tag="text-generation",
    )
    assert path == tmp_path / "README.md"
    metadata, _ = split_card(path.read_text())
    index = metadata.pop("model-index")
    assert metadata == {
        "license": "apache-2.0",
        "library_name": "seqkit",
        "tags": ["seqkit", "gpt", "causal-lm"],
        "datasets": ["tiny_shakespeare"],
        "metrics": ["loss", "perplexity"],
        "pipeline_tag": "text-generation",
    }
    # The recipe names no data: the data set is the task's default data module's.
    assert index == [
        {
            "name": "seqkit GPT: shakespeare-char",
            "results": [
                {
                    "task": {"type": "text-generation"},
                    "dataset": {"name": "text", "type": "text"},
                    "metrics": [
                        {"type": "loss", "value": 1.23456, "name": "eval/loss"},
                        {"type": "perplexity", "value": 3.4367, "name": "eval/perplexity"},
                    ],
                }
            ],
        }
    ]
    # huggingface_hub parses the header into its own card data, as the Hub does.
    card = ModelCard.load(path)
    assert card.data.license == "apache-2.0"
    assert card.data.datasets == ["tiny_shakespeare"]
    assert card.data.metrics == ["loss", "perplexity"]
    assert card.data.library_name == "seqkit"


def test_optional_metadata_is_left_out(tmp_path):
    metadata, body = split_card(
        write(tmp_path, title="a: title # with YAML syntax", metrics={}, recipe=None).read_text()
    )
    assert "datasets" not in metadata and "pipeline_tag" not in metadata
    assert "metrics" not in metadata and "model-index" not in metadata
    assert "base_model" not in metadata
    assert "The recipe was not recorded." in body and "No metrics were recorded." in body


def test_step_is_not_a_hub_metric(tmp_path):
    metadata, body = split_card(write(tmp_path, metrics={"eval/loss": 2.0, "step": 40}).read_text())
    assert metadata["metrics"] == ["loss"]
    assert "| step | 40 |" in body


def test_sections_recipe_metrics_and_loading_code(tmp_path):
    _, body = split_card(write(tmp_path).read_text())
    for heading in (
        "# seqkit GPT: shakespeare-char",
        "## Model",
        "## Training data",
        "## Training",
        "## Results",
        "## Intended use and limits",
        "## How to load",
    ):
        assert f"\n{heading}\n" in f"\n{body}", heading
    assert "0.80M" in body and "801,234" in body
    assert "Training data\n\nNot recorded." in body
    assert "| eval/loss | 1.2346 |" in body
    assert "| eval/perplexity | 3.4367 |" in body
    recipe_block = body.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert yaml.safe_load(recipe_block) == {
        "task": "gpt",
        "trainer": {"lr": 1e-3, "betas": [0.9, 0.95]},
    }
    assert f"```python\n{HOW_TO_LOAD}\n```" in body
    assert "## Loss" not in body and not (tmp_path / "loss.png").exists()


def test_loss_plot_is_copied_and_shown(tmp_path):
    plot = tmp_path / "run" / "loss.png"
    plot.parent.mkdir()
    plot.write_bytes(PNG)
    folder = tmp_path / "final"
    _, body = split_card(write(folder, loss_plot=plot).read_text())
    assert (folder / "loss.png").read_bytes() == PNG
    assert "![Training and evaluation loss](loss.png)" in body


def test_loss_plot_already_in_the_folder(tmp_path):
    (tmp_path / "loss.png").write_bytes(PNG)
    write(tmp_path, loss_plot=tmp_path / "loss.png")
    assert (tmp_path / "loss.png").read_bytes() == PNG


def test_parameter_counts_read_well():
    assert format_parameter_count(800_000) == "0.80M"
    assert format_parameter_count(124_439_808) == "124.44M"
    assert format_parameter_count(1_500_000_000) == "1.50B"
    assert format_parameter_count(1_234) == "1,234"


def test_family_architecture_size_and_training_data(tmp_path):
    path = write(
        tmp_path,
        library_name="transformers",
        architecture="GPT2LMHeadModel",
        size={"n_layer": 4, "n_embd": 128},
        training_data="The Hub data set `karpathy/tiny_shakespeare`.",
    )
    metadata, body = split_card(path.read_text())
    assert metadata["library_name"] == "transformers"
    assert "- Family: `gpt`" in body
    assert "- Architecture: `GPT2LMHeadModel`" in body
    assert "- Size: n_layer 4, n_embd 128" in body
    assert "## Training data\n\nThe Hub data set `karpathy/tiny_shakespeare`." in body


def test_small_counts_are_not_repeated(tmp_path):
    _, body = split_card(write(tmp_path, num_parameters=5_216).read_text())
    assert "- Parameters: 5,216\n" in body


def test_a_card_reads_back(tmp_path):
    recipe = {"task": "gpt", "trainer": {"lr": 1e-3, "betas": [0.9, 0.95]}, "note": "a | b"}
    path = write(tmp_path, recipe=recipe, metrics={"eval/loss": 1.5, "a|b": 2.25, "step": 7})
    metadata, read_recipe, metrics = read_model_card(path)
    assert metadata["tags"] == ["seqkit", "gpt"]
    assert read_recipe == recipe
    assert metrics == {"eval/loss": 1.5, "a|b": 2.25, "step": 7}


def test_a_missing_or_foreign_card_reads_as_empty(tmp_path):
    assert read_model_card(tmp_path / "README.md") == ({}, None, {})
    (tmp_path / "README.md").write_text("---\n[unclosed\n---\n# Some model\n")
    assert read_model_card(tmp_path / "README.md") == ({}, None, {})


def test_training_data_comes_from_the_recipe():
    hub = {"data": {"path": None, "hub": "karpathy/tiny_shakespeare", "hub_split": "train"}}
    line, datasets = describe_training_data(hub)
    assert datasets == ["karpathy/tiny_shakespeare"]
    assert "https://huggingface.co/datasets/karpathy/tiny_shakespeare" in line
    line, datasets = describe_training_data({"data": {"path": "/home/me/corpus.txt", "hub": "x"}})
    assert datasets == [] and "`corpus.txt`" in line and "/home/me" not in line
    line, _ = describe_training_data({"data": {"embedded": "pydoc-topics"}})
    assert "`pydoc-topics`" in line
    line, _ = describe_training_data({"data": {"digits": True, "resize": None}})
    assert line == "- The recipe's data section: digits: `True`"
    line, _ = describe_training_data({"task": "causal-lm", "data": {"embedded": "pydoc-topics"}})
    assert "- Data module: `text`" in line  # the task's default module, as training picks it
    assert describe_training_data(None) == (None, [])


def test_local_data_is_recorded_with_sizes_and_hashes():
    one = {"files": {"corpus.txt": {"size": 2401, "sha256": "ab" * 32}}, "path": "/x/corpus.txt"}
    line, _ = describe_training_data(
        {"data": {"module": "text", "path": "/x/corpus.txt"}}, {"data.path": one}
    )
    assert line == (
        f"- Data module: `text`\n- Local files: `corpus.txt` (2,401 bytes, SHA-256 `{'ab' * 32}`)"
    )
    files = {f"part-{i}.txt": {"size": 10, "sha256": f"{i:064x}"} for i in range(7)}
    line, _ = describe_training_data(
        {"data": {"path": "/x/shards"}}, {"data.path": {"files": files}}
    )
    assert "- Local files: `shards`" in line
    assert f"  - `part-0.txt`: 10 bytes, SHA-256 `{0:064x}`" in line
    assert "  - and 2 more files (70 bytes in all)" in line and "part-6" not in line


def test_model_index_of_a_hub_data_set_and_a_hub_base_model(tmp_path):
    recipe = {
        "task": "causal-lm",
        "model": {"init_from": "openai-community/gpt2"},
        "data": {
            "hub": "Salesforce/wikitext",
            "hub_config": "wikitext-2-raw-v1",
            "hub_split": "train",
            "hub_revision": "b08601e",
        },
    }
    metrics = {
        "eval/loss": 2.5,
        "eval/accuracy": float("nan"),
        "eval/bits": np.float32(0.5),  # a NumPy number is written as a plain one
        "train/loss": 2.0,
        "step": 9,
    }
    path = write(tmp_path, recipe=recipe, metrics=metrics, pipeline_tag="text-generation")
    card = ModelCard.load(path)
    assert card.data.base_model == "openai-community/gpt2"
    assert card.data.datasets == ["Salesforce/wikitext"]
    # Only finite held-out metrics are results: not the training loss, not a NaN.
    result, bits = card.data.eval_results
    assert (bits.metric_type, bits.metric_value) == ("bits", 0.5)
    assert (result.task_type, result.metric_type, result.metric_value) == (
        "text-generation",
        "loss",
        2.5,
    )
    assert (result.dataset_type, result.dataset_config, result.dataset_split) == (
        "Salesforce/wikitext",
        "wikitext-2-raw-v1",
        "train",
    )
    assert result.dataset_revision == "b08601e"
    body = card.text
    assert "- Config: `wikitext-2-raw-v1`\n- Split: `train`\n- Revision: `b08601e`" in body
    assert "Not recorded" not in body


def test_base_model_of_a_local_init_from(tmp_path):
    stock = tmp_path / "stock"
    stock.mkdir()
    (stock / "config.json").write_text(json.dumps({"_name_or_path": "openai-community/gpt2"}))
    assert base_model_of({"model": {"init_from": str(stock)}}) == "openai-community/gpt2"
    # A folder that records only a local path has no Hub base model...
    (stock / "config.json").write_text(json.dumps({"_name_or_path": str(tmp_path)}))
    assert base_model_of({"model": {"init_from": str(stock)}}) is None
    # ...unless it is a fine-tune whose own card names one (a run: its final/).
    run = tmp_path / "run"
    write(run / "final", recipe={"model": {"init_from": "google-bert/bert-base-uncased"}})
    (run / "final" / "config.json").write_text("{}")
    assert base_model_of({"model": {"init_from": str(run)}}) == "google-bert/bert-base-uncased"
    assert base_model_of({"model": {"init_from": str(tmp_path / "gone")}}) is None
    assert base_model_of({"model": {}}) is None and base_model_of(None) is None
