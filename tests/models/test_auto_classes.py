"""seqkit folders in plain ``transformers``: the Auto classes, ``generate()`` and ``pipeline``.

``import seqkit`` registers every seqkit model type (:mod:`seqkit.models.auto`) without importing
torch; transformers' ``generate()`` runs seqkit's causal LMs and gives seqkit's own greedy
tokens; ``pipeline`` runs GPT, BERT (fill-mask and classification) and the other causal LMs
from folders written the way seqkit writes them. Every model is tiny and built here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
import transformers
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    DynamicCache,
    pipeline,
)

from seqkit.data import CharTokenizer, train_tokenizer
from seqkit.export.registry import import_model_modules
from seqkit.generation import generate
from seqkit.models import bert
from seqkit.models.auto import auto_classes, register_auto_classes
from seqkit.models.decoder import DecoderConfig, DecoderForCausalLM
from seqkit.models.gpt import GPTLMHeadModel
from seqkit.models.gpt_config import GPTConfig
from seqkit.models.hub_generation import CACHE_FIELD
from seqkit.models.rnn import RecurrentLMConfig, RecurrentLMForCausalLM
from seqkit.parts.model_folder import save_pretrained as save_gpt_folder

CORPUS = "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind\n"
PROMPT = "To be, or"


def _class(path: str) -> type:
    module, name = path.split(":")
    return getattr(__import__(module, fromlist=[name]), name)


def large(model):
    """Weights scaled up, so that greedy decoding of a random model is not one repeated token."""
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(4.0)
    return model.eval()


def tiny_causal_lms(vocab_size: int) -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    return {
        "gpt": large(
            GPTLMHeadModel(
                GPTConfig(vocab_size=vocab_size, n_positions=64, n_embd=24, n_layer=2, n_head=3)
            )
        ),
        "decoder": large(
            DecoderForCausalLM(
                DecoderConfig(
                    vocab_size=vocab_size,
                    n_positions=64,
                    n_embd=24,
                    n_layer=2,
                    n_head=4,
                    n_kv_head=2,
                    intermediate_size=40,
                )
            )
        ),
        "lstm": large(
            RecurrentLMForCausalLM(
                RecurrentLMConfig(
                    vocab_size=vocab_size, embedding_size=16, hidden_size=24, num_layers=2
                )
            )
        ),
    }


# ----------------------------------------------------------------------------- registration


def test_every_seqkit_model_type_is_registered_with_its_auto_classes():
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    for entry in auto_classes():
        config_class = _class(entry.config)
        assert config_class.model_type == entry.model_type
        assert CONFIG_MAPPING[entry.model_type] is config_class
        for auto_name, model_path in entry.models:
            auto_class = getattr(transformers, auto_name)
            assert auto_class._model_mapping[config_class] is _class(model_path), auto_name


def test_the_builders_name_every_seqkit_config_class():
    """A model type without a registered builder would load with no Auto class."""
    import_model_modules()  # every builder's module and every seqkit.models module
    entries = auto_classes()
    listed = {entry.model_type for entry in entries}
    pending = [transformers.PretrainedConfig]
    found = set()
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__.startswith("seqkit.") and "model_type" in vars(cls):
            found.add(cls.model_type)
    assert found <= listed, f"no model builder registers: {sorted(found - listed)}"
    assert len(listed) == len(entries)  # one entry per model type


def test_register_auto_classes_is_idempotent():
    register_auto_classes()
    register_auto_classes()
    assert AutoConfig.for_model("seqkit-gpt", n_embd=8, n_head=2).n_embd == 8


# ``import seqkit`` must import neither torch nor transformers, and a transformers import that
# does not reach the Auto classes (the CLI's logging set-up) must not register (it would import
# torch). Importing a seqkit model module is the awkward path: transformers' Auto module is first
# imported from inside ``seqkit.models.gpt`` while that module is half-initialised, so
# registration must wait for the import to finish. Then an Auto class loads a folder.
FRESH_PROCESS = textwrap.dedent(
    """
    import json, sys
    import seqkit
    cheap = not {"torch", "transformers"} & set(sys.modules)
    from transformers.utils import logging
    logging_only = "torch" not in sys.modules and "seqkit.models.gpt" not in sys.modules
    from seqkit.models.gpt_config import GPTConfig
    from seqkit.models.gpt import GPTLMHeadModel
    from transformers import AutoModelForCausalLM
    GPTLMHeadModel(GPTConfig(vocab_size=11, n_positions=8, n_embd=8, n_layer=1, n_head=2)
                   ).save_pretrained(sys.argv[1])
    loaded = type(AutoModelForCausalLM.from_pretrained(sys.argv[1])).__name__
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING
    from seqkit.models.auto import auto_classes, _finder
    print(json.dumps({
        "cheap": cheap, "logging_only": logging_only, "loaded": loaded,
        "unregistered": [e.model_type for e in auto_classes()
                         if e.model_type not in CONFIG_MAPPING],
        "finder_left": _finder in sys.meta_path,
    }))
    """
)


def test_import_seqkit_is_cheap_and_registers_once_the_auto_classes_are_imported(tmp_path):
    process = subprocess.run(
        [sys.executable, "-W", "error::RuntimeWarning", "-c", FRESH_PROCESS, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"},
    )
    assert process.returncode == 0, process.stderr[-3000:]
    result = json.loads(process.stdout.strip().splitlines()[-1])
    assert result == {
        "cheap": True,
        "logging_only": True,
        "loaded": "GPTLMHeadModel",
        "unregistered": [],
        "finder_left": False,
    }


@pytest.mark.slow
def test_import_seqkit_after_the_auto_classes_registers_at_once(tmp_path):
    code = (
        "import sys\n"
        "from transformers import AutoConfig\n"
        "import seqkit\n"
        "from seqkit.models.auto import _finder\n"
        "assert AutoConfig.for_model('seqkit-bert').model_type == 'seqkit-bert'\n"
        "assert _finder not in sys.meta_path\n"
    )
    process = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert process.returncode == 0, process.stderr[-3000:]


# ----------------------------------------------------------------------------- generate()


@pytest.mark.parametrize("name", ["gpt", "decoder", "lstm"])
def test_transformers_generate_gives_seqkits_greedy_tokens(name):
    model = tiny_causal_lms(vocab_size=19)[name]
    assert model.can_generate()
    ids = torch.tensor([[1, 2, 3, 4], [5, 6, 7, 8]])
    ours = generate(model, ids, max_new_tokens=20, do_sample=False)
    assert len(set(ours[:, 4:].flatten().tolist())) > 2  # a real test: not one repeated token
    theirs = model.generate(ids, max_new_tokens=20, do_sample=False)
    assert theirs.tolist() == ours.tolist()
    # Without a cache every step re-reads the whole text: the same tokens.
    uncached = model.generate(ids, max_new_tokens=20, do_sample=False, use_cache=False)
    assert uncached.tolist() == ours.tolist()


@pytest.mark.parametrize("name", ["gpt", "decoder"])
def test_generate_keeps_a_transformers_cache(name):
    model = tiny_causal_lms(vocab_size=19)[name]
    ids = torch.tensor([[1, 2, 3, 4]])
    out = model.generate(
        ids, max_new_tokens=6, do_sample=False, return_dict_in_generate=True, use_cache=True
    )
    cache = getattr(out, CACHE_FIELD)
    assert isinstance(cache, DynamicCache)
    # The cache covers every token but the last one generated (which no step has read yet).
    assert cache.get_seq_length() == out.sequences.size(1) - 1
    # Its keys are the model's own: re-encoding the text gives them.
    with torch.no_grad():
        full = getattr(model(out.sequences[:, :-1], use_cache=True), CACHE_FIELD)
    for layer, (keys, values) in zip(cache.layers, full, strict=True):
        torch.testing.assert_close(layer.keys, keys)
        torch.testing.assert_close(layer.values, values)


def test_generate_beam_search_and_sampling_run_on_gpt():
    model = tiny_causal_lms(vocab_size=19)["gpt"]
    ids = torch.tensor([[1, 2, 3], [4, 5, 6]])
    beams = model.generate(ids, max_new_tokens=5, num_beams=3, do_sample=False)
    assert beams.shape == (2, 8)
    # A beam of one is greedy search.
    one_beam = model.generate(ids, max_new_tokens=5, num_beams=1, do_sample=False)
    assert one_beam.tolist() == generate(model, ids, max_new_tokens=5, do_sample=False).tolist()
    torch.manual_seed(0)
    first = model.generate(ids, max_new_tokens=5, do_sample=True, top_k=5)
    torch.manual_seed(0)
    assert model.generate(ids, max_new_tokens=5, do_sample=True, top_k=5).tolist() == (
        first.tolist()
    )


@pytest.mark.parametrize("name", ["gpt", "decoder"])
def test_generate_past_the_context_is_refused_with_the_reason(name):
    model = tiny_causal_lms(vocab_size=19)[name]  # 64 positions
    with pytest.raises(ValueError, match="outside the context"):
        model.generate(torch.tensor([[1] * 60]), max_new_tokens=10, do_sample=False)


@pytest.mark.skipif(CACHE_FIELD != "cache", reason="transformers before the cache rename")
def test_no_deprecated_cache_name_is_used(monkeypatch):
    """transformers logs a deprecation warning for ``past_key_values`` in outputs; seqkit's
    models and its generation loop use the current name, ``cache``."""
    from transformers.utils import generic

    def refuse(*args):
        raise AssertionError("the deprecated name past_key_values was used")

    rename = generic._rename_kwargs_for_bc

    def refuse_old_name(kwargs):
        if "past_key_values" in kwargs:
            refuse()
        rename(kwargs)

    monkeypatch.setattr(generic, "_rename_kwargs_for_bc", refuse_old_name)
    monkeypatch.setattr(generic.ModelOutput, "past_key_values", property(refuse))
    for model in tiny_causal_lms(vocab_size=19).values():
        ids = torch.tensor([[1, 2, 3]])
        assert generate(model, ids, max_new_tokens=3, do_sample=False).shape == (1, 6)
        assert model.generate(ids, max_new_tokens=3, do_sample=False).shape == (1, 6)


# ----------------------------------------------------------------------------- pipelines


@pytest.mark.parametrize("name", ["gpt", "decoder", "lstm"])
def test_text_generation_pipeline_on_a_seqkit_folder(tmp_path, name):
    tokenizer = CharTokenizer.train(CORPUS)
    model = tiny_causal_lms(tokenizer.vocab_size)[name]
    folder = tmp_path / name
    if name == "gpt":
        save_gpt_folder(model, tokenizer, folder)  # what `seqkit train` writes as final/
    else:
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    assert type(AutoModelForCausalLM.from_pretrained(folder)) is type(model)

    generator = pipeline("text-generation", model=str(folder))
    text = generator(PROMPT, max_new_tokens=12, do_sample=False)[0]["generated_text"]
    prompt = torch.tensor([tokenizer.encode(PROMPT)])
    ours = generate(model, prompt, max_new_tokens=12, do_sample=False)
    assert text == tokenizer.decode(ours[0].tolist())


def test_fill_mask_and_text_classification_pipelines_on_seqkit_bert_folders(tmp_path):
    """The pipelines run seqkit's BERT on what ``AutoTokenizer`` encodes. A BERT run's folder
    keeps seqkit's tokenizer as it is, which does not frame a text with [CLS] … [SEP] (seqkit's
    data code does); ``add_bert_framing`` (what ``seqkit export`` applies) makes it."""
    from seqkit.export.bert import add_bert_framing

    tokenizer = train_tokenizer("bpe", CORPUS * 8, vocab_size=300)
    mask = tokenizer.special_token_roles["mask"]
    config = bert.BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
        num_labels=3,
        pad_token_id=tokenizer.pad_token_id,
    )
    text = f"To be, or {mask} to be"

    for framed in (False, True):
        torch.manual_seed(0)
        masked_lm = large(bert.BertForMaskedLM(config))
        folder = tmp_path / f"mlm-{framed}"
        masked_lm.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        if framed:
            assert add_bert_framing(folder)
        ids = tokenizer.encode(text)
        if framed:
            ids = [tokenizer.cls_token_id, *ids, tokenizer.sep_token_id]
        filled = pipeline("fill-mask", model=str(folder))(text, top_k=3)
        with torch.no_grad():
            logits = masked_lm(torch.tensor([ids])).logits[0, ids.index(tokenizer.mask_token_id)]
        assert [row["token"] for row in filled] == logits.topk(3).indices.tolist()

    torch.manual_seed(0)
    classifier = large(bert.BertForSequenceClassification(config))
    classifier.save_pretrained(tmp_path / "classifier")
    tokenizer.save_pretrained(tmp_path / "classifier")
    assert add_bert_framing(tmp_path / "classifier")
    text = "Whether 'tis nobler"
    answer = pipeline("text-classification", model=str(tmp_path / "classifier"))(text)[0]
    ids = [tokenizer.cls_token_id, *tokenizer.encode(text), tokenizer.sep_token_id]
    with torch.no_grad():
        probabilities = classifier(torch.tensor([ids])).logits[0].softmax(-1)
    assert answer["label"] == f"LABEL_{int(probabilities.argmax())}"
    assert answer["score"] == pytest.approx(float(probabilities.max()))
