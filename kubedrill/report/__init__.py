"""Reports of a run: JSON (machines), JUnit (CI), Markdown (people, short), HTML (one
self-contained page with the timelines), the baseline diff and the capacity report."""

from __future__ import annotations

from kubedrill.report.document import load_run_document, scenario_timeline
from kubedrill.report.html import render_html
from kubedrill.report.junit import render_junit
from kubedrill.report.markdown import render_markdown
from kubedrill.report.writer import (
    append_step_summary,
    load_schema,
    validate_run_document,
    write_reports,
)

__all__ = [
    "append_step_summary",
    "load_run_document",
    "load_schema",
    "render_html",
    "render_junit",
    "render_markdown",
    "scenario_timeline",
    "validate_run_document",
    "write_reports",
]
