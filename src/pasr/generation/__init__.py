"""Generation backends shared by evaluation, data building and the trained baselines (transformers, vLLM, OpenAI)."""
