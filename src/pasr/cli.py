"""The ``pasr`` command: wires each stage's command function into one Typer app.

Each stage keeps its command in ``pasr/<stage>/command.py`` and imports heavy
libraries (torch, transformers) inside the function body, so ``pasr --help``
stays fast.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from pasr.baselines.command import baseline_command, ift_data_command, star_command
from pasr.data.command import data_app
from pasr.errors import PasrError
from pasr.eval.command import eval_command
from pasr.report.command import report_command
from pasr.train.command import sft_command, train_command
from pasr.vllm_serve import vllm_serve_command

app = typer.Typer(
    help="ProActive Self-Refinement: train, evaluate and inspect models that refine while they reason.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
_PASSTHROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}
app.command("train", context_settings=_PASSTHROUGH)(train_command)
app.command("sft", context_settings=_PASSTHROUGH)(sft_command)
app.command("eval")(eval_command)
app.command("report")(report_command)
app.add_typer(data_app, name="data")
app.command("baseline", context_settings=_PASSTHROUGH)(baseline_command)
app.command("ift-data")(ift_data_command)
app.command("star", context_settings=_PASSTHROUGH)(star_command)  # alias of `pasr baseline star`
app.command("vllm-serve", context_settings=_PASSTHROUGH)(vllm_serve_command)


def version_text() -> str:
    """``pasr X (torch X, transformers X, trl X, python X)``, read from package metadata without importing them."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    from pasr import __version__

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    stack = ", ".join(f"{name} {installed(name)}" for name in ("torch", "transformers", "trl"))
    return f"pasr {__version__} ({stack}, python {platform.python_version()})"


def _print_version(value: bool) -> None:
    if value:
        print(version_text())
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print pasr's version and its stack, then exit."
    ),
) -> None:
    """Global options; the app's own help text is the one shown."""


def main() -> None:
    """Entry point of the ``pasr`` script: bad input ends with its message, not a traceback."""
    try:
        app()
    except PasrError as exc:
        print_error(exc)
        sys.exit(2)


def print_error(exc: BaseException) -> None:
    """``error: MESSAGE`` as one line on stderr: newlines collapsed, never wrapped, brackets printed as they are."""
    from rich.markup import escape

    message = " ".join(str(exc).split())
    Console(stderr=True, soft_wrap=True).print(f"[red]error:[/red] {escape(message)}", highlight=False)


if __name__ == "__main__":  # python -m pasr.cli, for scripts that run the interpreter they are given
    main()
