#!/usr/bin/env bash
# Installs the linters and scanners `mlgen validate` runs into project-local folders:
# .tools/ (a Python venv for the PyPI ones, bin/ on PATH) and node_modules/ (the npm ones,
# pinned by package-lock.json). Safe to re-run; does nothing when already installed.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .tools/bin
echo "tools: nothing pinned yet"
