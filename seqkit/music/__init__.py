"""Symbolic music: MIDI corpora, a miditok tokenizer, and the LSTM and GPT composers.

The pipeline, one module per step:

* :mod:`seqkit.music.corpus` finds pieces (music21's bundled Bach scores, converted to MIDI once
  and cached; any folder of ``.mid``/``.midi`` files; a Hub data set of MIDI files), loads them
  with ``symusic``, skips bad files with a reason, and splits them into train and validation *by
  piece*;
* :mod:`seqkit.music.tokenization` turns a piece into REMI tokens with ``miditok`` and back;
* :mod:`seqkit.music.models` gives the composers their own model types (a GPT and an LSTM from
  :mod:`seqkit.models`, unchanged apart from the name);
* :mod:`seqkit.music.stats` measures pieces (key, pitch classes, range, density);
* :mod:`seqkit.music.render` writes MIDI, piano-roll PNGs and, where fluidsynth exists, WAV;
* :mod:`seqkit.music.family` ties them to recipes (``music-gpt``, ``music-lstm``), ``seqkit
  compose`` and ``seqkit evaluate``.

Nothing heavy is imported here, so ``import seqkit.music`` is free.
"""
