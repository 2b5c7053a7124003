"""Carry out `mlgen promote`'s decision on the live cluster with kubectl.

kubectl (not the `kubernetes` client) keeps this independent of the kubeconfig handling of
`mlgen deploy`; it reads KUBECONFIG from the environment, so no credential is ever on a
command line. Each step is one kubectl call, printed before it runs.
"""
from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import MlgenError


@dataclass(frozen=True)
class Step:
    why: str
    argv: tuple[str, ...]

    def shown(self) -> str:
        return " ".join(self.argv)


def plan(namespace: str, name: str, image: str, promote: bool,
         timeout: str = "600s") -> list[Step]:
    """Promote: the champion gets the challenger's image, then the challenger goes to 0 pods.
    Roll back: the challenger goes to 0 pods; the champion is untouched."""
    kubectl = ("kubectl", "--namespace", namespace)
    steps = []
    if promote:
        steps += [
            Step("the champion runs the challenger's image",
                 (*kubectl, "set", "image", f"deployment/{name}", f"server={image}")),
            Step("wait for the champion's rollout",
                 (*kubectl, "rollout", "status", f"deployment/{name}", f"--timeout={timeout}")),
        ]
    steps.append(Step("the challenger serves no more requests",
                      (*kubectl, "scale", f"deployment/{name}-challenger", "--replicas=0")))
    return steps


def apply(steps: list[Step], echo: Callable[[str], None]) -> None:
    if shutil.which("kubectl") is None:
        raise MlgenError("kubectl is not on PATH: install it or run `mlgen promote` "
                         "with --dry-run and apply the plan yourself")
    for step in steps:
        echo(f"+ {step.shown()}  # {step.why}")
        done = subprocess.run(step.argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise MlgenError(f"{step.shown()} failed ({done.returncode}): "
                             f"{(done.stderr or done.stdout).strip()[-2000:]}")
