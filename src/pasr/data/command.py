"""`pasr data ...` (placeholder: the data helper replaces this module)."""

import typer

data_app = typer.Typer(help="Built-in task data and benchmark files.")
