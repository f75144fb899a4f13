"""The study report: one self-contained HTML file from the run's artefacts.

:func:`build_report` sorts the artefacts it is given (:mod:`pannet.report.inputs`),
builds each section (:mod:`pannet.report.build`) and writes the page with inlined CSS
and images (:mod:`pannet.report.html`); the methods text comes from the config used
(:mod:`pannet.report.methods`).
"""

from pannet.report.build import build_report

__all__ = ["build_report"]
