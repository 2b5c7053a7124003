"""Which environment, image digest and overlay a deploy is about, and the pinned manifests.

Pinning by digest is why this is more than `kubectl apply -k`: tags move, digests do not. The
overlay is layered under a throwaway kustomization whose only job is an `images:` entry with
the digest, so the committed overlay stays as rendered and every container (the server and
the drift CronJob) gets the same immutable reference. The overlay is built by `kubectl
kustomize` (the same kustomize the users' clusters are managed with); applying and waiting go
through the `kubernetes` client (see `rollout.py`).
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..errors import MlgenError, UsageError
from ..integrations.kubectl import Kubectl

DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")


@dataclass(frozen=True)
class Target:
    environment: str
    namespace: str
    deployment: str
    overlay: Path
    image_name: str  # as the manifests name it (spec.image_name)
    pinned_image: str  # where the digest lives (the pushed repository)
    digest: str
    port: int
    ready_path: str
    model_ready_path: str


def read_digest_file(path: Path) -> tuple[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UsageError(f"--digest-file {path} does not exist; `mlgen push --digest-file "
                         f"{path}` writes it") from exc
    except (OSError, ValueError) as exc:
        raise UsageError(f"--digest-file {path}: not readable JSON ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("digest"), str) \
            or not isinstance(data.get("image"), str):
        raise UsageError(f"--digest-file {path}: expected an object with 'image' and 'digest'")
    return data["image"], data["digest"]


def resolve_target(project: Path, environment: str, digest: str | None,
                   digest_file: Path | None) -> Target:
    from mlgen.models.contract import READY_PATH, model_ready_path

    from ..project import load_project

    spec = load_project(project)
    if environment not in spec.kubernetes.environments:
        raise UsageError(f"unknown environment {environment!r}; mlgen.yaml kubernetes.environments "
                         f"lists: {', '.join(spec.kubernetes.environments)}")
    if (digest is None) == (digest_file is None):
        raise UsageError("give exactly one of --digest sha256:... or --digest-file FILE")
    pinned = spec.image_name
    if digest_file is not None:
        pinned, digest = read_digest_file(digest_file)
    if digest is None:
        raise UsageError("give --digest or --digest-file")
    if not DIGEST_RE.match(digest):
        raise UsageError(f"image digest {digest!r} is not of the form sha256:<64 hex digits>")
    overlay = project / spec.outputs.kubernetes / "overlays" / environment
    if not (overlay / "kustomization.yaml").is_file():
        raise UsageError(f"{overlay}/kustomization.yaml does not exist; run `mlgen render`")
    return Target(environment=environment, namespace=spec.namespace, deployment=spec.name,
                  overlay=overlay, image_name=spec.image_name, pinned_image=pinned,
                  digest=digest, port=spec.serve.port, ready_path=READY_PATH,
                  model_ready_path=model_ready_path(spec.name))


def render_pinned(kubectl: Kubectl, target: Target) -> str:
    """The overlay's manifests with every use of the image pinned to the digest."""
    with tempfile.TemporaryDirectory(prefix="mlgen-deploy-") as tmp:
        # kustomize refuses absolute resource paths; a relative one may leave the root.
        overlay = os.path.relpath(target.overlay.resolve(), tmp)
        Path(tmp, "kustomization.yaml").write_text(
            "apiVersion: kustomize.config.k8s.io/v1beta1\n"
            "kind: Kustomization\n"
            f"resources:\n  - {json.dumps(overlay)}\n"
            "images:\n"
            f"  - name: {json.dumps(target.image_name)}\n"
            f"    newName: {json.dumps(target.pinned_image)}\n"
            f"    digest: {json.dumps(target.digest)}\n",
            encoding="utf-8",
        )
        manifests = kubectl.run("kustomize", tmp)
        # With engine argo-rollouts the Deployment's template (the Rollout's, by workloadRef)
        # runs the challenger, so it keeps its image the same way.
        rollout = any(d.get("kind") == "Rollout" for d in manifest_objects(manifests))
        keep = target.deployment if rollout else f"{target.deployment}-challenger"
        if rollout or f"name: {keep}" in manifests:
            manifests = _keep_challenger_image(kubectl.run("kustomize", str(target.overlay)),
                                               manifests, keep)
    reference = f"{target.pinned_image}@{target.digest}"
    if reference not in manifests and not rollout:
        raise MlgenError(f"the rendered {target.environment} overlay does not use image "
                         f"{target.image_name}; check `images:` in {target.overlay}")
    return manifests


def _keep_challenger_image(unpinned: str, pinned: str, challenger: str) -> str:
    """The canary runs kubernetes.challenger.image_tag, the build under test: the digest pin
    (an `images:` entry, which matches by repository name) must not turn it into the
    champion's build, so its containers get their images back from the unpinned overlay."""
    def is_challenger(doc: dict[str, Any]) -> bool:
        return doc.get("kind") == "Deployment" and doc["metadata"]["name"] == challenger

    original = next(d for d in manifest_objects(unpinned) if is_challenger(d))
    images = {c["name"]: c["image"] for c in original["spec"]["template"]["spec"]["containers"]}
    docs = manifest_objects(pinned)
    for doc in filter(is_challenger, docs):
        for container in doc["spec"]["template"]["spec"]["containers"]:
            container["image"] = images.get(container["name"], container["image"])
    return yaml.safe_dump_all(docs, sort_keys=False)


def manifest_objects(manifests: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(manifests) if isinstance(doc, dict)]
