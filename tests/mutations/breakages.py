"""Deliberate breakages of the running platform, each undone on exit.

Every breakage checks that it landed (the live object differs from what the platform
applied, or the pods run the broken code) before it yields, and on exit puts back exactly what
was there and checks that too. The shipped code has no switch that turns a safety off: a
broken invoice-app or payment-provider is an image built here from the deployed one, with one
line of its source replaced.
"""

import json
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.cluster.conftest import apply, containerd_name, ctr, import_docker_image, kubectl
from tests.e2e.conftest import pods, ready, wait_rolled_out

# What the API server adds to an object; left out when the object is written back.
SERVER_FIELDS = ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields")
WORKLOADS = ("deployment", "statefulset")


def get(kind: str, name: str, namespace: str | None) -> dict | None:
    where = ["-n", namespace] if namespace else []
    listed = kubectl("get", kind, name, *where, "-o", "json", "--ignore-not-found")
    return json.loads(listed) if listed.strip() else None


def _essence(manifest: dict) -> tuple:
    """What a breakage changes: the spec, the labels, a binding's subjects."""
    return (
        manifest.get("spec"),
        manifest["metadata"].get("labels"),
        manifest.get("subjects"),
        manifest.get("roleRef"),
    )


def _settle(kind: str, name: str, namespace: str | None) -> None:
    if kind in WORKLOADS:
        wait_rolled_out(namespace or "", f"{kind}/{name}")


# The resource names of the kinds the breakages write back, for the API paths.
PLURALS = {
    "CronJob": "cronjobs",
    "Deployment": "deployments",
    "Ingress": "ingresses",
    "Namespace": "namespaces",
    "NetworkPolicy": "networkpolicies",
    "PodDisruptionBudget": "poddisruptionbudgets",
    "StatefulSet": "statefulsets",
}


# Kinds whose API refuses an update that names no resourceVersion (the PodDisruptionBudget
# strategy's AllowUnconditionalUpdate is false): written back over the version there now.
CONDITIONAL_UPDATES = ("PodDisruptionBudget",)


def _contains(live: object, wanted: object) -> bool:
    """Whether `live` holds everything `wanted` does (and perhaps more keys)."""
    if isinstance(wanted, dict):
        return isinstance(live, dict) and all(
            key in live and _contains(live[key], value) for key, value in wanted.items()
        )
    if isinstance(wanted, list | tuple):
        return (
            isinstance(live, list | tuple)
            and len(live) == len(wanted)
            and all(_contains(a, b) for a, b in zip(live, wanted, strict=True))
        )
    return live == wanted


def _annotation(manifest: dict, key: str) -> str | None:
    return (manifest["metadata"].get("annotations") or {}).get(key)


def _api_path(manifest: dict, named: bool) -> str:
    version = manifest["apiVersion"]
    path = "/api/v1" if version == "v1" else f"/apis/{version}"
    if namespace := manifest["metadata"].get("namespace"):
        path += f"/namespaces/{namespace}"
    path += f"/{PLURALS[manifest['kind']]}"
    return f"{path}/{manifest['metadata']['name']}" if named else path


def _put_back(original: dict, kind: str) -> None:
    """Writes `original` back as it was (replacing what is there, or creating it again).
    Through the raw API: `kubectl replace` and `create` would rewrite the last-applied
    annotation, and the deploy stage would then see a change to make."""
    name, namespace = original["metadata"]["name"], original["metadata"].get("namespace")
    written = json.loads(json.dumps(original))
    for field in SERVER_FIELDS:
        written["metadata"].pop(field, None)
    written.pop("status", None)
    there = get(kind, name, namespace)
    if there is not None and original["kind"] in CONDITIONAL_UPDATES:
        written["metadata"]["resourceVersion"] = there["metadata"]["resourceVersion"]
    body = json.dumps(written)
    recreated = there is None
    if recreated:
        kubectl("create", "--raw", _api_path(original, named=False), "-f", "-", stdin=body)
    else:
        kubectl("replace", "--raw", _api_path(original, named=True), "-f", "-", stdin=body)
    live = get(kind, name, namespace)
    assert live is not None, f"{kind}/{name} was not written back"
    # A created object may gain what admission defaults (an Ingress its default class).
    restored = (
        _contains(_essence(live), _essence(original))
        if recreated
        else _essence(live) == _essence(original)
    )
    assert restored, f"{kind}/{name} differs: {_essence(live)} != {_essence(original)}"
    applied = "kubectl.kubernetes.io/last-applied-configuration"
    assert _annotation(live, applied) == _annotation(original, applied), f"{kind}/{name}: {applied}"
    _settle(kind, name, namespace)


@contextmanager
def patched(kind: str, name: str, namespace: str | None, patch: list | dict) -> Iterator[None]:
    """A JSON patch (a list) or a strategic-merge patch (a dict) of one live object."""
    original = get(kind, name, namespace)
    assert original is not None, f"{kind}/{name} is not deployed"
    where = ["-n", namespace] if namespace else []
    kind_of_patch = "json" if isinstance(patch, list) else "strategic"
    try:
        kubectl("patch", kind, name, *where, "--type", kind_of_patch, "-p", json.dumps(patch))
        changed = get(kind, name, namespace)
        assert changed is not None, f"{kind}/{name} is gone"
        assert _essence(changed) != _essence(original), (
            f"the patch changed {kind}/{name} in nothing"
        )
        _settle(kind, name, namespace)
        yield
    finally:
        _put_back(original, kind)


@contextmanager
def removed(kind: str, name: str, namespace: str | None) -> Iterator[None]:
    original = get(kind, name, namespace)
    assert original is not None, f"{kind}/{name} is not deployed"
    where = ["-n", namespace] if namespace else []
    try:
        kubectl("delete", kind, name, *where, "--wait=true")
        assert get(kind, name, namespace) is None, f"{kind}/{name} is still there"
        yield
    finally:
        _put_back(original, kind)


@contextmanager
def added(manifest: dict) -> Iterator[None]:
    kind, name = manifest["kind"].lower(), manifest["metadata"]["name"]
    namespace = manifest["metadata"].get("namespace")
    where = ["-n", namespace] if namespace else []
    try:
        apply(manifest)
        assert get(kind, name, namespace) is not None, f"{kind}/{name} was not created"
        yield
    finally:
        kubectl("delete", kind, name, *where, "--ignore-not-found", "--wait=true")
        assert get(kind, name, namespace) is None, f"{kind}/{name} is still there"


def restart_pods(namespace: str, deployment: str) -> None:
    """Deletes the Deployment's pods and waits for their replacements, which start against
    whatever has changed since."""
    kubectl("delete", "pods", "-n", namespace, "-l", f"app.kubernetes.io/name={deployment}")
    wait_rolled_out(namespace, f"deployment/{deployment}")


def _file_in_image(image: str, path: str) -> str:
    return subprocess.run(
        ["docker", "run", "--rm", "--network=none", "--entrypoint", "python3", image, "-c",
         f"import sys; sys.stdout.write(open({path!r}).read())"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


MUTANT_DOCKERFILE = """\
FROM {image}
USER 0:0
COPY mutated.py {path}
RUN ["python3", "-m", "compileall", "-q", "-f", "--invalidation-mode", "unchecked-hash", "{path}"]
USER {user}
"""


@contextmanager
def mutant_image(
    namespace: str, deployment: str, module: str, old: str, new: str, name: str
) -> Iterator[None]:
    """Rolls `deployment` onto an image built from the one it runs, with `old` replaced by
    `new` in `module` (a path under /app) and a first line naming the mutation, which every
    pod is checked for before the proof runs."""
    live = get("deployment", deployment, namespace)
    assert live is not None, f"deployment/{deployment} is not deployed"
    template = live["spec"]["template"]["spec"]
    image = template["containers"][0]["image"]
    uid = template["securityContext"]["runAsUser"]
    path, marker = f"/app/{module}", f"# mutation: {name}"
    source = _file_in_image(image, path)
    assert source.count(old) == 1, f"{path} no longer holds the line the mutation {name} breaks"
    tag = f"{image.rsplit(':', 1)[0]}:mutant-{name}"
    with tempfile.TemporaryDirectory() as context:
        Path(context, "mutated.py").write_text(f"{marker}\n{source.replace(old, new)}")
        Path(context, "Dockerfile").write_text(
            MUTANT_DOCKERFILE.format(image=image, path=path, user=f"{uid}:{uid}")
        )
        subprocess.run(
            ["docker", "build", "--network=none", "-q", "-t", tag, context],
            capture_output=True, check=True,
        )  # fmt: skip
    import_docker_image(tag)
    image_path = "/spec/template/spec/containers/0/image"
    try:
        with patched(
            "deployment",
            deployment,
            namespace,
            [{"op": "replace", "path": image_path, "value": tag}],
        ):
            running = [p["metadata"]["name"] for p in pods(namespace, deployment) if ready(p)]
            assert running, f"no Ready {deployment} pod runs the mutant"
            for pod in running:
                first = kubectl(
                    "exec", "-n", namespace, pod, "--", "python3", "-c",
                    f"print(open({path!r}).readline().strip())",
                )  # fmt: skip
                assert first.strip() == marker, f"{pod} does not run the mutant {name}"
            yield
    finally:
        ctr("images", "rm", containerd_name(tag), check=False)
        subprocess.run(["docker", "image", "rm", tag], capture_output=True, check=False)
