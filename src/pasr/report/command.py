"""`pasr report` (placeholder: the report helper replaces this module)."""


def report_command() -> None:
    """Build tables, plots and an HTML report from evaluation runs."""
    raise NotImplementedError
