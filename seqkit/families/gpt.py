"""The ``gpt`` family: a GPT language model trained on a text corpus.

Recipe → corpus (local file, Hub data set or embedded default) → tokenizer (trained on the corpus
or loaded) → token stream split into train and validation tails → windows of ``block_size`` →
:class:`~seqkit.models.gpt.GPTLMHeadModel` trained by the Trainer as a language-modeling task.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from transformers import GenerationConfig

from seqkit.checks import (
    MAX_DEPTH,
    MAX_POSITIONS,
    MAX_WIDTH,
    check_choice,
    check_ranges,
    count,
    probability,
)
from seqkit.data import (
    CausalLMDataset,
    CharTokenizer,
    Tokenizer,
    encode_corpus,
    load_corpus,
    load_tokenizer,
    split_tail,
    train_tokenizer,
)
from seqkit.errors import UserError
from seqkit.export.model_card import write_model_card
from seqkit.families import Job, load_init_from
from seqkit.generation import generate
from seqkit.models.gpt import GPTConfig, GPTLMHeadModel
from seqkit.recipes import Recipe, SampleSection, recipe_to_dict
from seqkit.trainer.tasks import LanguageModelingTask

MODEL_TYPES = (GPTConfig.model_type, "gpt2")
"""``gpt2``: a stock ``transformers`` GPT-2 folder, converted on load (seqkit.export.gpt)."""
ATTENTION_PATHS = ("sdpa", "explicit")


@dataclass
class ModelSection:
    """The ``model`` section of a ``gpt`` recipe."""

    n_layer: int = 4
    """Transformer blocks."""
    n_head: int = 4
    """Attention heads per block."""
    n_embd: int = 128
    """Width of the residual stream; must be divisible by n_head."""
    block_size: int = 64
    """Context length in tokens (learned position embeddings stop here)."""
    dropout: float = 0.0
    """Dropout on embeddings, attention probabilities and residual branches."""
    attention: str = "sdpa"
    """sdpa (fused kernel, default) or explicit (the readable path, proven equal by a test)."""
    init_from: str | None = None
    """A GPT folder (a run's final/) to start from instead of random weights: fine-tuning."""

    def __post_init__(self) -> None:
        check_ranges(
            "model",
            self,
            {
                "n_layer": count(1, MAX_DEPTH),
                "n_head": count(1, MAX_DEPTH),
                "n_embd": count(1, MAX_WIDTH),
                "block_size": count(1, MAX_POSITIONS),
                "dropout": probability(),
            },
        )
        check_choice("model.attention", self.attention, ATTENTION_PATHS)
        if self.n_embd % self.n_head:
            raise UserError(
                f"model.n_embd ({self.n_embd}) must be divisible by model.n_head ({self.n_head})"
            )


def _tokenizer_for(recipe: Recipe, section: ModelSection, text: str) -> Tokenizer:
    """The model's own tokenizer when fine-tuning, else a saved folder, else one trained on the
    corpus (``tokenizer.kind``: char, or bpe with ``tokenizer.vocab_size`` tokens)."""
    if section.init_from:
        return load_tokenizer(Path(section.init_from))
    if recipe.tokenizer.path:
        return load_tokenizer(Path(recipe.tokenizer.path))  # the folder says which kind it is
    if recipe.tokenizer.kind == "bpe" and recipe.tokenizer.vocab_size is None:
        raise UserError("tokenizer.kind bpe needs tokenizer.vocab_size (e.g. 1024)")
    return train_tokenizer(recipe.tokenizer.kind, text, vocab_size=recipe.tokenizer.vocab_size)


def _model_for(section: ModelSection, vocab_size: int) -> GPTLMHeadModel:
    if section.init_from:
        return _pretrained_for(section, Path(section.init_from))
    config = GPTConfig(
        vocab_size=vocab_size,
        n_positions=section.block_size,
        n_embd=section.n_embd,
        n_layer=section.n_layer,
        n_head=section.n_head,
        resid_pdrop=section.dropout,
        embd_pdrop=section.dropout,
        attn_pdrop=section.dropout,
        attention=section.attention,
    )
    return GPTLMHeadModel(config)


def _pretrained_for(section: ModelSection, folder: Path) -> GPTLMHeadModel:
    """The GPT in ``folder`` for fine-tuning, of exactly the recipe's size (see
    :func:`seqkit.families.load_init_from`)."""
    sizes = {"n_layer": section.n_layer, "n_head": section.n_head, "n_embd": section.n_embd}
    model = load_init_from(
        folder,
        GPTLMHeadModel,
        "seqkit GPT",
        {**sizes, "n_positions": section.block_size},
        recipe_names={"n_positions": "block_size"},
    )
    model.config.attention = section.attention
    return model


def build(recipe: Recipe, section: ModelSection) -> Job:
    """Load and tokenize the corpus, build the model, and wrap both for the Trainer."""
    text = load_corpus(recipe.data)
    tokenizer = _tokenizer_for(recipe, section, text)
    ids = encode_corpus(tokenizer, text)
    # Checked now, not after training: the sample prompt must be spelled in this vocabulary.
    tokenizer.encode(recipe.sample.prompt, what="sample.prompt")
    torch.manual_seed(recipe.trainer.seed)  # the same seed gives the same initial weights
    model = _model_for(section, tokenizer.vocab_size)
    block_size = recipe.data.block_size or model.config.n_positions
    if block_size > model.config.n_positions:
        raise UserError(
            f"data.block_size ({block_size}) exceeds the model's context "
            f"({model.config.n_positions})"
        )
    if model.config.vocab_size != tokenizer.vocab_size:
        raise UserError(
            f"tokenizer has {tokenizer.vocab_size} tokens but the model expects "
            f"{model.config.vocab_size}"
        )
    if recipe.data.val_fraction > 0:
        train_ids, val_ids = split_tail(ids, recipe.data.val_fraction, block_size)
        # Validation windows do not overlap, so every validation token is scored once.
        eval_data = CausalLMDataset(val_ids, block_size, stride=block_size)
    else:
        train_ids, eval_data = ids, None
    train_data = CausalLMDataset(train_ids, block_size, stride=recipe.data.stride)

    is_char = isinstance(tokenizer, CharTokenizer)

    def save_final(folder: Path, metrics: dict[str, float], run_dir: Path) -> None:
        save_pretrained(model, tokenizer, folder)
        write_model_card(
            folder,
            title=f"seqkit GPT ({recipe.source.stem if recipe.source else 'recipe'})",
            family="gpt",
            num_parameters=model.num_parameters(),
            recipe=recipe_to_dict(recipe),
            metrics=metrics,
            datasets=[recipe.data.hub] if recipe.data.hub and not recipe.data.path else [],
            loss_plot=run_dir / "loss.png" if (run_dir / "loss.png").is_file() else None,
            tags=["gpt", "causal-lm", "character-level" if is_char else "byte-level-bpe"],
            pipeline_tag="text-generation",
            how_to_load=HOW_TO_LOAD,
        )

    def sample() -> str:
        return sample_text(model, tokenizer, recipe.sample, seed=recipe.trainer.seed)

    return Job(
        task=LanguageModelingTask(model),
        sample=sample,
        train_data=train_data,
        eval_data=eval_data,
        save_final=save_final,
        summary={
            "corpus characters": len(text),
            "vocabulary": f"{tokenizer.vocab_size} ({'char' if is_char else 'bpe'})",
            "train tokens": len(train_ids),
            "parameters": model.num_parameters(),
            "model": asdict(section),
        },
    )


HOW_TO_LOAD = """\
import seqkit.models.gpt  # registers the seqkit-gpt model type with the Auto classes
from transformers import AutoModelForCausalLM
from seqkit.data import load_tokenizer

model = AutoModelForCausalLM.from_pretrained("PATH")
tokenizer = load_tokenizer("PATH")  # or transformers.AutoTokenizer.from_pretrained("PATH")
# or, from the command line: seqkit generate PATH --prompt "To be"
"""


def save_pretrained(model: GPTLMHeadModel, tokenizer: Tokenizer, folder: Path) -> None:
    """Write weights, config, tokenizer and generation defaults as a Hub folder."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    GenerationConfig(
        do_sample=True, temperature=0.8, max_new_tokens=200, top_k=None, top_p=None
    ).save_pretrained(folder)


def sample_text(
    model: GPTLMHeadModel, tokenizer: Tokenizer, settings: SampleSection, seed: int
) -> str:
    """Continue ``settings.prompt``; the prompt keeps only the last context-length tokens."""
    ids = tokenizer.encode(settings.prompt)[-model.config.n_positions :]
    output = generate(
        model,
        torch.tensor([ids], dtype=torch.long),
        max_new_tokens=settings.max_new_tokens,
        temperature=settings.temperature,
        top_k=settings.top_k,
        top_p=settings.top_p,
        generator=torch.Generator().manual_seed(seed),
    )
    return tokenizer.decode(output[0].tolist())


def load_pretrained(folder: Path) -> tuple[GPTLMHeadModel, Tokenizer]:
    """``(model, tokenizer)`` from a folder written by :func:`save_pretrained`, or from a stock
    GPT-2 folder (converted into seqkit's classes)."""
    from seqkit.folders import check_vocabulary, load_weights, read_config

    if read_config(folder)["model_type"] == "gpt2":
        from seqkit.export.gpt import load_stock_gpt2

        return load_stock_gpt2(folder)
    model = load_weights(GPTLMHeadModel, folder)
    tokenizer = load_tokenizer(folder)
    check_vocabulary(folder, tokenizer.vocab_size, model.config.vocab_size)
    return model, tokenizer


def evaluate(folder: Path, run_dir: Path | None, args) -> dict[str, float]:
    """Validation loss (nats per token) and perplexity of the model in ``folder`` on the
    validation tail of its run's corpus, every token scored once (non-overlapping windows)."""
    import math

    from seqkit.families import data_section_for
    from seqkit.recipes import load_recipe

    if run_dir is None:
        raise UserError(
            f"{folder} is not inside a run directory; evaluate needs the run's recipe.yaml to "
            "find its validation data"
        )
    recipe = load_recipe(run_dir / "recipe.yaml", data_section_for=data_section_for)
    model, tokenizer = load_pretrained(folder)
    model.eval()
    ids = encode_corpus(tokenizer, load_corpus(recipe.data))
    block_size = min(recipe.data.block_size or model.config.n_positions, model.config.n_positions)
    if recipe.data.val_fraction <= 0:
        raise UserError(f"{run_dir}'s recipe keeps no validation data (data.val_fraction is 0)")
    _, val_ids = split_tail(ids, recipe.data.val_fraction, block_size)
    windows = CausalLMDataset(val_ids, block_size, stride=block_size)
    batch_size = args.batch_size or recipe.trainer.eval_batch_size or recipe.trainer.batch_size
    total, count = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(windows), batch_size):
            rows = [windows[i] for i in range(start, min(start + batch_size, len(windows)))]
            batch = {key: torch.stack([row[key] for row in rows]) for key in rows[0]}
            targets = int((batch["labels"] != -100).sum())
            total += float(model(**batch).loss) * targets
            count += targets
    loss = total / count
    return {"val_loss": loss, "perplexity": math.exp(min(loss, 50.0)), "tokens": count}
