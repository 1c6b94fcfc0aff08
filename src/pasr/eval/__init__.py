"""pasr.eval: evaluate models with vanilla, PASR and self-refine methods.

- ``backends``: chat backends (transformers, vLLM, OpenAI-compatible server) behind one ``generate`` call.
- ``methods``: the evaluation methods as short chains of turns, batched across examples.
- ``runner``: benchmarks x methods -> resumable per-example JSONL results and summaries in a run folder.
- ``metrics``: summary metrics over result lines (also used by ``pasr report``).
- ``analysis``: LLM-judge analyses of refining responses.
- ``command``: the ``pasr eval`` command.
"""
