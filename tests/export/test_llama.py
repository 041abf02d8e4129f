"""Decoder ↔ stock LlamaForCausalLM: equal logits and equal greedy generations, both ways, with
the exported folder loaded by plain transformers in a Python where seqkit cannot be imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from seqkit.errors import UserError
from seqkit.export.llama import (
    LAYER_NAMES,
    MODEL_NAMES,
    check_llama_config,
    decoder_config_from_llama,
    from_llama,
    llama_config_from_decoder,
    llama_state_dict_to_seqkit,
    seqkit_state_dict_to_llama,
    to_llama,
    to_native,
    to_transformers,
)
from seqkit.export.source import ExportSource
from seqkit.generation import generate
from seqkit.models.decoder import DecoderConfig, DecoderForCausalLM

LOGIT_TOLERANCE = 1e-4
VOCAB = 29
NEW_TOKENS = 12


def large(model):
    """Weights scaled up, so that a wrong name, rotation or grouping shows in the outputs."""
    torch.manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(3.0)
    return model.eval()


def tiny_decoder(**overrides) -> DecoderForCausalLM:
    values = dict(
        vocab_size=VOCAB,
        n_positions=32,
        n_embd=32,
        n_layer=2,
        n_head=4,
        n_kv_head=2,
        intermediate_size=40,
        rope_theta=500.0,
        rms_norm_eps=1e-6,
    )
    torch.manual_seed(0)
    return large(DecoderForCausalLM(DecoderConfig(**{**values, **overrides})))


def tiny_llama(**overrides) -> LlamaForCausalLM:
    values = dict(
        vocab_size=VOCAB,
        max_position_embeddings=32,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=1,
        intermediate_size=48,
        rope_parameters={"rope_type": "default", "rope_theta": 2000.0},
        bos_token_id=None,
        eos_token_id=None,
    )
    torch.manual_seed(0)
    return large(LlamaForCausalLM(LlamaConfig(**{**values, **overrides})))


def prompt_ids() -> torch.Tensor:
    return torch.randint(0, VOCAB, (2, 7), generator=torch.Generator().manual_seed(1))


def stock_greedy(stock: LlamaForCausalLM, ids: torch.Tensor) -> list:
    # An explicit all-ones mask: without it transformers guesses padding from pad_token_id.
    return stock.generate(
        ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=NEW_TOKENS,
        do_sample=False,
        pad_token_id=0,
    ).tolist()


def assert_same_function(ours: DecoderForCausalLM, stock: LlamaForCausalLM) -> None:
    ids = prompt_ids()
    with torch.no_grad():
        difference = (stock(ids).logits - ours(ids).logits).abs().max().item()
    assert difference < LOGIT_TOLERANCE
    greedy = generate(ours, ids, max_new_tokens=NEW_TOKENS, temperature=0.0)
    assert greedy.tolist() == stock_greedy(stock, ids)


def assert_equal_state(state: dict, expected: dict) -> None:
    assert state.keys() == expected.keys()
    for name, tensor in expected.items():
        assert torch.equal(state[name], tensor), name


# ----------------------------------------------------------------------------- in process


@pytest.mark.parametrize(("n_kv_head", "tie"), [(1, False), (2, True), (4, False)])
def test_seqkit_decoder_to_stock_llama_and_back(n_kv_head, tie):
    model = tiny_decoder(n_kv_head=n_kv_head, tie_word_embeddings=tie)
    stock = to_llama(model)
    assert type(stock) is LlamaForCausalLM and stock.config.model_type == "llama"
    assert stock.config.num_key_value_heads == n_kv_head
    assert stock.config.tie_word_embeddings == tie
    assert stock.config.rope_parameters["rope_theta"] == 500.0
    assert_same_function(model, stock)
    back = from_llama(stock)
    assert_equal_state(back.state_dict(), model.state_dict())
    assert back.config.to_dict() == model.config.to_dict() | {
        "_name_or_path": back.config._name_or_path
    }


@pytest.mark.parametrize("tie", [False, True])
def test_stock_llama_to_seqkit_decoder_and_back(tie):
    stock = tiny_llama(tie_word_embeddings=tie)
    model = from_llama(stock)
    assert type(model) is DecoderForCausalLM
    assert model.config.n_kv_head == 1 and model.config.rope_theta == 2000.0
    assert_same_function(model, stock)
    assert_equal_state(to_llama(model).state_dict(), stock.state_dict())


def test_stock_llama_folder_imports_by_path(tmp_path: Path):
    stock = tiny_llama()
    stock.save_pretrained(tmp_path)
    model = from_llama(tmp_path)
    assert_same_function(model, stock)


def test_a_llama_folder_without_loadable_weights_is_refused_in_one_line(tmp_path: Path):
    tiny_llama().config.save_pretrained(tmp_path)  # the config, but no weights
    with pytest.raises(UserError, match="does not load as LlamaForCausalLM") as caught:
        from_llama(tmp_path)
    assert "\n" not in str(caught.value)


def test_the_name_tables_cover_both_models_exactly():
    model = tiny_decoder(tie_word_embeddings=False)
    stock = to_llama(model)
    assert set(seqkit_state_dict_to_llama(model.state_dict())) == set(stock.state_dict())
    assert set(llama_state_dict_to_seqkit(stock.state_dict())) == set(model.state_dict())
    per_layer = len(LAYER_NAMES) * model.config.n_layer
    assert len(model.state_dict()) == per_layer + len(MODEL_NAMES)
    with pytest.raises(UserError, match=r"'model.layers.0.self_attn.q_proj.bias' has no"):
        llama_state_dict_to_seqkit({"model.layers.0.self_attn.q_proj.bias": torch.zeros(1)})


def test_configs_map_both_ways():
    config = tiny_decoder(n_kv_head=2, dropout=0.1, eos_token_id=3).config
    llama = llama_config_from_decoder(config)
    assert (llama.hidden_size, llama.num_attention_heads, llama.num_key_value_heads) == (32, 4, 2)
    assert (llama.intermediate_size, llama.max_position_embeddings) == (40, 32)
    assert (llama.attention_dropout, llama.eos_token_id, llama.bos_token_id) == (0.1, 3, None)
    assert llama.hidden_act == "silu" and not llama.attention_bias and not llama.mlp_bias
    again = decoder_config_from_llama(llama)
    for name in ("n_embd", "n_head", "n_kv_head", "intermediate_size", "rope_theta", "dropout"):
        assert getattr(again, name) == getattr(config, name), name
    single_eos = LlamaConfig(hidden_size=32, num_attention_heads=4, eos_token_id=[5])
    assert decoder_config_from_llama(single_eos).eos_token_id == 5


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {
                "rope_parameters": {
                    "rope_type": "llama3",
                    "rope_theta": 500000.0,
                    "factor": 8.0,
                    "low_freq_factor": 1.0,
                    "high_freq_factor": 4.0,
                    "original_max_position_embeddings": 16,
                }
            },
            "scales its rotary positions",
        ),
        ({"attention_bias": True}, "attention_bias=True"),
        ({"mlp_bias": True}, "mlp_bias=True"),
        ({"hidden_act": "gelu"}, "hidden_act='gelu'"),
        ({"head_dim": 16}, "head_dim=16"),
        ({"eos_token_id": [1, 2]}, "several end-of-sequence tokens"),
    ],
)
def test_llama_options_seqkit_does_not_compute_are_refused_in_one_line(
    overrides, message, tmp_path
):
    config = LlamaConfig(hidden_size=32, num_attention_heads=4, num_hidden_layers=1, **overrides)
    with pytest.raises(UserError, match=message) as caught:
        check_llama_config(config)
    assert "\n" not in str(caught.value)
    config.save_pretrained(tmp_path)  # a folder without weights: refused from its config alone
    with pytest.raises(UserError, match=message):
        from_llama(tmp_path)


# ----------------------------------------------------------------------------- without seqkit

# Loads each folder in argv[1] with plain transformers and prints its class, logits and greedy
# tokens as JSON. seqkit is made unimportable first, so nothing of it can help.
WITHOUT_SEQKIT = textwrap.dedent(
    """
    import json, sys
    sys.modules["seqkit"] = None  # `import seqkit` (or any seqkit.x) now raises ImportError
    import torch
    from transformers import AutoModelForCausalLM

    case = json.loads(sys.argv[1])
    ids = torch.tensor(case["ids"])
    results = []
    for folder in case["folders"]:
        model = AutoModelForCausalLM.from_pretrained(folder).eval()
        with torch.no_grad():
            logits = model(ids).logits.tolist()
        greedy = model.generate(
            ids, attention_mask=torch.ones_like(ids), max_new_tokens=case["new_tokens"],
            do_sample=False, pad_token_id=0,
        ).tolist()
        results.append({"class": type(model).__name__, "logits": logits, "greedy": greedy})
    print(json.dumps(results))
    """
)


def test_exported_folders_load_in_plain_transformers_without_seqkit(tmp_path: Path):
    model = tiny_decoder()
    saved = tmp_path / "saved"
    to_llama(model).save_pretrained(saved)
    # The same model through the exporter's writer, from a seqkit folder.
    native = tmp_path / "native"
    model.save_pretrained(native)
    source = ExportSource(
        folder=native, config=json.loads((native / "config.json").read_text(encoding="utf-8"))
    )
    written_folder = tmp_path / "written"
    written_folder.mkdir()
    written = to_transformers(source, written_folder)
    assert written.architecture == "LlamaForCausalLM" and written.library_name == "transformers"

    ids = prompt_ids()
    case = {"ids": ids.tolist(), "folders": [str(saved), str(written_folder)]}
    case["new_tokens"] = NEW_TOKENS
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TRANSFORMERS_VERBOSITY": "error"}
    env.pop("PYTHONPATH", None)
    completed = subprocess.run(
        [sys.executable, "-c", WITHOUT_SEQKIT, json.dumps(case)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    results = json.loads(completed.stdout.strip().splitlines()[-1])

    with torch.no_grad():
        ours = model(ids).logits
    greedy = generate(model, ids, max_new_tokens=NEW_TOKENS, temperature=0.0).tolist()
    for result in results:
        assert result["class"] == "LlamaForCausalLM"
        assert (torch.tensor(result["logits"]) - ours).abs().max().item() < LOGIT_TOLERANCE
        assert result["greedy"] == greedy


def test_native_writer_imports_a_stock_llama_folder(tmp_path: Path):
    stock = tiny_llama()
    stock_folder = tmp_path / "stock"
    stock.save_pretrained(stock_folder)
    source = ExportSource(
        folder=stock_folder,
        config=json.loads((stock_folder / "config.json").read_text(encoding="utf-8")),
    )
    out = tmp_path / "out"
    out.mkdir()
    written = to_native(source, out)
    assert written.architecture == "DecoderForCausalLM" and written.library_name == "seqkit"
    namespace: dict = {}
    exec(written.how_to_load.replace("<PATH>", str(out)), namespace)  # the card's code
    assert type(namespace["model"]) is DecoderForCausalLM
    assert_same_function(namespace["model"].eval(), stock)
