"""End to end, for real: scaffold → train → `mlgen build` → `mlgen push` → the dev overlay's
Deployment under `podman kube play` → probes, V2 inference and /predict → the drift CronJob's
job as a pod → the staging overlay's canary pair (champion and challenger Deployments) under
kube play, both serving.

Nothing is mocked: the docker SDK talks to podman's Docker-compatible API, the image goes to a
real registry on loopback, the pod pulls it back by the digest `mlgen deploy` pins, and the
probe paths and ports are read from the rendered manifest. See tests/images/podman_env.py for
the setup and tests/reference/containers.md for why each setting is there.

Run alone: `pytest tests/e2e` (about 5 minutes on 2 cores; most of it is pip inside the build).
Without podman it skips with the reason, unless MLGEN_E2E_REQUIRED=1 (CI) makes that a failure.
"""
from __future__ import annotations

import csv
import functools
import hashlib
import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import helpers
from tests.e2e import kubeplay
from tests.e2e.common import Timings, containers_box, exited, git, http_get, ids_after
from tests.images.podman_env import (
    BASE_IMAGE,
    Containers,
    ensure_base_image,
    free_port,
    removes_new_images,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

from tests.helpers import REPO as REPO_ROOT

NAME = "mlgen-e2e"  # fixed, so a rerun on a developer machine reuses podman's layer cache
CANARY_ENV = "staging"  # runs the challenger; dev (the tests above) runs the champion alone
CHALLENGER_TAG = "e2e-challenger"
# The canary's pods and volume run beside dev's: kube play names them after the objects.
CANARY_SUFFIX = "-canary"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
TIMINGS = Timings()


@dataclass(frozen=True)
class Project:
    root: Path
    wheel: Path
    env: dict[str, str]

    def mlgen(
        self, *args: str, timeout: float = 900, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return run_mlgen("-C", str(self.root), *args, env=self.env, timeout=timeout, check=check)


@dataclass(frozen=True)
class Pushed:
    image: str
    tag: str
    digest: str
    image_id: str
    size: int
    revision: str
    tags: tuple[str, ...]


@dataclass(frozen=True)
class Challenger:
    image: str  # REGISTRY/NAME:CHALLENGER_TAG, pushed
    artifact: Path  # the model file inside it


@dataclass(frozen=True)
class Canary:
    docs: list[dict[str, Any]]
    urls: dict[str, str]  # Deployment name -> the base URL of its played pod


@dataclass(frozen=True)
class Running:
    docs: list[dict[str, Any]]
    probes: kubeplay.Probes
    base_url: str
    pod_id: str
    volume: str


def run_mlgen(*args: str, env: dict[str, str], timeout: float = 900,
              check: bool = True) -> subprocess.CompletedProcess[str]:
    return helpers.run_mlgen(*args, env=env, timeout=timeout, check=check)



@pytest.fixture(scope="module")
def box() -> Iterator[Containers]:
    yield from containers_box(TIMINGS, "e2e")


@pytest.fixture(scope="module")
def project(box: Containers, tmp_path_factory: pytest.TempPathFactory) -> Project:
    work = tmp_path_factory.mktemp("e2e")
    with TIMINGS.timed("base image"):
        base = ensure_base_image(box)
    with TIMINGS.timed("mlgen wheel"):
        wheel = build_wheel(work / "dist")
    root = work / NAME
    env = dict(box.env)
    run_mlgen("init", str(root), "--name", NAME, "--registry", box.registry,
              "--non-interactive", env=env)
    set_spec_values(root / "mlgen.yaml", {
        ("image", "base"): base,
        # Log every row so a few hundred requests give the drift job enough to judge.
        ("serve", "request_log", "sample_rate"): 1.0,
        # A canary in staging: 3 champion pods at the autoscaler's minimum and a weight of 25
        # make the challenger exactly one pod of four.
        ("kubernetes", "challenger"): {"image_tag": CHALLENGER_TAG, "weight": 25,
                                       "environments": [CANARY_ENV]},
        ("kubernetes", "overlays", CANARY_ENV, "autoscaling"): {"min": 3, "max": 6,
                                                                "cpu_utilization": 70},
    })
    proj = Project(root=root, wheel=wheel, env=env)
    proj.mlgen("render")
    with TIMINGS.timed("train"):
        for stage in ("data", "train"):
            proj.mlgen("run", stage)
    assert (root / "artifacts" / "model.joblib").is_file()
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "-c", "user.name=e2e", "-c", "user.email=e2e@example.invalid", "commit", "-qm", "e2e")
    return proj


@pytest.fixture(scope="module")
def pushed(box: Containers, project: Project) -> Iterator[Pushed]:
    # Build-stage layers too: a developer's disk should not grow ~600 MB per run.
    with removes_new_images(box, keep=(BASE_IMAGE,)):
        yield from _build_and_push(box, project)


def _build_and_push(box: Containers, project: Project) -> Iterator[Pushed]:
    with TIMINGS.timed("mlgen build"):
        built = project.mlgen("build", "--ca-bundle", str(CA_BUNDLE), "--wheel", str(project.wheel),
                              "--tag", "e2e", "--json")
    result = json.loads(built.stdout)
    try:
        assert not (project.root / ".mlgen/build/ca.crt").exists(), (
            "the CA bundle outlived the build"
        )
        assert not list((project.root / ".mlgen/build/wheels").glob("*.whl")), "the wheel stayed"
        with TIMINGS.timed("mlgen push"):
            project.mlgen(
                "push", "--tag", "e2e", "--digest-file", str(project.root / "reports/image.json")
            )
        record = json.loads((project.root / "reports/image.json").read_text())
        yield Pushed(image=record["image"], tag=record["tag"], digest=record["digest"],
                     image_id=result["id"], size=result["size"], revision=result["revision"],
                     tags=tuple(result["tags"]))
    finally:
        box.podman("rmi", "-f", result["id"], check=False)


@pytest.fixture(scope="module")
def running(box: Containers, project: Project, pushed: Pushed) -> Iterator[Running]:
    rendered = project.mlgen(
        "deploy", "dev", "--digest-file", str(project.root / "reports/image.json"), "--dry-run"
    )
    docs = kubeplay.load(rendered.stdout)
    probes = kubeplay.probes(docs)
    port = free_port()
    play_file = project.root / "reports" / "play-server.yaml"
    play_file.write_text(kubeplay.server_play(docs, port))
    volume = kubeplay.claim_name(docs)
    box.podman("volume", "rm", "-f", volume, check=False)  # a crashed earlier run's leftover
    pod_id = ""
    try:
        with TIMINGS.timed("kube play"):
            out = box.podman("kube", "play", str(play_file), timeout=600)
            pod_id = ids_after(out.stdout, "Pod:")[0]
            container = ids_after(out.stdout, "Container:")[0]
        base_url = f"http://127.0.0.1:{port}"
        with TIMINGS.timed("ready"):
            # As long as the manifest's startup probe would wait, and no longer.
            wait_until(functools.partial(_serving, box, container, base_url + probes.ready_path),
                       probes.startup_seconds, f"{probes.ready_path} to answer 200",
                       interval=1.0)
        yield Running(docs=docs, probes=probes, base_url=base_url, pod_id=pod_id, volume=volume)
    finally:
        if pod_id:
            box.podman("pod", "rm", "-f", pod_id, check=False)
        box.podman("volume", "rm", "-f", volume, check=False)


@pytest.fixture(scope="module")
def challenger(box: Containers, project: Project, pushed: Pushed) -> Iterator[Challenger]:
    """The challenger image: the champion's with the model saved again (compressed), so the
    same predictions come from an artifact of another version (its hash). A build FROM the
    pushed image with one COPY takes seconds, where a second `mlgen build` reinstalls
    everything."""
    artifact = str(features_spec(project)["model"].get("artifact", "artifacts/model.joblib"))
    context = project.root.parent / "challenger-image"
    context.mkdir(exist_ok=True)
    saved = context / Path(artifact).name
    # In the project's environment: the pickled pipeline may name the project's own modules.
    resave = "import sys, joblib; joblib.dump(joblib.load(sys.argv[1]), sys.argv[2], compress=3)"
    subprocess.run([sys.executable, "-c", resave, artifact, str(saved)], cwd=project.root,
                   env={**project.env, "PYTHONPATH": "src"}, check=True, timeout=120)
    saved.chmod(0o644)  # the image's user is not root
    (context / "Containerfile").write_text(
        f"FROM {pushed.image}:{pushed.tag}\nCOPY {saved.name} /app/{artifact}\n")
    image = f"{pushed.image}:{CHALLENGER_TAG}"
    with TIMINGS.timed("challenger image"):
        built = box.podman("build", "-q", "-t", image, "-f", str(context / "Containerfile"),
                           str(context), timeout=600)
    image_id = built.stdout.strip().splitlines()[-1]
    try:
        with TIMINGS.timed("challenger push"):
            box.podman("push", "--tls-verify=false", image, timeout=300)
        yield Challenger(image=image, artifact=saved)
    finally:
        box.podman("rmi", "-f", image_id, check=False)


@pytest.fixture(scope="module")
def canary(box: Containers, project: Project, pushed: Pushed,
           challenger: Challenger) -> Iterator[Canary]:
    """Champion and challenger of the staging overlay, each Deployment played by kube play."""
    rendered = project.mlgen("deploy", CANARY_ENV, "--digest-file",
                             str(project.root / "reports/image.json"), "--dry-run")
    docs = kubeplay.load(rendered.stdout)
    names = (NAME, f"{NAME}-challenger")
    claim = kubeplay.claim_name(docs) + CANARY_SUFFIX
    box.podman("volume", "rm", "-f", claim, check=False)  # a crashed earlier run's leftover
    pods: list[str] = []
    urls: dict[str, str] = {}
    containers: dict[str, str] = {}
    try:
        with TIMINGS.timed("canary kube play"):
            for name in names:
                port = free_port()
                play_file = project.root / "reports" / f"play-{name}.yaml"
                # The first play creates the request-log volume; the second pod shares it.
                play_file.write_text(kubeplay.server_play(
                    docs, port, name, suffix=CANARY_SUFFIX, with_claim=name == NAME))
                out = box.podman("kube", "play", str(play_file), timeout=600)
                pods.append(ids_after(out.stdout, "Pod:")[0])
                containers[name] = ids_after(out.stdout, "Container:")[0]
                urls[name] = f"http://127.0.0.1:{port}"
        with TIMINGS.timed("canary ready"):
            for name in names:  # both pods start at once; each within its startup probe
                probes = kubeplay.probes(docs, name)
                wait_until(functools.partial(_serving, box, containers[name],
                                             urls[name] + probes.ready_path),
                           probes.startup_seconds, f"{name}'s {probes.ready_path}",
                           interval=1.0)
        yield Canary(docs=docs, urls=urls)
    finally:
        for pod in pods:
            box.podman("pod", "rm", "-f", pod, check=False)
        box.podman("volume", "rm", "-f", claim, check=False)


def _serving(box: Containers, container: str, ready_url: str) -> bool:
    """The readiness URL answers 200; a container that exited fails at once, with its log."""
    state = exited(box, container)
    if state is not None:
        logs = box.podman("logs", container, check=False)
        raise AssertionError(f"the server container exited ({state.get('ExitCode')}):\n"
                             f"{logs.stdout[-4000:]}\n{logs.stderr[-4000:]}")
    return http_get(ready_url)[0] == 200


# ---- the tests ----------------------------------------------------------------------------------


def test_build_tags_labels_and_pushed_digest(
    box: Containers, project: Project, pushed: Pushed
) -> None:
    revision = git(project.root, "rev-parse", "HEAD").strip()
    assert pushed.revision == revision
    tags = {ref.rpartition(":")[2] for ref in pushed.tags}
    assert tags == {"0.1.0", revision[:12], "e2e"}, "version and revision tags, never only latest"
    labels = json.loads(box.podman("image", "inspect", pushed.image_id).stdout)[0]["Labels"]
    assert labels["org.opencontainers.image.revision"] == revision
    assert labels["org.opencontainers.image.version"] == "0.1.0"
    assert labels["org.opencontainers.image.title"] == NAME
    listed = json.loads(box.registry_get(f"/v2/{NAME}/tags/list"))
    assert "e2e" in listed["tags"]
    # The digest mlgen recorded is the one the registry serves for the tag.
    request = urllib.request.Request(
        f"http://{box.registry}/v2/{NAME}/manifests/e2e", method="HEAD",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json, "
                           "application/vnd.docker.distribution.manifest.v2+json"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.headers["Docker-Content-Digest"] == pushed.digest
    assert pushed.image == f"{box.registry}/{NAME}"
    print(f"\nimage size: {pushed.size / 1e6:.0f} MB ({pushed.size} bytes)")


def test_deploy_pins_every_workload_to_the_digest(running: Running, pushed: Pushed) -> None:
    assert kubeplay.images(running.docs) == {f"{pushed.image}@{pushed.digest}"}


def test_pod_serves_probes_inference_and_predict(running: Running, project: Project) -> None:
    status, _ = http_get(running.base_url + running.probes.live_path)
    assert status == 200
    status, _ = http_get(running.base_url + running.probes.ready_path)
    assert status == 200
    rows = training_rows(project, 3)
    spec_features = features(project)
    status, body = http_post(running.base_url + "/predict", {"instances": rows})
    assert status == 200, body
    assert len(body["predictions"]) == 3
    inputs = [{"name": f, "shape": [len(rows)],
               "datatype": "FP64" if f in spec_features["numeric"] else "BYTES",
               "data": [r[f] for r in rows]} for f in spec_features["all"]]
    status, body = http_post(f"{running.base_url}/v2/models/{NAME}/infer", {"inputs": inputs})
    assert status == 200, body
    assert body["model_name"] == NAME
    assert body["outputs"] and body["outputs"][0]["shape"][0] == 3
    status, body = http_post(running.base_url + "/predict", {"instances": [{"nope": 1}]})
    assert status == 422, "bad input is refused with details, not a 500"


def test_drift_job_runs_as_a_pod(box: Containers, running: Running, project: Project) -> None:
    # In-distribution traffic: the request log fills, and the job should find no drift.
    rows = training_rows(project, 600)
    for start in range(0, len(rows), 200):
        status, body = http_post(
            running.base_url + "/predict", {"instances": rows[start : start + 200]}
        )
        assert status == 200, body
    # The server appends its sampled rows about once a second; a CronJob runs long after the
    # traffic, so wait until the rows are on the shared volume before starting the job.
    mount = Path(
        json.loads(box.podman("volume", "inspect", running.volume).stdout)[0]["Mountpoint"]
    )

    def logged_rows() -> int:
        log_file = mount / "requests.jsonl"
        return log_file.read_bytes().count(b"\n") if log_file.exists() else 0

    wait_until(lambda: logged_rows() >= len(rows), 30, "the request log to hold every row",
               interval=0.5)
    pod_name = f"{NAME}-drift-e2e"
    play_file = project.root / "reports" / "play-drift.yaml"
    play_file.write_text(kubeplay.drift_play(running.docs, pod_name))
    pod_id = ""
    try:
        with TIMINGS.timed("drift job"):
            out = box.podman("kube", "play", str(play_file), timeout=300)
            pod_id = ids_after(out.stdout, "Pod:")[0]
            container = ids_after(out.stdout, "Container:")[0]
            state = wait_until(lambda: exited(box, container), 300, "the drift job to finish",
                               interval=1.0)
        logs = box.podman("logs", container, check=False)
        if state["ExitCode"] != 0:
            server = box.podman("pod", "logs", running.pod_id, check=False)
            listing = sorted(str(p.relative_to(mount)) for p in Path(mount).rglob("*"))
            raise AssertionError(
                f"drift job exited {state['ExitCode']}:\n{logs.stdout}\n{logs.stderr}\n"
                f"request-log volume: {listing}\nserver pod logs:\n"
                f"{server.stdout[-3000:]}\n{server.stderr[-3000:]}"
            )
        reports = list(Path(mount).rglob("drift-report.json"))
        assert reports, (
            f"no drift-report.json in the request-log volume:\n{logs.stdout}{logs.stderr}"
        )
        report = json.loads(reports[0].read_text())
        assert report["model"] == NAME
        assert report["exit_code"] == 0 and report["dataset"]["drift"] is False, report["dataset"]
        # Every row we sent was logged (sample_rate 1.0) and judged against the reference.
        assert report["current"]["rows"] >= 600, report["current"]
        assert report["dataset"]["evaluated"] == len(features(project)["all"])
    finally:
        if pod_id:
            box.podman("pod", "rm", "-f", pod_id, check=False)


def test_canary_pair_both_serve_their_own_model(canary: Canary, project: Project,
                                                 challenger: Challenger) -> None:
    artifact = project.root / str(features_spec(project)["model"].get(
        "artifact", "artifacts/model.joblib"))
    expected = {NAME: artifact, f"{NAME}-challenger": challenger.artifact}
    rows = training_rows(project, 5)
    answers, versions = {}, {}
    for name, url in canary.urls.items():
        status, body = http_post(url + "/predict", {"instances": rows})
        assert status == 200, f"{name}: {body}"
        answers[name] = body["predictions"]
        status, text = http_get(f"{url}/v2/models/{NAME}")
        assert status == 200, f"{name}: {text}"
        (version,) = json.loads(text)["versions"]
        versions[name] = version
        # Each pod serves the artifact of its own image (the version is its bytes' hash).
        digest = hashlib.sha256(expected[name].read_bytes()).hexdigest()
        assert version.startswith("sha256:") and digest.startswith(version[len("sha256:"):])
    assert len(set(versions.values())) == 2, versions
    assert len(answers[NAME]) == len(rows)
    assert answers[NAME] == answers[f"{NAME}-challenger"], "the same model, saved twice"


def test_canary_share_follows_the_weight_in_the_rendered_manifests(
        canary: Canary, project: Project, pushed: Pushed, challenger: Challenger) -> None:
    docs = canary.docs
    champion, rival = (kubeplay.deployment(docs, n) for n in (NAME, f"{NAME}-challenger"))

    def selects(selector: dict[str, str], workload: dict[str, Any]) -> bool:
        labels = workload["spec"]["template"]["metadata"]["labels"]
        return all(labels.get(k) == v for k, v in selector.items())

    # One Service in front of both: the share of requests is the share of pods.
    service = kubeplay.one(docs, "Service")
    assert selects(service["spec"]["selector"], champion)
    assert selects(service["spec"]["selector"], rival)
    target = service["spec"]["ports"][0]["targetPort"]
    for workload in (champion, rival):
        assert selects(workload["spec"]["selector"]["matchLabels"], workload)
        ports = kubeplay.server_container(docs, workload["metadata"]["name"])["ports"]
        assert target in {p.get("name") for p in ports} | {p["containerPort"] for p in ports}
    assert not selects(rival["spec"]["selector"]["matchLabels"], champion), (
        "the challenger's ReplicaSet must not count the champion's pods")
    # The champion's pods are the autoscaler's minimum; nothing scales the challenger.
    scalers = [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]
    assert [h["spec"]["scaleTargetRef"]["name"] for h in scalers] == [NAME]
    assert "replicas" not in champion["spec"], "the autoscaler owns the champion's count"
    champion_pods, challenger_pods = scalers[0]["spec"]["minReplicas"], rival["spec"]["replicas"]
    weight = features_spec(project)["kubernetes"]["challenger"]["weight"]
    assert challenger_pods / (champion_pods + challenger_pods) == weight / 100
    # The champion runs what was pushed, by digest; the challenger its own tag.
    assert kubeplay.images([champion]) == {f"{pushed.image}@{pushed.digest}"}
    assert kubeplay.images([rival]) == {challenger.image}


# ---- helpers ------------------------------------------------------------------------------------


def build_wheel(outdir: Path) -> Path:
    """mlgen is not on PyPI: the image installs this checkout's wheel via --find-links."""
    out = subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(outdir),
                          str(REPO_ROOT)], capture_output=True, text=True, timeout=600, check=False)
    assert out.returncode == 0, (
        f"python -m build failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    )
    wheels = list(outdir.glob("mlgen_pipelines-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def set_spec_values(path: Path, values: dict[tuple[str, ...], Any]) -> None:
    from ruamel.yaml import YAML

    yaml = YAML()
    data = yaml.load(path.read_text())
    for keys, value in values.items():
        node = data
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    with path.open("w") as fh:
        yaml.dump(data, fh)




def features_spec(project: Project) -> dict[str, Any]:
    import yaml

    return dict(yaml.safe_load((project.root / "mlgen.yaml").read_text()))


def features(project: Project) -> dict[str, list[str]]:
    f = features_spec(project)["model"]["features"]
    numeric, categorical = list(f.get("numeric", [])), list(f.get("categorical", []))
    return {"numeric": numeric, "categorical": categorical, "all": numeric + categorical}


def training_rows(project: Project, n: int) -> list[dict[str, Any]]:
    names = features(project)
    with (project.root / "data" / "train.csv").open(newline="") as fh:
        rows = []
        for record in csv.DictReader(fh):
            # An empty CSV cell is a missing value: null in JSON, as a client would send it.
            rows.append({k: None if record[k] == "" else
                         float(record[k]) if k in names["numeric"] else record[k]
                         for k in names["all"]})
            if len(rows) == n:
                break
    assert len(rows) == n
    return rows




def http_post(url: str, payload: Any) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")






