"""No injection: hostile text in any free-text field of the spec comes back literally where it
appears, every output still parses in its language, and no key, stage, step or command appears.
Identifier fields reject what their target does not allow, with a SpecError naming the key."""
from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlgen.errors import SpecError
from mlgen.project import render_artifacts
from mlgen.render import Artifact
from mlgen.spec import LABEL_KEY_RE, Spec
from mlgen.spec_azure import CONNECTION_RE
from mlgen.spec_loader import parse_spec

from tests.helpers import REPO as REPO_ROOT

from .helpers import need

REPO = REPO_ROOT
BASE = yaml.safe_load((REPO / "examples" / "credit-risk" / "mlgen.yaml").read_text())
NASTY = ["'", '"', "\\", "$", "${HOME}", "`id`", "$(id)", "${{ secrets.GITHUB_TOKEN }}",
         "\n", "\r\n", "#", ": ", "- ", "&anchor", "*anchor", "!!python/object:os.system",
         "!tag", "{", "}", "[", "]", "|", ">", "%", "@", "---", "...", "\t", "'''", '"""',
         "\u2028", "\u0085", "é", "日本", "🙂", "\ufeff", "\x7f", "\\n", "''", "*/", "//", "/*",
         "<script>", "]]>", "sh 'rm -rf /'", "\"; rm -rf / #"]
PLAIN = "plain-value"


def hostile(max_size: int = 8) -> st.SearchStrategy[str]:
    piece = st.one_of(st.sampled_from(NASTY), st.text(max_size=12))
    short = st.lists(piece, min_size=1, max_size=max_size).map("".join)
    long = st.tuples(st.sampled_from(NASTY), st.integers(200, 2000)).map(lambda t: t[0] * t[1])
    return st.one_of(short, long).filter(lambda s: "\x00" not in s)


def make_spec(text: str, owner: str) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data["description"] = text
    data["owner"] = owner
    data["serve"]["env"] = {"LOG_LEVEL": text, "EXTRA": "x" + text}
    data["kubernetes"]["annotations"] = {"bank.example.com/note": text}
    data["kubernetes"]["overlays"]["dev"]["env"] = {"LOG_LEVEL": text}
    data["model"]["stages"]["train"] = "python -m credit_risk.train " + text
    return data


def render(data: dict[str, Any], root: Path) -> dict[str, Artifact]:
    spec = Spec.model_validate(data)
    return {a.path: a for a in render_artifacts(spec, root)}


def skeleton(value: Any) -> Any:
    """The shape of a parsed document: keys and list lengths, with scalars replaced by type."""
    if isinstance(value, dict):
        return {k: skeleton(v) for k, v in value.items()}
    if isinstance(value, list):
        return [skeleton(v) for v in value]
    return type(value).__name__


def strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return [value] if isinstance(value, str) else []


_GROOVY_TOKEN = re.compile(
    r"""'''(?:\\.|(?!''').)*'''|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'"""
    r"""|//[^\n]*|/\*.*?\*/|[A-Za-z_][A-Za-z0-9_]*|[{}()\[\],:;=]|\S""",
    re.DOTALL,
)


def groovy_shape(text: str) -> tuple[list[str], list[str]]:
    """Code tokens (string literals replaced by STR) and the literals' raw bodies."""
    code, literals = [], []
    for tok in _GROOVY_TOKEN.findall(text):
        if tok.startswith(("'", '"')):
            code.append("STR")
            literals.append(tok)
        elif not tok.startswith(("//", "/*")):
            code.append(tok)
    return code, literals


def docker_instructions(text: str) -> list[str]:
    joined = re.sub(r"\\\n", " ", text)
    return [line.split()[0].upper() for line in joined.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


BASELINE: dict[str, Artifact] = {}


def baseline(root: Path) -> dict[str, Artifact]:
    if not BASELINE:
        BASELINE.update(render(make_spec(PLAIN, PLAIN), root))
    return BASELINE


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=hostile(), owner=hostile(4).filter(lambda s: 0 < len(s) <= 256))
def test_free_text_stays_data(tmp_path: Path, text: str, owner: str) -> None:
    base = baseline(tmp_path)
    out = render(make_spec(text, owner), tmp_path)
    assert sorted(out) == sorted(base)
    for path, artifact in out.items():
        if path.endswith((".yml", ".yaml")):
            docs = list(yaml.safe_load_all(artifact.text))
            base_docs = list(yaml.safe_load_all(base[path].text))
            assert skeleton(docs) == skeleton(base_docs), path
            for doc in docs:
                annotations = (doc.get("metadata") or {}).get("annotations") or {}
                if "mlgen.dev/description" in annotations:
                    assert annotations["mlgen.dev/description"] == text
                    assert annotations["mlgen.dev/owner"] == owner
                    assert annotations["bank.example.com/note"] == text
                if doc.get("kind") == "ConfigMap":
                    assert doc["data"]["LOG_LEVEL"] == text
                    assert doc["data"]["EXTRA"] == "x" + text
                for patch in doc.get("patches") or []:
                    ops = yaml.safe_load(patch["patch"])
                    base_ops = yaml.safe_load(
                        next(p for p in base_docs[0]["patches"] if p["target"] == patch["target"])[
                            "patch"
                        ]
                    )
                    assert skeleton(ops) == skeleton(base_ops)
                    if patch["target"]["kind"] == "ConfigMap":
                        assert ops[0]["value"] == text
        elif path.endswith("Jenkinsfile"):
            code, _ = groovy_shape(artifact.text)
            assert code == groovy_shape(base[path].text)[0]
            assert artifact.text.count("{") == artifact.text.count("}")
        elif path.endswith("Dockerfile"):
            assert docker_instructions(artifact.text) == docker_instructions(base[path].text)
    # Where the text appears, it appears only as data: a hostile line never starts a YAML key.
    assert any(text in strings(list(yaml.safe_load_all(a.text))) for p, a in out.items()
               if p.endswith("configmap.yaml"))


@pytest.mark.slow  # one CodeNarc (JVM) run over a few hostile renders: 10-20 s
def test_hostile_jenkinsfiles_parse_as_groovy(tmp_path: Path) -> None:
    need("npm-groovy-lint", "java", "node")
    from mlgen.validate import groovy
    from mlgen.validate.model import Workspace

    samples = [
        "'''\"\"\"${x}\\",
        "${{ secrets.X }}`id`\n#: &a *a !!python/object",
        "🙂\u2028'" * 50,
    ]
    files = []
    for i, text in enumerate(samples):
        data = make_spec(text, "o" + text[:200])
        data["ci"]["jenkins"]["agent_label"] = "linux && python"
        artifact = render(data, tmp_path)["Jenkinsfile"]
        (tmp_path / f"s{i}").mkdir()
        (tmp_path / f"s{i}" / "Jenkinsfile").write_text(artifact.text)
        files.append(f"s{i}/Jenkinsfile")
    outcome = groovy.check(Workspace(root=tmp_path, scratch=tmp_path, jenkinsfiles=tuple(files)))
    assert outcome.findings == []


IDENTIFIERS = {
    # key path -> (setter, pattern the target allows)
    "name": (lambda d, v: d.__setitem__("name", v), r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"),
    "kubernetes.namespace": (lambda d, v: d["kubernetes"].__setitem__("namespace", v),
                             r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"),
    "model.features.numeric[0]": (lambda d, v: d["model"]["features"]["numeric"].__setitem__(0, v),
                                  r"[A-Za-z_][A-Za-z0-9_]{0,62}"),
    "kubernetes.environments[0]": (lambda d, v: d["kubernetes"].__setitem__(
        "environments", [v, "staging", "prod"]), r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"),
    "model.stages": (lambda d, v: d["model"].__setitem__("stages", {v: "true"}),
                     r"[a-z][a-z0-9_-]{0,30}"),
    "kubernetes.labels": (lambda d, v: d["kubernetes"].__setitem__("labels", {v: "x"}),
                          LABEL_KEY_RE.strip("^$")),
    # Names the Azure pipeline writes where Azure expands $(...), ${{ }} and $[ ].
    "ci.azure.registry_connection": (
        lambda d, v: d["ci"]["azure"].__setitem__("registry_connection", v),
        CONNECTION_RE.strip("^$")),
    "ci.azure.pool": (lambda d, v: d["ci"]["azure"].__setitem__("pool", v),
                      CONNECTION_RE.strip("^$")),
}


@pytest.mark.parametrize("key", sorted(IDENTIFIERS))
@settings(max_examples=25, deadline=None)
@given(value=hostile(4))
def test_identifier_fields_reject_bad_input(key: str, value: str) -> None:
    setter, pattern = IDENTIFIERS[key]
    if re.fullmatch(pattern, value) and len(value) <= 63:
        return  # a valid identifier: nothing to reject
    data = copy.deepcopy(BASE)
    data["kubernetes"].pop("overlays")  # overlays name environments; keep the case minimal
    setter(data, value)
    with pytest.raises(SpecError) as caught:
        parse_spec(yaml.safe_dump(data, allow_unicode=True), "mlgen.yaml")
    message = str(caught.value)
    assert message.startswith("mlgen.yaml:")
    assert key.split("[")[0] in message
