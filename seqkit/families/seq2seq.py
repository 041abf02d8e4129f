"""The ``seq2seq`` family: recurrent encoder–decoder translation, with or without attention.

Recipe → sentence pairs (local parallel files, a Hub data set, or the generated toy language)
→ word vocabularies built on the training side → :class:`~seqkit.models.seq2seq.Seq2SeqModel`
trained by the Trainer on teacher-forced cross-entropy. ``seqkit evaluate`` scores translations
with sacreBLEU (BLEU and chrF); ``seqkit translate`` translates text and plots attention.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from seqkit.checks import (
    MAX_BEAM,
    MAX_DEPTH,
    MAX_LENGTH_PENALTY,
    MAX_POSITIONS,
    MAX_VOCAB,
    MAX_WIDTH,
    check_choice,
    check_optional_range,
    check_range,
    check_ranges,
    count,
    probability,
)
from seqkit.data.seq2seq import (
    VOCAB_KINDS,
    TranslationDataset,
    TranslationTokenizer,
    build_vocab,
    collate_translation,
    encode_sources,
    example_lengths,
    generated_pairs,
    read_hub_pairs,
    read_parallel_files,
    read_parallel_folder,
)
from seqkit.errors import UserError
from seqkit.parts.base import Job
from seqkit.recipes import DataSection as BaseDataSection
from seqkit.recipes import Recipe, recipe_to_dict
from seqkit.trainer.tasks import LanguageModelingTask

MODEL_TYPES = ("seqkit-seq2seq",)
ATTENTION_KINDS = ("none", "bahdanau", "luong-dot", "luong-general")
GENERATED = "generated"
MAX_GENERATED_PAIRS = 10**6
"""Most pairs of the generated corpus (they are all made in memory before training)."""


@dataclass
class DataSection(BaseDataSection):
    """The ``data`` section of a ``seq2seq`` recipe: a parallel corpus.

    ``path`` is a folder with ``train.SRC``/``train.TGT`` and ``val.SRC``/``val.TGT``; ``hub``
    a Hub data set with one column per language; ``embedded: generated`` the toy language pair.
    """

    source_lang: str = "de"
    """Source language: file suffix (train.de) or Hub column."""
    target_lang: str = "en"
    """Target language."""
    hub_val_split: str = "validation"
    """Split of the Hub data set used for validation."""
    tokenizer: str = "word"
    """word (words seen min_freq times, others <unk>) or bpe (byte-level BPE of vocab_size
    tokens, never unknown; one joint vocabulary when the model shares its embeddings)."""
    min_freq: int = 2
    """Word vocabularies: words seen fewer times in the training side become <unk>."""
    vocab_size: int = 8000
    """BPE vocabularies: tokens per vocabulary (256 bytes, 4 specials and the merges)."""
    lowercase: bool = False
    """Lowercase both sides before building the vocabularies."""
    max_source_length: int = 64
    """Longer source sentences are truncated (counted in the summary)."""
    max_target_length: int = 64
    """Longer target sentences are truncated, eos included."""
    generated_pairs: int = 4000
    """Sentence pairs of the generated corpus (embedded: generated); val_fraction of them are
    held out."""
    max_train_pairs: int | None = None
    """Use only the first N training pairs (quick experiments)."""
    bucket_by_length: bool = True
    """Batch pairs of similar length together (shuffled pools sorted by length), so batches
    pad little; false draws every batch at random."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("data.tokenizer", self.tokenizer, VOCAB_KINDS)
        check_ranges(
            "data",
            self,
            {
                "min_freq": count(1, None),
                "vocab_size": count(1, MAX_VOCAB),
                "max_source_length": count(1, MAX_POSITIONS),
                "max_target_length": count(2, MAX_POSITIONS),  # one token and eos
                "generated_pairs": count(1, MAX_GENERATED_PAIRS),
                "max_train_pairs": count(1, None),
            },
        )


@dataclass
class ModelSection:
    """The ``model`` section of a ``seq2seq`` recipe."""

    attention: str = "bahdanau"
    """none (Cho et al. 2014), bahdanau (additive), luong-dot or luong-general."""
    embedding_dim: int = 256
    """Width of the word embeddings."""
    hidden_size: int = 512
    """Decoder GRU width; the bidirectional encoder has hidden_size / 2 per direction."""
    num_layers: int = 1
    """GRU layers in the encoder and in the decoder."""
    dropout: float = 0.3
    """Dropout on embeddings, between layers and before the output layer."""
    teacher_forcing_ratio: float = 1.0
    """Probability of feeding the reference token while training (below 1 is slower)."""
    beam_size: int = 1
    """Default beam width of translate and evaluate (1 = greedy)."""
    length_penalty: float = 1.0
    """Beam search ranks by log-prob / length ** length_penalty."""
    max_length: int = 64
    """Most tokens generated per sentence."""

    def __post_init__(self) -> None:
        check_choice("model.attention", self.attention, ATTENTION_KINDS)
        check_ranges(
            "model",
            self,
            {
                "embedding_dim": count(1, MAX_WIDTH),
                "hidden_size": count(2, MAX_WIDTH),
                "num_layers": count(1, MAX_DEPTH),
                "dropout": probability(),
                "teacher_forcing_ratio": probability(high_open=False),
            },
        )
        if self.hidden_size % 2:  # the bidirectional encoder gives each direction half
            raise UserError(f"model.hidden_size must be even, got {self.hidden_size}")
        check_decoding("model.", self.beam_size, self.length_penalty, self.max_length)


def check_decoding(
    prefix: str, beam_size: int, length_penalty: float | None, max_length: int | None
) -> None:
    """Beam search settings of recipes (``prefix`` ``model.``) and of the translate and
    evaluate options (``--``); None is an option left unset."""

    def name(field: str) -> str:
        return prefix + (field.replace("_", "-") if prefix == "--" else field)

    check_beam_size(beam_size, name("beam_size"))
    check_optional_range(
        name("length_penalty"), length_penalty, -MAX_LENGTH_PENALTY, MAX_LENGTH_PENALTY
    )
    check_optional_range(name("max_length"), max_length, 1, MAX_POSITIONS, integer=True)


def vocab_options(data: DataSection) -> dict:
    """The keyword arguments of :func:`~seqkit.data.seq2seq.build_vocab` a recipe sets."""
    return dict(
        kind=data.tokenizer,
        min_freq=data.min_freq,
        vocab_size=data.vocab_size,
        lowercase=data.lowercase,
    )


def check_beam_size(beam_size: int, name: str = "--beam-size") -> None:
    """A beam width: 1 (greedy) up to :data:`MAX_BEAM` (each beam is a whole sequence)."""
    check_range(name, beam_size, 1, MAX_BEAM, integer=True)


def load_pairs(data: DataSection, seed: int = 0) -> tuple[list, list]:
    """``(train, validation)`` sentence pairs from whichever source the data section names."""
    if data.path:
        train, val = read_parallel_folder(Path(data.path), data.source_lang, data.target_lang)
    elif data.hub:
        train = read_hub_pairs(data.hub, data.hub_split, data.source_lang, data.target_lang)
        val = read_hub_pairs(data.hub, data.hub_val_split, data.source_lang, data.target_lang)
    elif data.embedded == GENERATED:
        pairs = generated_pairs(data.generated_pairs, seed=seed)
        held_out = int(len(pairs) * data.val_fraction)
        train, val = pairs[: len(pairs) - held_out], pairs[len(pairs) - held_out :]
    else:
        raise UserError(
            "a seq2seq recipe needs data.path (a folder of parallel files), data.hub, or "
            f"data.embedded: {GENERATED}"
            + (f" (got data.embedded: {data.embedded!r})" if data.embedded else "")
        )
    if data.max_train_pairs is not None:
        train = train[: data.max_train_pairs]
    if not train:
        raise UserError("the parallel corpus has no training pairs")
    return train, val


def build(recipe: Recipe, section: ModelSection) -> Job:
    """Load the pairs, build vocabularies and the model, and wrap both for the Trainer."""
    from seqkit.export.model_card import write_model_card
    from seqkit.models.seq2seq import Seq2SeqConfig, Seq2SeqModel

    data: DataSection = recipe.data  # type: ignore[assignment]
    train_pairs, val_pairs = load_pairs(data, seed=recipe.trainer.seed)
    tokenizer = TranslationTokenizer(
        build_vocab([s for s, _ in train_pairs], **vocab_options(data)),
        build_vocab([t for _, t in train_pairs], **vocab_options(data)),
        data.source_lang,
        data.target_lang,
    )
    lengths = (data.max_source_length, data.max_target_length)
    train_data = TranslationDataset(train_pairs, tokenizer, *lengths)
    eval_data = TranslationDataset(val_pairs, tokenizer, *lengths) if val_pairs else None
    if len(train_data) == 0:
        raise UserError("every training pair has an empty side; nothing to train on")
    torch.manual_seed(recipe.trainer.seed)
    config = Seq2SeqConfig(
        source_vocab_size=tokenizer.source.vocab_size,
        target_vocab_size=tokenizer.target.vocab_size,
        embedding_dim=section.embedding_dim,
        hidden_size=section.hidden_size,
        num_layers=section.num_layers,
        dropout=section.dropout,
        attention=section.attention,
        teacher_forcing_ratio=section.teacher_forcing_ratio,
        max_length=section.max_length,
        max_source_length=data.max_source_length,
    )
    model = Seq2SeqModel(config)

    def save_final(folder: Path, metrics: dict[str, float], run_dir: Path) -> None:
        save_pretrained(model, tokenizer, folder, section)
        write_model_card(
            folder,
            title=f"seqkit seq2seq ({recipe.source.stem if recipe.source else 'recipe'})",
            family="seq2seq",
            num_parameters=model.num_parameters(),
            recipe=recipe_to_dict(recipe),
            metrics=metrics,
            datasets=[data.hub] if data.hub and not data.path else [],
            loss_plot=run_dir / "loss.png" if (run_dir / "loss.png").is_file() else None,
            tags=["seq2seq", "gru", "translation", f"attention-{section.attention}"],
            pipeline_tag="translation",
            how_to_load=HOW_TO_LOAD,
        )

    def sample() -> str:
        shown = val_pairs[:3] or train_pairs[:3]
        hypotheses = translate_texts(model, tokenizer, [s for s, _ in shown], section.beam_size)
        return "\n".join(
            f"source:    {s}\nreference: {t}\nmodel:     {h}"
            for (s, t), h in zip(shown, hypotheses, strict=True)
        )

    summary = {
        "pairs (train / validation)": f"{len(train_data)} / {len(eval_data or [])}",
        "vocabulary (source / target)": (
            f"{tokenizer.source.vocab_size} / {tokenizer.target.vocab_size}"
        ),
        "unknown words (train)": train_data.unknown,
        "truncated pairs (train)": train_data.truncated,
        "parameters": model.num_parameters(),
        "model": asdict(section),
    }
    if train_data.skipped:
        summary["skipped pairs with an empty side (train)"] = train_data.skipped
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
from seqkit.families.seq2seq import load_pretrained, translate_texts

model, tokenizer = load_pretrained("PATH")
print(translate_texts(model, tokenizer, ["Ein Hund läuft im Schnee."], beam_size=5))
# or, from the command line: seqkit translate PATH --text "Ein Hund läuft im Schnee." --beam-size 5
"""


def save_pretrained(model, tokenizer: TranslationTokenizer, folder: Path, section) -> None:
    """Weights, config (with the decoding defaults), vocabularies: a Hub folder."""
    from transformers import GenerationConfig

    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    GenerationConfig(
        num_beams=section.beam_size,
        length_penalty=section.length_penalty,
        max_length=section.max_length,
        bos_token_id=model.config.bos_token_id,
        eos_token_id=model.config.eos_token_id,
        pad_token_id=model.config.pad_token_id,
        decoder_start_token_id=model.config.decoder_start_token_id,
    ).save_pretrained(folder)


def load_pretrained(folder: Path):
    """``(model, tokenizer)`` from a folder written by :func:`save_pretrained`."""
    from seqkit.folders import check_vocabulary, load_weights, loading
    from seqkit.models.seq2seq import Seq2SeqModel

    model = load_weights(Seq2SeqModel, folder)
    with loading(f"the vocabularies in {folder}"):
        tokenizer = TranslationTokenizer.from_pretrained(Path(folder))
    check_vocabulary(folder, tokenizer.source.vocab_size, model.config.source_vocab_size, "source")
    check_vocabulary(folder, tokenizer.target.vocab_size, model.config.target_vocab_size, "target")
    model.eval()
    return model, tokenizer


def decoding_defaults(folder: Path) -> dict:
    """``num_beams`` and ``length_penalty`` saved with the model (1 and 1.0 when absent); a
    file that is not a JSON object of such numbers is a UserError naming it."""
    import json
    import math

    from seqkit.folders import loading

    path = Path(folder) / "generation_config.json"
    if not path.is_file():
        return {"beam_size": 1, "length_penalty": 1.0}
    with loading(str(path)):
        saved = json.loads(path.read_text("utf-8"))
        if not isinstance(saved, dict):
            raise ValueError(f"a JSON {type(saved).__name__}, not an object")
    beams, penalty = saved.get("num_beams") or 1, saved.get("length_penalty", 1.0)
    if isinstance(beams, bool) or not isinstance(beams, int) or beams < 1:
        raise UserError(f"{path}: num_beams must be an integer of at least 1, got {beams!r}")
    if isinstance(penalty, bool) or not isinstance(penalty, (int, float)):
        raise UserError(f"{path}: length_penalty must be a number, got {penalty!r}")
    if not math.isfinite(penalty):
        raise UserError(f"{path}: length_penalty must be finite, got {penalty!r}")
    return {"beam_size": beams, "length_penalty": float(penalty)}


def translate_batch(
    model,
    tokenizer: TranslationTokenizer,
    texts: Sequence[str],
    beam_size: int = 1,
    length_penalty: float = 1.0,
    max_length: int | None = None,
):
    """Translate ``texts`` as one batch: ``(translations, DecodeOutput, source ids, counts)``."""
    check_beam_size(beam_size)
    limit = model.config.max_source_length
    input_ids, mask, counts = encode_sources(tokenizer, texts, limit)
    output = model.translate_ids(
        input_ids,
        mask,
        beam_size=beam_size,
        max_length=max_length,
        length_penalty=length_penalty,
    )
    translations = [tokenizer.target.decode(row.tolist()) for row in output.sequences]
    return translations, output, input_ids, counts


def translate_texts(
    model,
    tokenizer: TranslationTokenizer,
    texts: Sequence[str],
    beam_size: int = 1,
    length_penalty: float = 1.0,
    batch_size: int = 64,
    counts: dict | None = None,
) -> list[str]:
    """Translate many sentences, ``batch_size`` at a time; adds unknown/truncated counts to
    ``counts`` when given."""
    results: list[str] = []
    for start in range(0, len(texts), batch_size):
        chunk = texts[start : start + batch_size]
        translations, _, _, chunk_counts = translate_batch(
            model, tokenizer, chunk, beam_size, length_penalty
        )
        results += translations
        if counts is not None:
            for key, value in chunk_counts.items():
                counts[key] = counts.get(key, 0) + value
    return results


def evaluate(folder: Path, run_dir: Path | None, args, load=None) -> dict:
    """sacreBLEU BLEU and chrF of the model's translations, on ``--source``/``--reference``
    files or on the run's validation pairs; prints sacreBLEU's signatures.

    Three scores (Post 2018, "A Call for Clarity in Reporting BLEU Scores"): BLEU on cased,
    detokenized text with sacreBLEU's own 13a tokenization (the standard score), chrF
    (Popović 2015), and BLEU on lowercased text, the score public Multi30k tutorials report.
    ``load`` is the family's ``load_pretrained`` (the Transformer family scores through here
    too); pairs whose source line is empty are skipped and counted.
    """
    import sacrebleu

    if (args.source is None) != (args.reference is None):
        raise UserError("--source and --reference go together (one sentence a line each)")
    if args.source:
        pairs = read_parallel_files(Path(args.source), Path(args.reference))
        where = args.source
    else:
        if run_dir is None:
            raise UserError(
                f"{folder} is not inside a run directory; pass --source and --reference files"
            )
        from seqkit.parts.compose import load_recipe

        recipe = load_recipe(run_dir / "recipe.yaml")
        _, pairs = load_pairs(recipe.data, seed=recipe.trainer.seed)
        where = "the run's validation split"
    kept = [(s, t) for s, t in pairs if s.strip()]
    if not kept:
        raise UserError(f"no sentence pairs to evaluate in {where} (every source line is empty)")
    model, tokenizer = (load or load_pretrained)(folder)
    defaults = decoding_defaults(folder)
    beam_size = args.beam_size if args.beam_size is not None else defaults["beam_size"]
    check_beam_size(beam_size)
    counts: dict[str, int] = {}
    hypotheses = translate_texts(
        model,
        tokenizer,
        [s for s, _ in kept],
        beam_size,
        defaults["length_penalty"],
        batch_size=args.batch_size or 64,
        counts=counts,
    )
    references = [[t for _, t in kept]]
    bleu, chrf = sacrebleu.metrics.BLEU(), sacrebleu.metrics.CHRF()
    bleu_lower = sacrebleu.metrics.BLEU(lowercase=True)
    scores = {
        "bleu": (bleu, bleu.corpus_score(hypotheses, references)),
        "chrf": (chrf, chrf.corpus_score(hypotheses, references)),
        "bleu_lowercase": (bleu_lower, bleu_lower.corpus_score(hypotheses, references)),
    }
    print(f"{len(kept)} sentences from {where}, beam size {beam_size}", file=sys.stderr)
    if len(kept) < len(pairs):
        print(
            f"note: {len(pairs) - len(kept)} pair(s) with an empty source line were skipped",
            file=sys.stderr,
        )
    empty_references = sum(1 for _, t in kept if not t.strip())
    if empty_references:
        print(
            f"note: {empty_references} reference line(s) are empty; they are scored as they are",
            file=sys.stderr,
        )
    for metric, score in scores.values():
        print(f"{score}  signature: {metric.get_signature()}")
    if counts.get("unknown") or counts.get("truncated"):
        print(
            f"source words outside the vocabulary (mapped to <unk>): {counts.get('unknown', 0)}; "
            f"sentences truncated to {model.config.max_source_length} tokens: "
            f"{counts.get('truncated', 0)}",
            file=sys.stderr,
        )
    return {
        **{name: round(score.score, 2) for name, (_, score) in scores.items()},
        "sentences": len(kept),
        "beam_size": beam_size,
        "unknown_source_words": counts.get("unknown", 0),
        "truncated_sentences": counts.get("truncated", 0),
        "skipped_empty_sources": len(pairs) - len(kept),
    }


def attention_labels(
    tokenizer: TranslationTokenizer, source_ids: Sequence[int], target_ids: Sequence[int]
) -> tuple[list[str], list[str]]:
    """Axis labels of an attention plot: the source tokens (padding dropped) and the generated
    tokens, with ``<eos>`` when the translation ended with it."""
    from seqkit.data.seq2seq import EOS, EOS_ID

    source_words = tokenizer.source.tokens(source_ids)  # sources hold no bos or eos
    target_words = tokenizer.target.tokens(target_ids)
    if EOS_ID in list(target_ids):
        target_words.append(EOS)
    return source_words, target_words
