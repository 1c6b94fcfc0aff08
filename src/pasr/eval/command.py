"""`pasr eval` (placeholder: the eval helper replaces this module)."""


def eval_command() -> None:
    """Evaluate a model on benchmarks with several methods."""
    raise NotImplementedError
