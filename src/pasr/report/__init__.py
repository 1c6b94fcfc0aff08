"""pasr.report: tables, plots and a self-contained HTML page from `pasr eval` result folders.

loading (RUN_DIRs -> Run objects) -> stats (reuses pasr.eval.metrics) -> tables (Table 1, transitions;
markdown/CSV) -> plots (PNG) -> html (one page) ; build.build_report ties them together, command.py is the CLI.
"""
