"""The minikube role's start guard, as a filter so it is unit-testable."""

from __future__ import annotations

import json

RUNNING = {"Host": "Running", "Kubelet": "Running", "APIServer": "Running"}


def minikube_needs_start(status_output: str) -> bool:
    """True unless `minikube status -o json` shows host, kubelet and API server running.
    A missing profile prints no JSON (or an error object), which also means: start it."""
    try:
        status = json.loads(status_output or "null")
    except ValueError:
        return True
    # Multi-node profiles print a list, one object per node; the first is the control plane.
    if isinstance(status, list):
        status = status[0] if status else None
    if not isinstance(status, dict):
        return True
    return any(status.get(key) != value for key, value in RUNNING.items())


class FilterModule:
    def filters(self) -> dict:
        return {"minikube_needs_start": minikube_needs_start}
