"""Running a generation backend inside a training job: one model alive at a time, every process generating.

A method that alternates generation and fine-tuning (STaR, own-error data, the other trained baselines)
needs three things from the backends of :mod:`pasr.generation.backends`, and they live here once:

- :func:`backend_factory`: ``factory(model_path) -> backend`` for a backend kind; under ``accelerate launch``
  each process's transformers backend sits on its own GPU, and the single-process vLLM backend is refused;
- :class:`BackendSlot`: the one backend alive at a time, reused while the model stays the same and freed
  (memory returned) before fine-tuning or before the next model is loaded;
- :func:`sharded_generate`: each process generates its share of the conversations in chunks, advancing a
  progress bar, and the results are gathered so every process gets the whole list, in order;
- :func:`sharded_score`: the same for scoring what was generated, so every process builds the same data.

A backend is anything with ``generate(conversations, max_tokens, temperature) -> [(text, tokens)]`` and
``close()`` (optionally ``chunk_size``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pasr.errors import PasrError

BackendFactory = Callable[[str], Any]
"""``factory(model_path) -> backend`` with ``generate(conversations, max_tokens, temperature)`` and ``close()``."""

Generate = Callable[[list[list[dict]]], list[tuple[str, int]]]
"""``generate(conversations) -> [(text, generated tokens)]``, one per conversation, in order."""


def backend_factory(kind: str, *, batch_size: int, seed: int = 0, dtype: str = "auto") -> BackendFactory:
    """A factory of ``kind`` backends (``transformers`` or ``vllm``) for built-in names, folders or hub ids.

    Under ``accelerate launch`` with several processes, a transformers backend goes on this process's GPU;
    ``vllm`` raises :class:`PasrError` there (it runs in one process). Nothing is loaded until it is called.
    """

    def build(model_path: str):
        import torch
        from accelerate import PartialState

        from pasr.generation.backends import make_backend
        from pasr.models import resolve

        state = PartialState()
        device = None
        if state.num_processes > 1:
            if kind == "vllm":
                raise PasrError("the vllm generation backend runs in one process; under `accelerate launch` use "
                                "the transformers backend (each process generates on its own GPU)")
            if torch.cuda.is_available():
                device = f"cuda:{state.local_process_index}"
        return make_backend(kind, resolve(model_path), batch_size=batch_size, seed=seed, dtype=dtype, device=device)

    return build


class BackendSlot:
    """The one backend alive at a time: :meth:`get` reuses it while the model stays, :meth:`close` frees it.

    ``factory(model_path)`` builds a backend; getting another model closes the current one first, so two
    models never sit in memory together. Use as a context manager to close it at the end.
    """

    def __init__(self, factory: BackendFactory):
        self.factory = factory
        self.path: str | None = None
        self.backend: Any = None

    def get(self, path: str) -> Any:
        """The backend for ``path``, built on first use (closing the one of another model)."""
        if self.path != path:
            self.close()
            self.backend, self.path = self.factory(path), path
        return self.backend

    def close(self) -> None:
        """Close the backend, if any, and return its memory (garbage collection, the CUDA cache)."""
        if self.backend is not None:
            self.backend.close()
            self.backend = self.path = None
            import gc

            gc.collect()
            try:
                import torch

                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
            except ImportError:  # pragma: no cover
                pass

    def __enter__(self) -> BackendSlot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def sharded_generate(
    backend: Any,
    conversations: Sequence[list[dict]],
    *,
    max_tokens: int,
    temperature: float,
    batch_size: int,
    progress: Any = None,
    description: str = "",
) -> list[tuple[str, int]]:
    """``[(text, tokens)]`` for every conversation, in order, with each accelerate process generating its share.

    Process ``r`` of ``w`` takes conversations ``[n*r//w, n*(r+1)//w)`` in chunks of the backend's
    ``chunk_size`` (else ``4 * batch_size``), advancing a task ``description`` on ``progress`` (a rich
    ``Progress``, or None); the shares are gathered so every process returns the whole list. Raises
    RuntimeError when the backend returns another number of completions than it was given conversations.
    """
    from accelerate import PartialState
    from accelerate.utils import gather_object

    state = PartialState()
    world = state.num_processes
    mine = list(conversations[share(len(conversations), world, state.process_index)])
    task = progress.add_task(description, total=len(mine)) if progress is not None else None
    chunk = max(1, int(getattr(backend, "chunk_size", 0) or 4 * batch_size))
    out: list[tuple[str, int]] = []
    for start in range(0, len(mine), chunk):
        part = mine[start:start + chunk]
        got = backend.generate(part, max_tokens, temperature)
        if len(got) != len(part):
            raise RuntimeError(f"backend returned {len(got)} completions for {len(part)} conversations")
        out.extend((str(t), int(k)) for t, k in got)
        if task is not None:
            progress.update(task, advance=len(part))
    return list(gather_object(out)) if world > 1 else out


def share(n: int, world: int, rank: int) -> slice:
    """Process ``rank``'s of ``world`` contiguous share of ``n`` items: ``[n*rank//world, n*(rank+1)//world)``
    (the shares, in rank order, are the whole list in order)."""
    return slice(n * rank // world, n * (rank + 1) // world)


def sharded_score(scorer: Any, records: Sequence[Any], texts: Sequence[str]) -> list[float]:
    """:func:`pasr.scoring.score_records` with each accelerate process scoring only its share (:func:`share`),
    the scores gathered so every process returns the same whole list, in order.

    Every process then builds its data from the same scores: scoring everything in every process would ask the
    judge once per process, and a judge that answers differently (sampling, a timeout scored 0) would give the
    processes different examples, so different step counts, and a hang in DDP. One process: ``score_records``.
    """
    from accelerate import PartialState
    from accelerate.utils import gather_object

    from pasr.scoring import score_records

    records, texts = list(records), list(texts)
    if len(records) != len(texts):
        raise ValueError(f"sharded_score needs one text per record: {len(records)} records, {len(texts)} texts")
    state = PartialState()
    world = state.num_processes
    if world == 1:
        return score_records(scorer, records, texts)
    mine = share(len(records), world, state.process_index)
    return [float(s) for s in gather_object(score_records(scorer, records[mine], texts[mine]))]


def generator(backend: Any, *, max_tokens: int, temperature: float, batch_size: int, progress: Any = None,
              description: str = "") -> Generate:
    """:func:`sharded_generate` bound to one backend and its settings: ``generate(conversations)``."""

    def generate(conversations: list[list[dict]]) -> list[tuple[str, int]]:
        return sharded_generate(backend, conversations, max_tokens=max_tokens, temperature=temperature,
                                batch_size=batch_size, progress=progress, description=description)

    return generate


__all__ = ["BackendFactory", "BackendSlot", "Generate", "backend_factory", "generator", "share", "sharded_generate",
           "sharded_score"]
