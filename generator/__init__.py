"""mlgen: one mlgen.yaml in, every pipeline file of an ML model repository out."""
from __future__ import annotations

__version__ = "0.1.0"
