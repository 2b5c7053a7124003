"""The Jenkins jobs a spec describes: desired state, config.xml rendering, comparison.

No network here. A Spec becomes a `JobSpec` (plain values), a JobSpec becomes a
`DesiredJob` (the config.xml mlgen wants on the controller), and live config.xml is
compared with it as normalised XML, so whitespace, attribute order, the XML declaration
and the plugin versions Jenkins writes into `plugin="name@version"` never count as changes.

Each managed job's description ends with a marker line that names the repository it came
from and a digest of the config mlgen wrote. Reading a live config is enough to tell "the
spec changed" (marker digest differs from the desired one) from "someone edited the job on
the server" (the live config no longer hashes to its own marker digest), with no local state.
"""
from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from mlgen.models.contract import SPEC_FILENAME

from ..errors import MlgenError, SpecError, SpecIssue
from ..textdiff import diff_text

if TYPE_CHECKING:
    import jinja2

    from ..spec import Spec

JobKind = Literal["multibranch", "pipeline"]
_DIGEST_PLACEHOLDER = "0" * 16
MARKER_RE = re.compile(r"\[mlgen source=(?P<source>\S+) config=(?P<digest>[0-9a-f]{16})\]")
MULTIBRANCH_CLASS = "org.jenkinsci.plugins.workflow.multibranch.WorkflowMultiBranchProject"
PIPELINE_CLASS = "org.jenkinsci.plugins.workflow.job.WorkflowJob"
JAVA_CLASS = {"multibranch": MULTIBRANCH_CLASS, "pipeline": PIPELINE_CLASS}
# Job properties a Declarative Jenkinsfile writes into the job's own config.xml when it runs
# (options, parameters, triggers): the Jenkinsfile owns them, so comparing them would make
# every apply after a build "change" the job back.
_JENKINSFILE_OWNED = ("hudson.model.ParametersDefinitionProperty",
                      "jenkins.model.BuildDiscarderProperty",
                      "org.jenkinsci.plugins.workflow.job.properties.")


@dataclass(frozen=True)
class Marker:
    source: str
    digest: str


@dataclass(frozen=True)
class JobSpec:
    """Everything a job's config.xml is made of, as plain values."""

    full_name: str  # folder path + name, "/"-separated
    kind: JobKind
    description: str
    source: str  # the repository the job belongs to ("owner/repo"); goes in the marker
    repo_owner: str
    repo_name: str
    credentials_id: str
    script_path: str
    branch: str
    api_uri: str | None = None  # GitHub Enterprise REST API root; None means github.com

    @property
    def folders(self) -> tuple[str, ...]:
        """Folder paths from the top down: "a/b/job" -> ("a", "a/b")."""
        parts = self.full_name.split("/")[:-1]
        return tuple("/".join(parts[: i + 1]) for i in range(len(parts)))

    @property
    def source_id(self) -> str:
        return "mlgen-" + hashlib.sha256(self.full_name.encode()).hexdigest()[:12]

    @property
    def web_host(self) -> str:
        return urlsplit(self.api_uri).netloc if self.api_uri else "github.com"

    @property
    def repo_web_url(self) -> str:
        return f"https://{self.web_host}/{self.repo_owner}/{self.repo_name}"

    @property
    def repo_clone_url(self) -> str:
        return self.repo_web_url + ".git"

    @property
    def build_target(self) -> str:
        """The job a build is started on: a multibranch project builds per branch."""
        return f"{self.full_name}/{self.branch}" if self.kind == "multibranch" else self.full_name

    def marker(self, digest: str = _DIGEST_PLACEHOLDER) -> str:
        return (f"Managed by mlgen from {self.source}: change its mlgen.yaml, not this page "
                f"(edits here are reported and overwritten). [mlgen source={self.source} "
                f"config={digest}]")

    @property
    def description_with_marker(self) -> str:
        text = self.description.strip()
        return f"{text}\n\n{self.marker()}" if text else self.marker()


@dataclass(frozen=True)
class DesiredJob:
    job: JobSpec
    xml: str  # with the marker's digest filled in
    digest: str

    @property
    def name(self) -> str:
        return self.job.full_name


def job_spec_from_spec(spec: Spec, spec_file: str = SPEC_FILENAME,
                       model_dir: str = "") -> JobSpec:
    """The job a loaded spec describes; errors name the spec file and the key.

    `model_dir`: the model's folder in a monorepo; the job checks out the whole repository
    and runs the Jenkinsfile in that folder."""
    jenkins, github = spec.ci.jenkins, spec.ci.github
    if not github.repository:
        # A spec problem (exit 2), not a Jenkins failure: nothing was sent anywhere.
        raise SpecError([SpecIssue(spec_file, "ci.github.repository", 0, 0,
                                   "needed to register the Jenkins job (the job checks out that "
                                   "repository); set it to 'owner/name'")])
    owner, _, repo = github.repository.partition("/")
    full_name = f"{jenkins.folder}/{spec.name}" if jenkins.folder else spec.name
    return JobSpec(
        full_name=full_name, kind=jenkins.kind, description=spec.description,
        source=github.repository, repo_owner=owner, repo_name=repo,
        credentials_id=jenkins.credentials.github,
        script_path=str(PurePosixPath(model_dir or ".", spec.outputs.jenkinsfile)),
        branch=github.default_branch,
        api_uri=jenkins.github_api_url,
    )


MONITOR_SUFFIX = "-monitor"


def monitor_job_spec(spec: Spec, main: JobSpec) -> JobSpec | None:
    """The scheduled monitor's own job (Jenkinsfile.monitor), when the pipelines render one.
    Always a plain Pipeline job on the default branch: a multibranch project would run its cron
    on every branch, and the main job must not carry the timer (it deploys)."""
    from .common import monitor_in_ci

    if not monitor_in_ci(spec):
        return None
    return replace(
        main, full_name=main.full_name + MONITOR_SUFFIX, kind="pipeline",
        description=f"Scheduled live-performance monitor of {spec.name} (mlgen monitor; "
                    f"starts {main.build_target} on a real drop).",
        script_path=main.script_path + ".monitor")


def environment() -> jinja2.Environment:
    """The one place that picks the Jinja environment (the project-wide factory)."""
    from ..render import make_environment

    return make_environment()


def render_job(job: JobSpec, env: jinja2.Environment | None = None) -> DesiredJob:
    env = env or environment()
    draft = env.get_template(f"jenkins-job/{job.kind}.xml.j2").render(job=job)
    digest = config_digest(draft)
    return DesiredJob(job, draft.replace(job.marker(), job.marker(digest)), digest)


def render_folder(description: str, env: jinja2.Environment | None = None) -> str:
    env = env or environment()
    return env.get_template("jenkins-job/folder.xml.j2").render(description=description)


# -- comparison ---------------------------------------------------------------------------------
def _parse(text: str, what: str) -> ET.Element:
    try:
        return ET.fromstring(text.encode("utf-8"))
    except ET.ParseError as exc:
        raise MlgenError(f"{what}: config.xml is not well-formed XML ({exc})") from exc


def normalise_xml(text: str, what: str = "config.xml") -> str:
    """A canonical form: no declaration, sorted attributes, trimmed text, no plugin versions."""
    root = _parse(text, what)
    for node in root.iter():
        plugin = node.get("plugin")
        if plugin:
            node.set("plugin", plugin.partition("@")[0])
        if node.text is not None:
            node.text = node.text.strip() or None
        node.tail = None
        node.attrib = dict(sorted(node.attrib.items()))
    if root.tag == "flow-definition":
        properties = root.find("properties")
        if properties is not None:
            for prop in list(properties):
                if prop.tag.startswith(_JENKINSFILE_OWNED):
                    properties.remove(prop)
    return ET.canonicalize(ET.tostring(root, encoding="unicode"), strip_text=True)


def parse_marker(description: str) -> Marker | None:
    found = MARKER_RE.search(description or "")
    return Marker(found.group("source"), found.group("digest")) if found else None


def description_of(config_xml: str, what: str = "config.xml") -> str:
    node = _parse(config_xml, what).find("description")
    return (node.text or "") if node is not None else ""


def config_digest(config_xml: str, what: str = "config.xml") -> str:
    """Digest of the normalised config with the marker's own digest blanked out."""
    canonical = MARKER_RE.sub(lambda m: m.group(0).replace(m.group("digest"), _DIGEST_PLACEHOLDER),
                              normalise_xml(config_xml, what))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def root_tag(config_xml: str, what: str = "config.xml") -> str:
    return _parse(config_xml, what).tag


def pretty(canonical: str) -> list[str]:
    root = ET.fromstring(canonical)
    ET.indent(root, space="  ")
    return ET.tostring(root, encoding="unicode").splitlines()


def xml_diff(live: str, desired: str, name: str) -> str:
    """A unified diff of the two configs, both normalised, for people to read."""
    old, new = ("".join(line + "\n" for line in pretty(normalise_xml(xml, name)))
                for xml in (live, desired))
    # Printed line by line (no trailing newline), as before the diff helper was shared.
    return diff_text(old, new, f"{name} (on Jenkins)", f"{name} (from {SPEC_FILENAME})",
                     context=2).removesuffix("\n")
