"""The ``seq2seq`` task: translation by an encoder–decoder, and how its translations are scored.

Training is teacher-forced cross-entropy per target token (the model's ``forward`` returns it);
evaluation adds perplexity, and ``seqkit evaluate`` scores what the model actually writes: greedy
or beam-searched translations (:mod:`seqkit.generation`) of the evaluation pairs, against their
references, with sacreBLEU (Post 2018, "A Call for Clarity in Reporting BLEU Scores"): BLEU on
cased, detokenized text with sacreBLEU's 13a tokenization (the standard score), chrF (Popović
2015), and BLEU on lowercased text, the score the public Multi30k tutorials report.

Both encoder–decoders (the recurrent one of :mod:`seqkit.models.seq2seq` and the Transformer of
:mod:`seqkit.models.transformer`) translate through ``translate_ids``, so everything here, and
``seqkit translate``, treats them alike. The decoding defaults (beam width, length penalty) are
the ``generation_config.json`` beside the model: in its Hub folder, or in ``RUN/model/`` for a
checkpoint.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from seqkit.checks import (
    MAX_BEAM,
    MAX_LENGTH_PENALTY,
    MAX_POSITIONS,
    check_optional_range,
    check_range,
)
from seqkit.data.seq2seq import EOS, EOS_ID, TranslationTokenizer, encode_sources
from seqkit.errors import UserError
from seqkit.trainer.tasks import SupervisedTask

GENERATION_CONFIG = "generation_config.json"


# ----------------------------------------------------------------------------- decoding settings


def check_beam_size(beam_size: int, name: str = "--beam-size") -> None:
    """A beam width: 1 (greedy) up to :data:`MAX_BEAM` (each beam is a whole sequence)."""
    check_range(name, beam_size, 1, MAX_BEAM, integer=True)


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


def decoding_defaults(folder: Path | None) -> dict[str, Any]:
    """``beam_size`` and ``length_penalty`` saved beside the model in ``folder`` (1 and 1.0 when
    absent); a file that is not a JSON object of such numbers is a UserError naming it."""
    from seqkit.folders import loading

    path = Path(folder) / GENERATION_CONFIG if folder is not None else None
    if path is None or not path.is_file():
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


def model_folder_of(path: str | Path) -> Path:
    """The folder whose config a command's ``RUN_OR_MODEL_DIR`` loads: a model folder, a run's
    ``final/``, or ``RUN/model/`` for a checkpoint ``RUN/checkpoints/step-N``."""
    from seqkit.folders import resolve_model_dir
    from seqkit.parts.model_folder import RUN_MODEL, is_checkpoint

    path = Path(path)
    if is_checkpoint(path):
        return path.parent.parent / RUN_MODEL
    return resolve_model_dir(path)


# ----------------------------------------------------------------------------- translating


def translate_batch(
    model: nn.Module,
    tokenizer: TranslationTokenizer,
    texts: Sequence[str],
    beam_size: int = 1,
    length_penalty: float = 1.0,
    max_length: int | None = None,
):
    """Translate ``texts`` as one batch: ``(translations, DecodeOutput, source ids, counts)``;
    ``counts`` holds the ``unknown`` source words and ``truncated`` sentences."""
    check_beam_size(beam_size)
    limit = model.config.max_source_length
    input_ids, mask, counts = encode_sources(tokenizer, texts, limit)
    device = next(model.parameters()).device
    # translate_ids runs in evaluation mode (no dropout), also on a model in training.
    output = model.translate_ids(
        input_ids.to(device),
        mask.to(device),
        beam_size=beam_size,
        max_length=max_length,
        length_penalty=length_penalty,
    )
    output.sequences = output.sequences.cpu()
    if output.attentions is not None:
        output.attentions = output.attentions.cpu()
    translations = [tokenizer.target.decode(row.tolist()) for row in output.sequences]
    return translations, output, input_ids, counts


def translate_texts(
    model: nn.Module,
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


def attention_labels(
    tokenizer: TranslationTokenizer, source_ids: Sequence[int], target_ids: Sequence[int]
) -> tuple[list[str], list[str]]:
    """Axis labels of an attention plot: the source tokens (padding dropped) and the generated
    tokens, with ``<eos>`` when the translation ended with it."""
    source_words = tokenizer.source.tokens(source_ids)  # sources hold no bos or eos
    target_words = tokenizer.target.tokens(target_ids)
    if EOS_ID in list(target_ids):
        target_words.append(EOS)
    return source_words, target_words


def score_translations(
    model: nn.Module,
    tokenizer: TranslationTokenizer,
    pairs: Sequence[tuple[str, str]],
    beam_size: int,
    length_penalty: float,
    batch_size: int = 64,
) -> dict[str, float]:
    """sacreBLEU BLEU, chrF and lowercased BLEU of the model's translations of ``pairs``'
    sources against their references; prints each score with its signature, and notes on
    what was skipped, unknown or truncated on stderr.

    Pairs whose source is empty are skipped and counted; an empty reference is scored as it is.
    """
    import sacrebleu

    kept = [(s, t) for s, t in pairs if s.strip()]
    if not kept:
        raise UserError("no sentence pairs to evaluate (every source line is empty)")
    check_beam_size(beam_size)
    counts: dict[str, int] = {}
    hypotheses = translate_texts(
        model,
        tokenizer,
        [s for s, _ in kept],
        beam_size,
        length_penalty,
        batch_size=batch_size,
        counts=counts,
    )
    references = [[t for _, t in kept]]
    metrics = {
        "bleu": sacrebleu.metrics.BLEU(),
        "chrf": sacrebleu.metrics.CHRF(),
        "bleu_lowercase": sacrebleu.metrics.BLEU(lowercase=True),
    }
    scores = {name: metric.corpus_score(hypotheses, references) for name, metric in metrics.items()}
    print(f"{len(kept)} sentences, beam size {beam_size}", file=sys.stderr)
    for name, metric in metrics.items():
        print(f"{scores[name]}  signature: {metric.get_signature()}")
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
    if counts.get("unknown") or counts.get("truncated"):
        print(
            f"source words outside the vocabulary (mapped to <unk>): {counts.get('unknown', 0)}; "
            f"sentences truncated to {model.config.max_source_length} tokens: "
            f"{counts.get('truncated', 0)}",
            file=sys.stderr,
        )
    return {
        **{name: round(score.score, 2) for name, score in scores.items()},
        "sentences": len(kept),
        "beam_size": beam_size,
        "unknown_source_words": counts.get("unknown", 0),
        "truncated_sentences": counts.get("truncated", 0),
        "skipped_empty_sources": len(pairs) - len(kept),
    }


# ----------------------------------------------------------------------------- the task


class TranslationTask(SupervisedTask):
    """Teacher-forced cross-entropy per target token (the model's own loss: label-smoothed for
    the Transformer); evaluation reports perplexity too, ``seqkit evaluate`` BLEU and chrF."""

    throughput_unit = "tokens"
    default_data = "sentence-pairs"
    pipeline_tag = "translation"
    auto_class = "AutoModelForSeq2SeqLM"
    generation_defaults: ClassVar[dict[str, Any] | None] = None
    """None: the decoding defaults are the model section's (``beam_size``...), which the model
    builder's ``generation_settings`` writes."""
    how_to_use = """
from seqkit.trainer.translation import translate_texts

print(translate_texts(model, tokenizer, ["Ein Hund läuft im Schnee."], beam_size=5))
# or, from the command line: seqkit translate PATH --text "Ein Hund läuft im Schnee." --beam-size 5
"""
    """Lines the model card adds to its loading code."""

    @classmethod
    def for_model(cls, model: nn.Module, facts: Mapping[str, Any]) -> TranslationTask:
        return cls(model)

    def flops_per_target(self) -> float | None:
        """6·N per target token (2 forward, 4 backward; Kaplan et al. 2020); the source tokens
        the encoder reads per target token are not counted."""
        return float(6 * sum(p.numel() for m in self.models.values() for p in m.parameters()))

    def summarize(self, metrics: dict[str, float]) -> dict[str, float]:
        if "loss" in metrics:
            # Clamp so an untrained model's huge loss reports inf-free perplexity.
            metrics["perplexity"] = math.exp(min(metrics["loss"], 50.0))
        return metrics

    def extra_evaluation(self, tokenizer: Any, eval_data: Any, options: Any) -> dict[str, float]:
        """BLEU, chrF and lowercased BLEU of translations of ``eval_data``'s pairs (a
        :class:`~seqkit.data.seq2seq.TranslationDataset`), beam width ``options.beam_size`` or
        the one saved beside the model ``options.model`` names."""
        model_path = getattr(options, "model", None)
        defaults = decoding_defaults(model_folder_of(model_path) if model_path else None)
        beam_size = getattr(options, "beam_size", None) or defaults["beam_size"]
        batch_size = getattr(options, "batch_size", None) or 64
        return score_translations(
            self.model,
            tokenizer,
            eval_data.pairs,
            beam_size,
            defaults["length_penalty"],
            batch_size=batch_size,
        )

    @classmethod
    def generate_command(cls, loaded: Any, args: Any) -> int:
        """``seqkit generate`` continues a prompt; a translation model answers ``seqkit
        translate`` instead."""
        raise UserError(
            f"{args.model} holds a translation model, which translates rather than continues a "
            f'prompt: use seqkit translate {args.model} --text "..."'
        )

    @classmethod
    def closing_sample(
        cls, model: nn.Module, tokenizer: Any, examples: Any, generation: Mapping[str, Any]
    ) -> str:
        """Three pairs of ``examples`` with the model's translations, printed after training."""
        shown = examples.pairs[:3]
        with torch.no_grad():
            hypotheses = translate_texts(
                model, tokenizer, [s for s, _ in shown], generation.get("num_beams", 1)
            )
        return "\n".join(
            f"source:    {s}\nreference: {t}\nmodel:     {h}"
            for (s, t), h in zip(shown, hypotheses, strict=True)
        )
