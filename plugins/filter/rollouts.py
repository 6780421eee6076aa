"""When a workload counts as rolled out, for the deploy playbook's one wait at the end.

The rules are `kubectl rollout status`'s, plus one for autoscaled Deployments: their spec has
no `replicas` (the HPA owns the count), so they start at one, and only count once the HPA has
raised them to its minimum, which the workload role writes on the Deployment as the
annotation MIN_REPLICAS. Waiting for that too ends deploy in the state a rerun finds.
"""

from __future__ import annotations

MIN_REPLICAS = "invoicing-platform/autoscaler-min-replicas"


def why_not_rolled_out(obj: dict) -> str:
    """Empty when the Deployment or StatefulSet is rolled out, else what it still waits for."""
    spec, status = obj["spec"], obj.get("status") or {}
    wanted = int(spec.get("replicas", 1))
    minimum = int((obj["metadata"].get("annotations") or {}).get(MIN_REPLICAS, 0))
    if int(status.get("observedGeneration", 0)) < int(obj["metadata"].get("generation", 1)):
        return "the controller has not seen the latest spec yet"
    if wanted < minimum:
        return f"{wanted} replicas, below its autoscaler's minimum of {minimum}"
    updated = int(status.get("updatedReplicas", 0))
    ready = int(
        status.get("availableReplicas" if obj["kind"] == "Deployment" else "readyReplicas", 0)
    )
    if updated < wanted:
        return f"{updated} of {wanted} replicas updated"
    if ready < wanted:
        return f"{ready} of {wanted} replicas ready"
    if obj["kind"] == "Deployment" and int(status.get("replicas", 0)) > wanted:
        return f"{int(status['replicas']) - wanted} old replicas still terminating"
    if obj["kind"] == "StatefulSet" and status.get("currentRevision") != status.get(
        "updateRevision"
    ):
        return "the update has not finished"
    return ""


def unready_workloads(workloads: list[dict]) -> list[str]:
    """One line per workload that is not rolled out yet: "Kind namespace/name: why"."""
    lines = []
    for obj in workloads:
        why = why_not_rolled_out(obj)
        if why:
            where = f"{obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"
            lines.append(f"{obj['kind']} {where}: {why}")
    return lines


class FilterModule:
    def filters(self) -> dict:
        return {"unready_workloads": unready_workloads}
