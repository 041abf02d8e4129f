"""Exported folders used by stock ``transformers`` in a Python where seqkit cannot be imported.

One subprocess (imports cost seconds) loads every exported folder with the Auto classes and
``AutoTokenizer``, runs the loading code printed in its model card, computes logits and greedy
generations, and runs the pipelines; this process compares the answers with seqkit's own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from seqkit.data import CharTokenizer
from seqkit.export.exporter import export_model
from seqkit.generation import generate
from seqkit.models.gpt import GPTLMHeadModel
from seqkit.models.gpt_config import GPTConfig
from seqkit.parts.model_folder import save_pretrained

TOLERANCE = 1e-4
CORPUS = "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind\n"

# Reads a JSON list of {"kind", "folder", "ids", "text"} from argv[1]; prints one JSON list of
# what stock transformers computed for each.
WITHOUT_SEQKIT = textwrap.dedent(
    """
    import json, re, sys
    sys.modules["seqkit"] = None  # `import seqkit` (or any seqkit.x) now raises ImportError
    import torch
    from transformers import AutoModel, AutoTokenizer, pipeline
    import transformers

    results = []
    for case in json.loads(sys.argv[1]):
        folder, ids, text = case["folder"], torch.tensor(case["ids"]), case["text"]
        card = open(folder + "/README.md", encoding="utf-8").read()
        exec(re.search(r"```python\\n(.*?)```", card, re.S).group(1), {})  # the card's code
        auto = getattr(transformers, case["auto"])
        model = auto.from_pretrained(folder).eval()
        tokenizer = AutoTokenizer.from_pretrained(folder)
        result = {"class": type(model).__name__, "encoded": tokenizer(text)["input_ids"]}
        with torch.no_grad():
            result["logits"] = model(ids).logits.tolist()
        if case["kind"] == "causal-lm":
            greedy = model.generate(ids[:1], max_new_tokens=12, do_sample=False)
            result["greedy"] = greedy.tolist()
            generator = pipeline("text-generation", model=folder)
            out = generator(text, max_new_tokens=5, do_sample=False)
            result["pipeline"] = out[0]["generated_text"]
        elif case["kind"] == "masked-lm":
            fill = pipeline("fill-mask", model=folder)
            result["pipeline"] = [row["token"] for row in fill(text, top_k=3)]
        else:
            classify = pipeline("text-classification", model=folder)
            result["pipeline"] = classify(text)[0]
        results.append(result)
    print(json.dumps(results))
    """
)


def large(model):
    """Weights scaled up, so a wrong transpose, name or activation shows in the outputs."""
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(4.0)
    return model.eval()


def gpt_case(tmp_path):
    tokenizer = CharTokenizer.train(CORPUS)
    torch.manual_seed(0)
    config = GPTConfig(
        vocab_size=tokenizer.vocab_size, n_positions=32, n_embd=24, n_layer=2, n_head=3
    )
    model = large(GPTLMHeadModel(config))
    save_pretrained(model, tokenizer, tmp_path / "gpt")
    export_model(tmp_path / "gpt", tmp_path / "gpt-hub")  # GPT's default: GPT2LMHeadModel
    ids = [tokenizer.encode("To be, or not"), tokenizer.encode("Whether 'tis ")]
    text = "To be, or"
    case = {"kind": "causal-lm", "auto": "AutoModelForCausalLM", "ids": ids, "text": text}
    case["folder"] = str(tmp_path / "gpt-hub")

    def check(stock):
        assert stock["class"] == "GPT2LMHeadModel"
        ours = torch.tensor(ids)
        with torch.no_grad():
            difference = (torch.tensor(stock["logits"]) - model(ours).logits).abs().max().item()
        assert difference < TOLERANCE
        assert (
            stock["greedy"]
            == generate(model, ours[:1], max_new_tokens=12, temperature=0.0).tolist()
        )
        assert stock["encoded"] == tokenizer.encode(text)
        continued = generate(
            model, torch.tensor([tokenizer.encode(text)]), max_new_tokens=5, temperature=0.0
        )
        assert stock["pipeline"] == tokenizer.decode(continued[0].tolist())
        return difference

    return case, check


def bert_cases(tmp_path):
    try:  # BERT and its BPE tokenizer land separately from the export code
        from seqkit.data import train_tokenizer
        from seqkit.models import bert
    except ImportError:
        return []

    tokenizer = train_tokenizer("bpe", CORPUS * 8, vocab_size=300)
    mask, cls, sep = tokenizer.mask_token_id, tokenizer.cls_token_id, tokenizer.sep_token_id
    mask_token = tokenizer.special_token_roles["mask"]
    cases = []
    for head, kind, auto, text in (
        ("BertForMaskedLM", "masked-lm", "AutoModelForMaskedLM", f"To be, or {mask_token} to be"),
        ("BertForSequenceClassification", "classifier", "AutoModelForSequenceClassification",
         "Whether 'tis nobler"),
    ):  # fmt: skip
        torch.manual_seed(0)
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
        model = large(getattr(bert, head)(config))
        source, out = tmp_path / head, tmp_path / f"{head}-hub"
        model.save_pretrained(source)
        tokenizer.save_pretrained(source)
        export_model(source, out)  # BERT's default: the stock class of the same head
        framed = [cls, *tokenizer.encode(text), sep]
        ids = [framed]
        case = {"kind": kind, "auto": auto, "ids": ids, "text": text, "folder": str(out)}

        def check(stock, model=model, head=head, kind=kind, framed=framed, ids=ids):
            assert stock["class"] == head
            with torch.no_grad():
                logits = model(torch.tensor(ids)).logits
                framed_logits = model(torch.tensor([framed])).logits
            difference = (torch.tensor(stock["logits"]) - logits).abs().max().item()
            assert difference < TOLERANCE
            assert stock["encoded"] == framed  # AutoTokenizer adds [CLS] … [SEP] like seqkit
            if kind == "masked-lm":
                top = framed_logits[0, framed.index(mask)].topk(3).indices.tolist()
                assert stock["pipeline"] == top
            else:
                probabilities = framed_logits[0].softmax(-1)
                assert stock["pipeline"]["label"] == f"LABEL_{int(probabilities.argmax())}"
                assert stock["pipeline"]["score"] == pytest.approx(float(probabilities.max()))
            return difference

        cases.append((case, check))
    return cases


def test_exports_work_in_stock_transformers_without_seqkit(tmp_path):
    cases = [gpt_case(tmp_path), *bert_cases(tmp_path)]
    process = subprocess.run(
        [sys.executable, "-c", WITHOUT_SEQKIT, json.dumps([case for case, _ in cases])],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"},
    )
    assert process.returncode == 0, process.stderr[-3000:]
    results = json.loads(process.stdout.strip().splitlines()[-1])
    assert len(results) == len(cases)
    for (case, check), stock in zip(cases, results, strict=True):
        difference = check(stock)
        print(f"largest logit difference, {case['kind']}, stock {stock['class']}: {difference:.1e}")
