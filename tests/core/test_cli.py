from __future__ import annotations

import json
import subprocess
import sys

from mlgen import __version__

from tests.helpers import run_mlgen

HEAVY = ("kubernetes", "github", "jenkins", "docker", "sklearn", "pandas", "numpy", "scipy",
         "pydantic", "jinja2")


def test_help_lists_commands_and_imports_no_heavy_sdk() -> None:
    code = (
        "import sys, json\n"
        "from mlgen.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    help_text, _, modules_line = out.stdout.rpartition("\n[")
    loaded = set(json.loads("[" + modules_line))
    assert "init" in help_text and "render" in help_text and "schema" in help_text
    assert not loaded & set(HEAVY), f"--help imported {sorted(loaded & set(HEAVY))}"


def test_version() -> None:
    result = run_mlgen("--version")
    assert result.returncode == 0
    assert __version__ in result.stdout


def test_unknown_command_is_a_usage_error() -> None:
    result = run_mlgen("frobnicate")
    assert result.returncode == 2
    assert "No such command" in result.stderr


def test_schema_is_json_and_covers_the_spec() -> None:
    result = run_mlgen("schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    assert schema["title"] == "mlgen.yaml"
    assert {"apiVersion", "name", "model", "serve", "kubernetes", "drift", "ci"} <= set(
        schema["properties"]
    )
    assert schema["additionalProperties"] is False
