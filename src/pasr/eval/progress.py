"""Progress of `pasr eval`: one bar per benchmark x method that moves per finished example, with tokens/s.

The pieces, from the bottom up:

- A backend's ``generate(..., on_progress=fn)`` calls ``fn(finished, tokens)`` while it decodes:
  ``finished`` conversations completed and ``tokens`` more tokens generated since its last call
  (:data:`pasr.generation.backends.ProgressFn`). The transformers backend reports every decode step, the
  OpenAI backend every request as it completes, vLLM every finished request (see its class).
- A method (:mod:`pasr.eval.methods`) runs a chain of turns. It tells its :class:`ChainProgress`
  which turn starts and whether a conversation that finishes in it ends its example (``final``), and
  it reports examples whose chain ends between turns (a self-refine answer the model confirmed, a
  Self-Refine+ answer the scorer found right).
- :class:`MethodProgress` turns that into one rich progress task: the bar counts finished examples, the
  description names the turn of a multi-turn method with its own count (``synthetic / self-refine ·
  review 1 3/8``), and :class:`TokenRateColumn` shows the task's generated tokens per second.

Results files are written per chunk as before; the bar is exact again after every chunk
(the runner sets it to the number of lines saved).
"""

from __future__ import annotations

from typing import Any

from rich.progress import ProgressColumn, Task
from rich.text import Text


class ChainProgress:
    """What a method reports; this base class ignores everything (the default when nobody watches)."""

    def turn(self, name: str, size: int, *, final: bool) -> None:
        """A turn over ``size`` conversations starts; ``final``: each one that finishes ends its example."""

    def generated(self, finished: int, tokens: int) -> None:
        """From the backend: ``finished`` conversations of the turn completed, ``tokens`` more generated."""

    def examples_done(self, count: int) -> None:
        """``count`` examples finished their chain outside a final turn (confirmed, or scored right)."""

    def end(self) -> None:
        """The chain is over (every example of the chunk is done)."""


NO_PROGRESS = ChainProgress()


class MethodProgress(ChainProgress):
    """One benchmark x method on a ``rich.progress.Progress`` task (total: the examples of the benchmark)."""

    def __init__(self, progress: Any, task_id: Any, title: str) -> None:
        self.progress = progress
        self.task_id = task_id
        self.title = title
        self.tokens = 0
        self.turn_name = ""
        self.turn_size = 0
        self.turn_done = 0
        self.final = True
        self.multi_turn = False

    def turn(self, name: str, size: int, *, final: bool) -> None:
        self.turn_name, self.turn_size, self.turn_done, self.final = name, size, 0, final
        self.multi_turn = self.multi_turn or not final
        self._show()

    def generated(self, finished: int, tokens: int) -> None:
        self.tokens += int(tokens)
        self.turn_done += int(finished)
        self.progress.update(
            self.task_id, advance=int(finished) if self.final else 0, tokens=self.tokens, **self._description()
        )

    def examples_done(self, count: int) -> None:
        if count:
            self.progress.update(self.task_id, advance=int(count))

    def end(self) -> None:
        self.turn_name, self.multi_turn = "", False
        self._show()

    def _description(self) -> dict[str, str]:
        if not (self.multi_turn and self.turn_name):
            return {"description": self.title}
        return {"description": f"{self.title} · {self.turn_name} {self.turn_done}/{self.turn_size}"}

    def _show(self) -> None:
        self.progress.update(self.task_id, **self._description())


class TokenRateColumn(ProgressColumn):
    """Generated tokens per second of a task (its ``tokens`` field over its elapsed time); blank before any."""

    def render(self, task: Task) -> Text:
        tokens = task.fields.get("tokens", 0)
        elapsed = task.finished_time if task.finished else task.elapsed
        if not tokens or not elapsed:
            return Text("")
        return Text(f"{tokens / elapsed:,.0f} tok/s", style="progress.data.speed")


__all__ = ["NO_PROGRESS", "ChainProgress", "MethodProgress", "TokenRateColumn"]
