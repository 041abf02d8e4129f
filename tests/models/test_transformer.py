"""The encoder–decoder Transformer: positions, masks, cache, shared embeddings, save/load,
label smoothing, decoding through seqkit.generation, and learning a tiny copy task."""

import math

import pytest
import torch

from seqkit.models.transformer import (
    TransformerConfig,
    TransformerForSeq2Seq,
    sinusoidal_positions,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _config(**overrides):
    values = dict(
        src_vocab_size=20,
        tgt_vocab_size=22,
        d_model=32,
        n_head=4,
        d_ff=64,
        num_encoder_layers=2,
        num_decoder_layers=2,
        dropout=0.0,
        max_position_embeddings=32,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    values.update(overrides)
    return TransformerConfig(**values)


def _batch():
    torch.manual_seed(1)
    src = torch.randint(3, 20, (3, 7))
    mask = torch.ones(3, 7, dtype=torch.long)
    mask[1, 5:] = 0
    src[1, 5:] = 0
    labels = torch.randint(3, 22, (3, 6))
    return src, mask, labels


def test_sinusoidal_table_is_the_paper_formula():
    table = sinusoidal_positions(10, 8)
    pos, i = 7, 2  # dimension 2i = 4 is a sine, 2i + 1 = 5 a cosine
    angle = pos / 10000 ** (2 * i / 8)
    assert table[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
    assert table[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)


@pytest.mark.parametrize("norm", ["post", "pre"])
@pytest.mark.parametrize("positions", ["sinusoidal", "learned"])
def test_cached_decoding_equals_teacher_forcing(norm, positions):
    torch.manual_seed(0)
    model = TransformerForSeq2Seq(_config(norm_position=norm, position_encoding=positions)).eval()
    src, mask, labels = _batch()
    decoder_ids = model.shift_right(labels)
    memory, _ = model.encode(src, mask)
    full, *_ = model.decode(decoder_ids, memory, mask)
    cache, steps = model.initial_cache(memory), []
    for t in range(decoder_ids.size(1)):
        logits, cache, *_ = model.decode(decoder_ids[:, t : t + 1], None, mask, None, cache, True)
        steps.append(logits)
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-4)


def test_sdpa_and_explicit_models_agree_and_attention_maps_are_returned():
    torch.manual_seed(0)
    model = TransformerForSeq2Seq(_config()).eval()
    src, mask, labels = _batch()
    fused = model(src, mask, labels=labels, output_attentions=True)
    for layer in [*model.encoder_layers, *model.decoder_layers]:
        for module in layer.modules():
            if hasattr(module, "attention") and isinstance(module.attention, str):
                module.attention = "explicit"
    explicit = model(src, mask, labels=labels)
    torch.testing.assert_close(fused.logits, explicit.logits, atol=1e-5, rtol=1e-4)
    cross = fused.cross_attentions[-1]  # (B, nh, T, S)
    assert cross.shape == (3, 4, 6, 7)
    assert torch.all(cross[1, :, :, 5:] == 0)  # the source's padding gets no attention


def test_source_padding_does_not_change_the_translation():
    torch.manual_seed(0)
    model = TransformerForSeq2Seq(_config()).eval()
    src, mask, labels = _batch()
    short = model(src[1:2, :5], labels=labels[1:2]).logits
    padded = model(src[1:2], mask[1:2], labels=labels[1:2]).logits
    torch.testing.assert_close(short, padded, atol=1e-5, rtol=1e-4)


def test_shared_embeddings_label_smoothing_and_save_load(tmp_path):
    torch.manual_seed(0)
    shared = TransformerForSeq2Seq(_config(tgt_vocab_size=20, share_embeddings=True))
    separate = TransformerForSeq2Seq(_config(tgt_vocab_size=20))
    # One matrix serves source, target and output: the model is smaller by one embedding.
    assert separate.num_parameters() - shared.num_parameters() == 20 * 32
    assert shared.tgt_embed is None
    src, mask, labels = _batch()
    labels = labels.clamp(max=19)
    shared.train()
    smoothed = shared(src, mask, labels=labels).loss
    shared.config.label_smoothing = 0.0
    plain = shared(src, mask, labels=labels).loss
    assert smoothed.item() != pytest.approx(plain.item())
    shared.eval()
    shared.save_pretrained(tmp_path)
    again = TransformerForSeq2Seq.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(
        again(src, mask, labels=labels).logits, shared(src, mask, labels=labels).logits
    )
    with pytest.raises(ValueError, match="one vocabulary"):
        _config(share_embeddings=True)


def test_learns_to_copy_and_decodes_greedy_and_beam():
    torch.manual_seed(0)
    model = TransformerForSeq2Seq(
        _config(
            src_vocab_size=12,
            tgt_vocab_size=12,
            norm_position="pre",
            label_smoothing=0.0,
            num_encoder_layers=1,
            num_decoder_layers=1,
        )
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=4e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(120):
        src = torch.randint(3, 12, (32, 5), generator=generator)
        labels = torch.cat([src, torch.full((32, 1), 2)], dim=1)  # copy, then eos
        loss = model(src, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    src = torch.randint(3, 12, (4, 5), generator=generator)
    greedy = model.translate_ids(src, beam_size=1, max_length=8)
    beam = model.translate_ids(src, beam_size=3, max_length=8)
    assert torch.equal(greedy.sequences[:, :5], src)
    assert torch.equal(beam.sequences[:, :5], src)
    assert beam.attentions.shape[0] == 4 and beam.attentions.shape[-1] == 5
