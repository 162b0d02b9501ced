"""The sweep report: ``python -m ssl_rl.report <multirun dir>`` writes the paper's Table 5
(``report.md``, ``results.json``) and Figs. 4–6 (PNG) from the runs of ``train.py -m``."""

from ssl_rl.report.runs import PolicyHistory, Run, RunSet, load_run, load_runs
from ssl_rl.report.table import ABLATIONS, Stat, aggregate, build_table, format_stat

__all__ = [
    "ABLATIONS",
    "PolicyHistory",
    "Run",
    "RunSet",
    "Stat",
    "aggregate",
    "build_table",
    "format_stat",
    "load_run",
    "load_runs",
]
