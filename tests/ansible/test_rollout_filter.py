"""The rule the deploy playbook's one wait ends on (plugins/filter/rollouts.py)."""

import importlib.util

import pytest

from tests.support import REPO

_spec = importlib.util.spec_from_file_location(
    "rollouts", REPO / "plugins" / "filter" / "rollouts.py"
)
rollouts = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rollouts)


def deployment(wanted: int = 3, generation: int = 2, **status: object) -> dict:
    spec = {"replicas": wanted}
    done = {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}
    return {
        "kind": "Deployment",
        "metadata": {"name": "invoice-app", "namespace": "invoices", "generation": generation},
        "spec": spec,
        "status": {**done, **status},
    }


def statefulset(**status: object) -> dict:
    done = {"observedGeneration": 1, "readyReplicas": 1, "updatedReplicas": 1}
    return {
        "kind": "StatefulSet",
        "metadata": {"name": "invoices-db", "namespace": "invoices", "generation": 1},
        "spec": {"replicas": 1},
        "status": {"currentRevision": "a", "updateRevision": "a", **done, **status},
    }


def test_rolled_out_workloads_are_not_listed() -> None:
    assert rollouts.unready_workloads([deployment(), statefulset()]) == []


@pytest.mark.parametrize(
    ("workload", "why"),
    [
        (deployment(observedGeneration=1), "has not seen the latest spec"),
        (deployment(updatedReplicas=2), "2 of 3 replicas updated"),
        (deployment(availableReplicas=1), "1 of 3 replicas ready"),
        (deployment(replicas=4), "1 old replicas still terminating"),
        (statefulset(readyReplicas=0), "0 of 1 replicas ready"),
        (statefulset(updateRevision="b"), "the update has not finished"),
    ],
)
def test_each_unfinished_rollout_is_listed_with_why(workload: dict, why: str) -> None:
    [line] = rollouts.unready_workloads([workload])
    assert line.startswith(f"{workload['kind']} invoices/")
    assert why in line


def test_an_autoscaled_deployment_waits_for_its_minimum() -> None:
    started_at_one = deployment(wanted=1, replicas=1, updatedReplicas=1, availableReplicas=1)
    assert rollouts.unready_workloads([started_at_one]) == []
    started_at_one["metadata"]["annotations"] = {rollouts.MIN_REPLICAS: "3"}
    [line] = rollouts.unready_workloads([started_at_one])
    assert "below its autoscaler's minimum of 3" in line
