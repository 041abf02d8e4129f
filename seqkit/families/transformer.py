"""The ``transformer`` family: encoder–decoder Transformer translation (Vaswani et al. 2017).

It shares everything but the model with the recurrent ``seq2seq`` family: the same parallel
corpora and ``data`` section (local files such as Multi30k, a Hub data set, or the generated toy
language), word or BPE vocabularies, batches, greedy/beam decoding through
:mod:`seqkit.generation`, and sacreBLEU scoring, so ``seqkit translate`` and ``seqkit evaluate``
treat both alike. With ``model.share_embeddings`` one joint vocabulary is built from both sides
and a single embedding matrix serves source, target and output projection.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from seqkit.checks import MAX_DEPTH, MAX_WIDTH, check_choice, check_ranges, count, probability
from seqkit.data.seq2seq import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    TranslationDataset,
    TranslationTokenizer,
    build_vocab,
    collate_translation,
    example_lengths,
)
from seqkit.errors import UserError
from seqkit.families.seq2seq import (
    DataSection,
    attention_labels,
    check_decoding,
    decoding_defaults,
    load_pairs,
    save_pretrained,  # the same Hub folder: weights, config, vocabularies, decoding defaults
    translate_batch,
    translate_texts,
    vocab_options,
)
from seqkit.families.seq2seq import evaluate as score_translations
from seqkit.parts.base import Job
from seqkit.recipes import Recipe, recipe_to_dict
from seqkit.trainer.tasks import LanguageModelingTask

MODEL_TYPES = ("seqkit-transformer",)
# What `seqkit translate` and `seqkit evaluate` look for; the decoding helpers are seq2seq's.
__all__ = [
    "DataSection",
    "ModelSection",
    "attention_labels",
    "build",
    "decoding_defaults",
    "evaluate",
    "load_pretrained",
    "translate_batch",
]


@dataclass
class ModelSection:
    """The ``model`` section of a ``transformer`` recipe (defaults: a small model for CPU)."""

    d_model: int = 256
    """Width of every layer."""
    n_head: int = 8
    """Attention heads; must divide d_model."""
    num_encoder_layers: int = 3
    """Encoder layers."""
    num_decoder_layers: int = 3
    """Decoder layers."""
    d_ff: int = 512
    """Feed-forward hidden width."""
    dropout: float = 0.1
    """Dropout on embeddings and sub-layer outputs."""
    attention_dropout: float = 0.0
    """Dropout on attention probabilities."""
    position_encoding: str = "sinusoidal"
    """sinusoidal (the paper) or learned."""
    norm_position: str = "post"
    """post (the paper) or pre (LayerNorm before each sub-layer; easier to train deep)."""
    share_embeddings: bool = False
    """Build one joint vocabulary and share the source/target/output embedding."""
    label_smoothing: float = 0.1
    """ε_ls of the training loss."""
    attention: str = "sdpa"
    """sdpa (fused kernel, default) or explicit (the formula written out)."""
    beam_size: int = 1
    """Default beam width of translate and evaluate (1 = greedy)."""
    length_penalty: float = 1.0
    """Beam search ranks by log-prob / length ** length_penalty."""
    max_length: int = 64
    """Most tokens generated per sentence."""

    def __post_init__(self) -> None:
        checks = {
            "position_encoding": (self.position_encoding, ("sinusoidal", "learned")),
            "norm_position": (self.norm_position, ("post", "pre")),
            "attention": (self.attention, ("sdpa", "explicit")),
        }
        for name, (value, valid) in checks.items():
            check_choice(f"model.{name}", value, valid)
        check_ranges(
            "model",
            self,
            {
                "d_model": count(2, MAX_WIDTH),
                "n_head": count(1, MAX_DEPTH),
                "num_encoder_layers": count(1, MAX_DEPTH),
                "num_decoder_layers": count(1, MAX_DEPTH),
                "d_ff": count(1, MAX_WIDTH),
                "dropout": probability(),
                "attention_dropout": probability(),
                "label_smoothing": probability(),
            },
        )
        if self.d_model % 2:  # sinusoidal encodings pair a sine with a cosine
            raise UserError(f"model.d_model must be even, got {self.d_model}")
        if self.d_model % self.n_head:
            raise UserError(
                f"model.d_model ({self.d_model}) must be divisible by model.n_head ({self.n_head})"
            )
        check_decoding("model.", self.beam_size, self.length_penalty, self.max_length)


def _tokenizer_for(data: DataSection, section: ModelSection, train_pairs) -> TranslationTokenizer:
    sources = [s for s, _ in train_pairs]
    targets = [t for _, t in train_pairs]
    options = vocab_options(data)
    if section.share_embeddings:
        joint = build_vocab(sources + targets, **options)  # one vocabulary for both languages
        return TranslationTokenizer(joint, joint, data.source_lang, data.target_lang)
    return TranslationTokenizer(
        build_vocab(sources, **options),
        build_vocab(targets, **options),
        data.source_lang,
        data.target_lang,
    )


def build(recipe: Recipe, section: ModelSection) -> Job:
    """Load the pairs, build the vocabularies and the Transformer, wrap them for the Trainer."""
    from seqkit.export.model_card import write_model_card
    from seqkit.models.transformer import TransformerConfig, TransformerForSeq2Seq

    data: DataSection = recipe.data  # type: ignore[assignment]
    train_pairs, val_pairs = load_pairs(data, seed=recipe.trainer.seed)
    tokenizer = _tokenizer_for(data, section, train_pairs)
    lengths = (data.max_source_length, data.max_target_length)
    train_data = TranslationDataset(train_pairs, tokenizer, *lengths)
    eval_data = TranslationDataset(val_pairs, tokenizer, *lengths) if val_pairs else None
    if len(train_data) == 0:
        raise UserError("every training pair has an empty side; nothing to train on")
    torch.manual_seed(recipe.trainer.seed)
    config = TransformerConfig(
        src_vocab_size=tokenizer.source.vocab_size,
        tgt_vocab_size=tokenizer.target.vocab_size,
        share_embeddings=section.share_embeddings,
        d_model=section.d_model,
        n_head=section.n_head,
        num_encoder_layers=section.num_encoder_layers,
        num_decoder_layers=section.num_decoder_layers,
        d_ff=section.d_ff,
        dropout=section.dropout,
        attention_dropout=section.attention_dropout,
        # Room for the longest source, and for the longest target the decoder may generate.
        max_position_embeddings=max(
            data.max_source_length, data.max_target_length, section.max_length + 1
        ),
        position_encoding=section.position_encoding,
        norm_position=section.norm_position,
        label_smoothing=section.label_smoothing,
        attention=section.attention,
        pad_token_id=PAD_ID,
        bos_token_id=BOS_ID,
        eos_token_id=EOS_ID,
        decoder_start_token_id=BOS_ID,
    )
    model = TransformerForSeq2Seq(config)

    def save_final(folder: Path, metrics: dict[str, float], run_dir: Path) -> None:
        save_pretrained(model, tokenizer, folder, section)
        write_model_card(
            folder,
            title=f"seqkit Transformer ({recipe.source.stem if recipe.source else 'recipe'})",
            family="transformer",
            num_parameters=model.num_parameters(),
            recipe=recipe_to_dict(recipe),
            metrics=metrics,
            datasets=[data.hub] if data.hub and not data.path else [],
            loss_plot=run_dir / "loss.png" if (run_dir / "loss.png").is_file() else None,
            tags=["transformer", "encoder-decoder", "translation"],
            pipeline_tag="translation",
            how_to_load=HOW_TO_LOAD,
        )

    def sample() -> str:
        shown = val_pairs[:3] or train_pairs[:3]
        model.eval()
        hypotheses = translate_texts(model, tokenizer, [s for s, _ in shown], section.beam_size)
        return "\n".join(
            f"source:    {s}\nreference: {t}\nmodel:     {h}"
            for (s, t), h in zip(shown, hypotheses, strict=True)
        )

    summary = {
        "pairs (train / validation)": f"{len(train_data)} / {len(eval_data or [])}",
        "vocabulary (source / target)": (
            f"{tokenizer.source.vocab_size} / {tokenizer.target.vocab_size}"
            + (" (joint, shared embeddings)" if section.share_embeddings else "")
        ),
        "unknown words (train)": train_data.unknown,
        "truncated pairs (train)": train_data.truncated,
        "parameters": model.num_parameters(),
        "model": asdict(section),
    }
    return Job(
        task=LanguageModelingTask(model),  # loss + perplexity of the reference translations
        train_data=train_data,
        eval_data=eval_data,
        collate_fn=collate_translation,
        save_final=save_final,
        sample=sample,
        summary=summary,
        train_lengths=example_lengths(train_data) if data.bucket_by_length else None,
    )


HOW_TO_LOAD = """\
from seqkit.families.transformer import load_pretrained
from seqkit.families.seq2seq import translate_texts

model, tokenizer = load_pretrained("PATH")
print(translate_texts(model, tokenizer, ["Ein Hund läuft im Schnee."], beam_size=5))
# or, from the command line: seqkit translate PATH --text "Ein Hund läuft im Schnee." --beam-size 5
"""


def load_pretrained(folder: Path):
    """``(model, tokenizer)`` from a folder written by :func:`save_pretrained`; vocabularies
    that do not match the model's embeddings are a UserError, not a wrong translation."""
    from seqkit.folders import check_model_folder, load_weights, loading, read_config
    from seqkit.models.transformer import TransformerForSeq2Seq

    folder = check_model_folder(Path(folder))
    with loading(f"the vocabularies in {folder}"):
        tokenizer = TranslationTokenizer.from_pretrained(folder)
    config = read_config(folder)
    for side, vocab, key in (
        ("source", tokenizer.source, "src_vocab_size"),
        ("target", tokenizer.target, "tgt_vocab_size"),
    ):
        if config.get(key) != vocab.vocab_size:
            raise UserError(
                f"{folder}: the {side} vocabulary has {vocab.vocab_size} words but the model's "
                f"{side} embedding has {config.get(key)} rows; the folder's files do not belong "
                "together"
            )
    if config.get("share_embeddings") and tokenizer.source.to_dict() != tokenizer.target.to_dict():
        raise UserError(
            f"{folder}: the model shares one embedding between source and target, but the "
            "folder's source and target vocabularies differ"
        )
    model = load_weights(TransformerForSeq2Seq, folder)
    model.eval()
    return model, tokenizer


def evaluate(folder: Path, run_dir: Path | None, args) -> dict:
    """sacreBLEU BLEU (cased, detokenized; and lowercased, the score public Multi30k tutorials
    report) and chrF on ``--source``/``--reference`` files or the run's validation pairs: the
    recurrent family's scoring, with this family's loader."""
    return score_translations(folder, run_dir, args, load=load_pretrained)
