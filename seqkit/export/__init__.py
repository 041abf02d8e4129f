"""Export: trained models as Hub folders that the rest of the ecosystem loads.

- :mod:`seqkit.export.exporter` — :func:`~seqkit.export.exporter.export_model`, the whole
  ``seqkit export`` in one call;
- :mod:`seqkit.export.source` — what is exported (a run, a model folder, a checkpoint) and what
  its run recorded;
- :mod:`seqkit.export.hub` — safe writing of ``OUT_DIR``, the no-NaN check, upload to the Hub;
- :mod:`seqkit.export.formats` — the ``native`` and ``transformers`` formats, and the native
  writer every seqkit model type has;
- :mod:`seqkit.export.gpt`, :mod:`seqkit.export.bert`, :mod:`seqkit.export.llama` — conversion
  to and from the stock ``transformers`` classes (``GPT2LMHeadModel``; ``BertForMaskedLM``...;
  ``LlamaForCausalLM`` for the open-model decoder);
- :mod:`seqkit.export.registry` — which seqkit model types exist (read from their Auto-class
  registrations) and which have a stock converter;
- :mod:`seqkit.export.model_card` — the ``README.md`` model card.

Nothing is imported here, so importing one module (a family imports the model card) stays cheap.
"""
