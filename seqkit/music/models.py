"""The composers: seqkit's GPT and recurrent language models under model types of their own.

Nothing about a network changes when it reads REMI tokens instead of characters, so the
composers *are* :class:`~seqkit.models.gpt.GPTLMHeadModel` (Radford et al. 2019) and
:class:`~seqkit.models.rnn.RecurrentLMForCausalLM` with an LSTM cell (Hochreiter & Schmidhuber
1997) — subclasses that add no code. What the subclasses add is a name: a folder's
``config.json`` says ``seqkit-music-gpt`` or ``seqkit-music-lstm``, so ``seqkit compose``,
``evaluate`` and ``generate`` find the music family (and its miditok tokenizer) from the folder
alone, and a text GPT folder is never mistaken for a composer. The weights keep the parents'
names, so a composer's ``model.safetensors`` loads into the plain classes unchanged.
"""

from __future__ import annotations

from seqkit.models.gpt import GPTConfig, GPTLMHeadModel
from seqkit.models.rnn import RecurrentLMConfig, RecurrentLMForCausalLM


class MusicGPTConfig(GPTConfig):
    """:class:`~seqkit.models.gpt.GPTConfig` of a GPT composer."""

    model_type = "seqkit-music-gpt"


class MusicGPTForCausalLM(GPTLMHeadModel):
    """A GPT that composes: the text GPT, loaded from and saved as ``seqkit-music-gpt``."""

    config_class = MusicGPTConfig


class MusicLSTMConfig(RecurrentLMConfig):
    """:class:`~seqkit.models.rnn.RecurrentLMConfig` of an LSTM composer."""

    model_type = "seqkit-music-lstm"


class MusicLSTMForCausalLM(RecurrentLMForCausalLM):
    """An LSTM that composes: the recurrent LM, loaded from and saved as ``seqkit-music-lstm``."""

    config_class = MusicLSTMConfig
