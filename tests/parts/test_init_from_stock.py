"""``model.init_from`` a stock ``transformers`` folder or a Hub name: GPT-2 (``gpt``), BERT
(``bert``, masked LM and a classifier with a new head) and Llama (``decoder``), converted on
load with their tokenizers and their config's sizes, trained 3 steps by ``seqkit train``,
exported back with ``seqkit export --format transformers``; logits equal within 1e-4 at both
ends. Stock folders are built here by ``save_pretrained`` (nothing is downloaded), Hub names
are read from a Hub cache laid out by hand."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
import torch
import transformers
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from tokenizers import trainers as tokenizer_trainers

from seqkit.cli import main
from seqkit.data import BPETokenizer, load_tokenizer
from seqkit.data.stock_tokenizer import StockTokenizer
from seqkit.errors import UserError
from seqkit.parts.compose import build_job
from seqkit.parts.model_folder import load_folder
from seqkit.parts.pretrained import resolve_init_from
from seqkit.parts.resolve import load_recipe
from seqkit.recipes import RECIPES_DIR

pytestmark = pytest.mark.usefixtures("one_thread")

TEXT = "the return of the king. return x of the loop, then return the value.\n" * 40
LOOP = [
    "--set", "trainer.max_steps=3", "--set", "trainer.batch_size=2",
    "--set", "trainer.eval_every=0", "--set", "trainer.save_every=0",
    "--set", "trainer.eval_batches=1", "--set", "trainer.warmup_steps=1",
    "--set", "trainer.progress_bar=false", "--set", "trainer.report_to=[]",
    "--set", "trainer.lr=1e-2",
]  # fmt: skip
TOLERANCE = {"atol": 1e-4, "rtol": 0}


# ----------------------------------------------------------------------------- stock folders


def stock_gpt2(folder: Path, **sizes) -> Path:
    """A stock GPT-2 folder as the Hub has it: byte-level BPE whose one special token
    ``<|endoftext|>`` no tokenizer_config.json names, and ``gelu_pytorch_tanh``."""
    tokenizer = BPETokenizer.train(TEXT, 300, ["<|endoftext|>"])
    tokenizer.save_pretrained(folder)
    (folder / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 1024}))
    eos = tokenizer.token_to_id("<|endoftext|>")
    config = transformers.GPT2Config(
        vocab_size=tokenizer.vocab_size, n_positions=32, n_embd=16, n_layer=2, n_head=2,
        activation_function="gelu_pytorch_tanh", bos_token_id=eos, eos_token_id=eos, **sizes,
    )  # fmt: skip
    torch.manual_seed(0)
    transformers.GPT2LMHeadModel(config).save_pretrained(folder)
    return folder


def wordpiece_tokenizer(folder: Path) -> int:
    """A lower-casing WordPiece tokenizer (BERT's pieces) saved as the Hub's
    bert-base-uncased is: its tokenizer_config.json names no special token."""
    words = sorted(set(TEXT.lower().replace(".", " ").replace(",", " ").split()))
    letters = "abcdefghijklmnopqrstuvwxyz.,"
    vocab = list(dict.fromkeys(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *letters,
                                *("##" + c for c in letters), *words]))  # fmt: skip
    backend = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)],
    )
    transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]",
    ).save_pretrained(folder)  # fmt: skip
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True}))
    return len(vocab)


def stock_bert(folder: Path, head: str) -> Path:
    vocab_size = wordpiece_tokenizer(folder)
    config = transformers.BertConfig(
        vocab_size=vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=64,
    )  # fmt: skip
    torch.manual_seed(0)
    getattr(transformers, head)(config).save_pretrained(folder)
    return folder


def stock_llama(folder: Path) -> Path:
    """A Llama folder with a SentencePiece-style BPE (Metaspace pre-tokens, not byte-level)."""
    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    backend.decoder = decoders.Metaspace()
    trainer = tokenizer_trainers.BpeTrainer(
        vocab_size=120, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False
    )
    backend.train_from_iterator([TEXT], trainer=trainer)
    transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    ).save_pretrained(folder)
    config = transformers.LlamaConfig(
        vocab_size=backend.get_vocab_size(), hidden_size=16, intermediate_size=32,
        num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
        max_position_embeddings=32, bos_token_id=1, eos_token_id=2, tie_word_embeddings=False,
    )  # fmt: skip
    torch.manual_seed(0)
    transformers.LlamaForCausalLM(config).save_pretrained(folder)
    return folder


# ----------------------------------------------------------------------------- helpers


def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def logits(model, ids: torch.Tensor, **kwargs) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(input_ids=ids, **kwargs).logits


def train_and_export(recipe: str, tmp_path: Path, *settings: str) -> tuple[Path, Path]:
    run, out = tmp_path / "run", tmp_path / "exported"
    sets = [item for setting in settings for item in ("--set", setting)]
    assert main(["train", str(RECIPES_DIR / recipe), *LOOP, *sets, "--output-dir", str(run)]) == 0
    assert main(["export", str(run), str(out), "--format", "transformers"]) == 0
    return run / "final", out


# ----------------------------------------------------------------------------- GPT-2


def test_gpt2_folder_fine_tunes_and_exports_back(tmp_path, caplog):
    folder = stock_gpt2(tmp_path / "gpt2")
    stock = transformers.GPT2LMHeadModel.from_pretrained(folder)
    ids = torch.tensor([[5, 17, 42, 99, 250, 3]])
    recipe = load_recipe(
        RECIPES_DIR / "gpt/shakespeare-char.yaml",
        [
            f"model.init_from={folder}",
            f"data.path={corpus(tmp_path)}",
            "data.block_size=16",
            "sample.prompt=the",
        ],
    )
    with caplog.at_level(logging.WARNING, logger="seqkit"):
        job = build_job(recipe, tmp_path / "unused")
    model = job.task.models["model"]
    # The folder's sizes, not the recipe's (4 layers x 128); the recipe's are named as ignored.
    assert (model.config.n_layer, model.config.n_embd, model.config.n_positions) == (2, 16, 32)
    assert model.config.activation_function == "gelu_new"
    assert "model.n_layer 4 (the model's: 2)" in caplog.text
    assert "model.block_size 64 (the model's: 32)" in caplog.text
    assert job.summary["model"]["n_layer"] == 2  # what the run prints is the model it trains
    # The recipe's dropout (0.0) applies, as nanoGPT's override does; the folder's was 0.1.
    assert (model.config.resid_pdrop, model.config.attn_pdrop) == (0.0, 0.0)
    assert "dropout" not in caplog.text
    torch.testing.assert_close(logits(model, ids), logits(stock, ids), **TOLERANCE)
    assert job.summary["vocabulary"] == f"{stock.config.vocab_size} (bpe)"

    final, exported = train_and_export(
        "gpt/shakespeare-char.yaml", tmp_path, f"model.init_from={folder}",
        f"data.path={corpus(tmp_path)}", "data.block_size=16", "sample.prompt=the",
        "sample.max_new_tokens=4",
    )  # fmt: skip
    trained = load_folder(final).model
    assert not torch.allclose(logits(trained, ids), logits(stock, ids), atol=1e-3)  # it trained
    back = transformers.GPT2LMHeadModel.from_pretrained(exported)
    torch.testing.assert_close(logits(back, ids), logits(trained, ids), **TOLERANCE)
    tokenizer = transformers.AutoTokenizer.from_pretrained(exported)
    assert tokenizer("the return")["input_ids"] == load_tokenizer(folder).encode("the return")

    # Fine-tuning goes on from the seqkit run (its final/): sizes the recipe leaves out are the
    # folder's, sizes it sets must be.
    again = [f"model.init_from={final.parent}", f"data.path={corpus(tmp_path)}",
             "data.block_size=16"]  # fmt: skip
    recipe = load_recipe(RECIPES_DIR / "gpt/shakespeare-finetune-gpt2.yaml", again)
    model = build_job(recipe, tmp_path / "again").task.models["model"]
    torch.testing.assert_close(logits(model, ids), logits(trained, ids), **TOLERANCE)
    with pytest.raises(UserError, match=r"another model than the recipe.s \(model\.n_layer 3 vs 2"):
        build_job(load_recipe(recipe.source, [*again, "model.n_layer=3"]), tmp_path / "again")


@pytest.mark.slow
def test_a_gpt2_124m_shaped_folder_converts_with_equal_logits(tmp_path):
    from seqkit.export.gpt import load_stock_gpt2

    folder = tmp_path / "gpt2-124m"
    config = transformers.GPT2Config(activation_function="gelu_pytorch_tanh")  # GPT-2 small
    assert (config.n_layer, config.n_embd, config.n_head, config.vocab_size,
            config.n_positions) == (12, 768, 12, 50257, 1024)  # fmt: skip
    torch.manual_seed(0)
    stock = transformers.GPT2LMHeadModel(config).eval()
    stock.save_pretrained(folder)
    # A byte-level BPE of exactly GPT-2's size: 256 bytes, 50,000 merges, <|endoftext|>.
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    alphabet.sort()
    pairs = [(a, b) for a in alphabet for b in alphabet][:50000]
    vocab = {c: i for i, c in enumerate(alphabet)}
    vocab.update({a + b: 256 + i for i, (a, b) in enumerate(pairs)})
    backend = Tokenizer(models.BPE(vocab, pairs))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(["<|endoftext|>"])
    BPETokenizer(backend).save_pretrained(folder)
    model, tokenizer = load_stock_gpt2(folder)
    assert tokenizer.vocab_size == 50257 and model.num_parameters() == stock.num_parameters()
    ids = torch.tensor([tokenizer.encode("Hello, world! GPT-2 small.")])
    torch.testing.assert_close(logits(model, ids), logits(stock, ids), **TOLERANCE)


# ----------------------------------------------------------------------------- BERT


def test_bert_mlm_folder_fine_tunes_and_exports_back(tmp_path, caplog):
    folder = stock_bert(tmp_path / "bert", "BertForMaskedLM")
    tokenizer = load_tokenizer(folder)
    assert isinstance(tokenizer, StockTokenizer)  # WordPiece, its roles by BERT's spellings
    assert (tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id,
            tokenizer.mask_token_id) == (2, 3, 0, 4)  # fmt: skip
    stock = transformers.BertForMaskedLM.from_pretrained(folder)
    ids = torch.tensor([[2, *tokenizer.encode("The return of X"), 4, 3]])
    settings = [f"model.init_from={folder}", f"data.path={corpus(tmp_path)}",
                "data.max_length=16"]  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="seqkit"):
        job = build_job(load_recipe(RECIPES_DIR / "bert/pydoc-mlm.yaml", settings), tmp_path / "x")
    assert "model.hidden_size 128 (the model's: 16)" in caplog.text
    model = job.task.models["model"]
    torch.testing.assert_close(logits(model, ids), logits(stock, ids), **TOLERANCE)

    final, exported = train_and_export("bert/pydoc-mlm.yaml", tmp_path, *settings)
    trained = load_folder(final).model
    # The run stands alone: its saved tokenizer keeps the WordPiece vocabulary and its roles.
    saved = load_tokenizer(final.parent / "model")
    assert isinstance(saved, StockTokenizer)
    assert saved.special_token_roles == tokenizer.special_token_roles
    assert saved.encode("The return of X") == tokenizer.encode("The return of X")
    back = transformers.BertForMaskedLM.from_pretrained(exported)
    torch.testing.assert_close(logits(back, ids), logits(trained, ids), **TOLERANCE)
    # The exported tokenizer frames text once, as the folder's own did.
    stock_ids = transformers.AutoTokenizer.from_pretrained(exported)("the king")["input_ids"]
    assert stock_ids == [2, *tokenizer.encode("the king"), 3]


@pytest.mark.parametrize("head", ["BertModel", "BertForMaskedLM"])
def test_bert_classifier_from_a_stock_encoder_gets_a_new_head(head, tmp_path):
    folder = stock_bert(tmp_path / "bert", head)
    stock = transformers.BertModel.from_pretrained(folder)  # the encoder, whatever the head
    labelled = tmp_path / "labelled.tsv"
    labelled.write_text(
        "".join(f"{'code' if i % 2 else 'prose'}\treturn x of the loop {i}\n" for i in range(40))
    )
    settings = [f"model.init_from={folder}", f"data.path={labelled}", "data.max_length=16",
                "data.train_examples=20"]  # fmt: skip
    recipe = RECIPES_DIR / "bert/pydoc-prose-or-code-classifier.yaml"
    model = build_job(load_recipe(recipe, settings), tmp_path / "x").task.models["model"]
    assert model.config.id2label == {0: "code", 1: "prose"}
    ids = torch.tensor([[2, 40, 41, 42, 3]])
    with torch.no_grad():
        ours = model.eval().bert(input_ids=ids).last_hidden_state
        theirs = stock.eval()(input_ids=ids).last_hidden_state
    torch.testing.assert_close(ours, theirs, **TOLERANCE)

    final, exported = train_and_export(
        "bert/pydoc-prose-or-code-classifier.yaml", tmp_path, *settings
    )
    trained = load_folder(final).model
    back = transformers.BertForSequenceClassification.from_pretrained(exported)
    torch.testing.assert_close(logits(back, ids), logits(trained, ids), **TOLERANCE)


# ----------------------------------------------------------------------------- Llama


def test_llama_folder_fine_tunes_as_the_decoder_and_exports_back(tmp_path):
    folder = stock_llama(tmp_path / "llama")
    stock = transformers.LlamaForCausalLM.from_pretrained(folder)
    tokenizer = load_tokenizer(folder)
    assert isinstance(tokenizer, StockTokenizer) and tokenizer.eos_token_id == 2
    ids = torch.tensor([tokenizer.encode("the return of the loop")])
    settings = [f"model.init_from={folder}", f"data.path={corpus(tmp_path)}",
                "data.block_size=16", "sample.prompt=the", "sample.max_new_tokens=4"]  # fmt: skip
    job = build_job(load_recipe(RECIPES_DIR / "decoder/shakespeare-char.yaml", settings), tmp_path)
    model = job.task.models["model"]
    assert (model.config.n_layer, model.config.n_kv_head) == (2, 1)
    torch.testing.assert_close(logits(model, ids), logits(stock, ids), **TOLERANCE)

    final, exported = train_and_export("decoder/shakespeare-char.yaml", tmp_path, *settings)
    trained = load_folder(final).model
    assert type(load_folder(folder).model) is type(trained)  # generate/evaluate read it too
    back = transformers.LlamaForCausalLM.from_pretrained(exported)
    torch.testing.assert_close(logits(back, ids), logits(trained, ids), **TOLERANCE)


def test_a_stock_folder_of_another_architecture_is_named(tmp_path, capsys):
    folder = stock_llama(tmp_path / "llama")
    code = main(["train", str(RECIPES_DIR / "gpt/shakespeare-char.yaml"), *LOOP,
                 "--set", f"model.init_from={folder}", "--set", f"data.path={corpus(tmp_path)}",
                 "--output-dir", str(tmp_path / "run")])  # fmt: skip
    assert code == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "holds a 'llama' model, not a seqkit gpt one (model.architecture decoder trains it)" in (
        line
    )


# ----------------------------------------------------------------------------- Hub names


def hub_cache(root: Path, name: str, folder: Path) -> Path:
    """``folder`` laid out as the Hub cache keeps a downloaded model: the files under
    ``models--ORG--NAME/snapshots/REVISION/`` and the revision in ``refs/main``."""
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo = root / f"models--{name.replace('/', '--')}"
    shutil.copytree(folder, repo / "snapshots" / revision)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    return repo / "snapshots" / revision


@pytest.fixture
def offline_cache(tmp_path, monkeypatch) -> Path:
    from huggingface_hub import constants

    root = tmp_path / "hub"
    root.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(root))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return root


def test_a_hub_name_in_the_cache_loads_offline(tmp_path, offline_cache):
    # The shipped fine-tuning recipe, unchanged but for its data, with the Hub name it names
    # cached: a tiny model stands in for GPT-2 small.
    name = "openai-community/gpt2"
    snapshot = hub_cache(offline_cache, name, stock_gpt2(tmp_path / "gpt2"))
    assert resolve_init_from(name) == snapshot
    recipe = load_recipe(
        RECIPES_DIR / "gpt/shakespeare-finetune-gpt2.yaml",
        [f"data.path={corpus(tmp_path)}", "data.block_size=16"],
    )
    assert recipe.model["init_from"] == name  # what the run records
    job = build_job(recipe, tmp_path / "run")
    assert job.task.models["model"].config.n_layer == 2


def test_a_hub_name_not_in_the_cache_offline_is_one_line(tmp_path, offline_cache, capsys):
    with pytest.raises(UserError, match=r"tiny-org/missing' is not in the Hub cache \(HF_HUB_OFF"):
        resolve_init_from("tiny-org/missing")
    code = main(["train", str(RECIPES_DIR / "gpt/shakespeare-char.yaml"),
                 "--set", "model.init_from=tiny-org/missing",
                 "--output-dir", str(tmp_path / "run")])  # fmt: skip
    assert code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "is not in the Hub cache (HF_HUB_OFFLINE is set)" in lines[0]
    assert not (tmp_path / "run").exists()
    with pytest.raises(UserError, match="neither a folder nor a Hub model name"):
        resolve_init_from(str(tmp_path / "no" / "such" / "folder"))


def test_without_a_network_the_cache_still_serves(tmp_path, offline_cache, monkeypatch):
    from huggingface_hub import constants

    import seqkit.data.corpora

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(seqkit.data.corpora, "hub_reachable", lambda: False)
    snapshot = hub_cache(offline_cache, "tiny-org/tiny-gpt2", stock_gpt2(tmp_path / "gpt2"))
    assert resolve_init_from("tiny-org/tiny-gpt2") == snapshot
    with pytest.raises(UserError, match=r"not in the Hub cache \(the Hub is not reachable\)"):
        resolve_init_from("tiny-org/missing")
