"""Symbolic music: MIDI corpora, a miditok tokenizer, and what composing with a causal LM means.

The pipeline, one module per step:

* :mod:`seqkit.music.corpus` finds pieces (music21's bundled Bach scores, converted to MIDI once
  and cached; any folder of ``.mid``/``.midi`` files; a Hub data set of MIDI files), loads them
  with ``symusic``, skips bad files with a reason, and splits them into train and validation *by
  piece*;
* :mod:`seqkit.music.tokenization` turns a piece into REMI tokens with ``miditok`` and back;
* :mod:`seqkit.music.data` is the ``chorales`` data module: pieces split, tokenized and cut into
  windows for ``task: causal-lm`` with any registered ``model.architecture`` (a GPT, an LSTM);
* :mod:`seqkit.music.composing` says what a sample of such a model is: ``seqkit compose``, the
  closing sample of a run, and the musical side of ``seqkit evaluate``;
* :mod:`seqkit.music.stats` measures pieces (key, pitch classes, range, density);
* :mod:`seqkit.music.render` writes MIDI, piano-roll PNGs and, where fluidsynth exists, WAV.

Nothing heavy is imported here, so ``import seqkit.music`` is free.
"""
