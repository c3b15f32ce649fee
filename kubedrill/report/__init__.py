"""Reports of a run: JSON (machines), JUnit (CI), Markdown (people, short)."""

from __future__ import annotations

from kubedrill.report.junit import render_junit
from kubedrill.report.markdown import render_markdown
from kubedrill.report.writer import load_schema, validate_run_document, write_reports

__all__ = [
    "load_schema",
    "render_junit",
    "render_markdown",
    "validate_run_document",
    "write_reports",
]
