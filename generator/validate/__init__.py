"""`mlgen validate`: the ecosystem's own linters and scanners over the generated files.

One module per external tool (each `check(workspace) -> ToolOutcome`, raising ToolMissing
when the tool is not installed), `runner.py` to run them all into one Report, `model.py`
for the values. See docs/validation.md.
"""
from __future__ import annotations

from .model import Finding, Note, Report, ToolRun

__all__ = ["Finding", "Note", "Report", "ToolRun"]
