"""Upstream's e2e suites against the local cluster: what runs, how, and what the JUnit says.

Every count and every skip reason printed here is read from the JUnit file the run itself wrote
(ginkgo's --junit-report, or go test's events through test2json for the Pod Security suite).
"""

import json
import os
import re
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import REPO

VERSION = "v1.32.5"
HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("CONFORMANCE_CACHE", Path.home() / ".cache/invoicing-platform"))
BIN = CACHE / f"e2e-{VERSION}" / "bin"
REGISTRY = "127.0.0.1:5000"
KUBECONFIG = os.environ.get("LOCAL_CLUSTER_KUBECONFIG", "/etc/invoicing-platform/admin.kubeconfig")
HEALTH = "/usr/local/bin/invoicing-cluster-health"
KUBECTL = os.environ.get("LOCAL_CLUSTER_KUBECTL", "/usr/local/bin/kubectl")
REPO_LIST = HERE / "repo-list.yaml"
OUT = Path(os.environ.get("CONFORMANCE_OUT", REPO / "out" / "conformance"))
# `ci`: the representative subset (under 10 minutes); `full`: the whole selection.
SCOPE = os.environ.get("CONFORMANCE_SCOPE", "ci")
PROCS = int(os.environ.get("CONFORMANCE_PROCS", "2"))
PROTECTED_NAMESPACES = {"invoices", "payments", "kube-system", "traefik", "local-path-storage"}


def sctp_missing() -> str | None:
    """Why this kernel cannot run SCTP traffic, or None when it can."""
    if Path("/proc/net/sctp").exists():
        return None
    return "kernel feature missing: SCTP (no /proc/net/sctp: the sctp module is not loaded here)"


@dataclass
class Suite:
    name: str
    focus: str
    # (regex on the spec name, reason) pairs left out of the run; a reason names what is missing.
    exclusions: list[tuple[str, str]] = field(default_factory=list)
    # Specs the CI subset runs (a regex alternation); None: the CI runs the whole suite.
    ci_focus: str | None = None


def _alt(names: list[str]) -> str:
    return "(" + "|".join(re.escape(n) for n in names) + ")"


NETPOL_CI = [
    # default-deny
    "should support a 'default-deny-ingress' policy",
    "should support a 'default-deny-all' policy",
    # podSelector
    "should enforce policy to allow traffic from pods within server namespace based on PodSelector",
    # namespaceSelector
    "should enforce policy to allow traffic only from a different namespace, "
    "based on NamespaceSelector",
    # both together
    "should enforce policy based on PodSelector and NamespaceSelector",
    # ipBlock, with except, egress
    "should enforce except clause while egress access to server in CIDR block",
    # named ports, ingress and egress
    "should allow ingress access on one named port",
    "should allow egress access on one named port",
    # egress
    "should deny egress from pods based on PodSelector",
]

# The Pod Security suite's CI subset: both levels at the oldest (v1.0) and the newest (v1.32)
# policy version; the full run checks every version in between.
PODSECURITY_CI = "TestPodSecurity/podsecurity-(baseline|restricted)-1-(0|32)_"

SERVICES_DNS_CI = [
    "should provide DNS for services",
    "should serve a basic endpoint from pods",
]


def suites() -> list[Suite]:
    netpol_exclusions = []
    if reason := sctp_missing():
        netpol_exclusions.append((r"\[Feature:SCTPConnectivity\]", reason))
    return [
        Suite(
            "netpol",
            r"\[sig-network\] Netpol ",
            netpol_exclusions,
            ci_focus=r"\[sig-network\] Netpol NetworkPolicy between server and client "
            + _alt(NETPOL_CI)
            + r" \[Feature:NetworkPolicy\]",
        ),
        Suite(
            "services-dns",
            r"\[sig-network\] (Services|DNS) .*\[Conformance\]",
            SERVICES_DNS_EXCLUSIONS,
            ci_focus=r"\[sig-network\] (Services|DNS) "
            + _alt(SERVICES_DNS_CI)
            + r" \[Conformance\]",
        ),
    ]


# Filled from findings: specs whose image or node count this cluster cannot provide.
SERVICES_DNS_EXCLUSIONS: list[tuple[str, str]] = []


@dataclass
class Result:
    suite: str
    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # spec -> reason
    seconds: float = 0.0
    junit: Path | None = None

    def summary(self) -> str:
        lines = [
            f"conformance {self.suite}: {len(self.passed)} passed, {len(self.failed)} failed, "
            f"{len(self.skipped)} skipped ({self.seconds:.0f} s, {self.junit})"
        ]
        lines += [f"  FAILED {name}" for name in self.failed]
        lines += [f"  skipped {name}: {why}" for name, why in sorted(self.skipped.items())]
        return "\n".join(lines)


def wait_for_cluster(timeout: float = 1200) -> None:
    """The cluster may be torn down and brought up by other tiers: wait until it is healthy."""
    deadline = time.monotonic() + timeout
    while True:
        proc = subprocess.run([HEALTH], capture_output=True, text=True, check=False)
        if proc.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"local cluster not healthy after {timeout} s:\n{proc.stdout}")
        time.sleep(10)


def build() -> None:
    """e2e.test, ginkgo, agnhost, podsecurity.test (cached); the images (skipped when pushed)."""
    subprocess.run(
        [HERE / "build-e2e.sh", VERSION, CACHE, HERE / f"e2e-{VERSION}.go.sum"], check=True
    )
    subprocess.run([HERE / "build-images.sh", BIN, REGISTRY], check=True)


def parse_ginkgo_junit(suite: Suite, path: Path, selected: str) -> Result:
    """Counts of the specs this suite selects. A spec the focus leaves out is not counted; one
    left out by an exclusion is counted as skipped with the exclusion's reason; one that upstream
    skipped at run time carries upstream's own message."""
    result = Result(suite.name, junit=path)
    root = ET.parse(path).getroot()  # noqa: S314 - this run's own report
    for case in root.iter("testcase"):
        name = case.get("name", "")
        if not name.startswith("[It] "):
            continue
        spec = name[len("[It] ") :]
        if not re.search(suite.focus, spec):
            continue
        excluded = next((why for rx, why in suite.exclusions if re.search(rx, spec)), None)
        in_run = re.search(selected, spec) is not None
        status = case.get("status")
        if not in_run and excluded is None:
            continue  # outside the CI subset
        if excluded is not None and status == "skipped":
            result.skipped[spec] = excluded
        elif status == "passed":
            result.passed.append(spec)
        elif status == "skipped":
            node = case.find("skipped")
            message = node.get("message", "") if node is not None else ""
            result.skipped[spec] = "upstream: " + message
        else:
            result.failed.append(spec)
    return result


def run_ginkgo(suite: Suite) -> Result:
    out = OUT / suite.name
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    selected = suite.focus if SCOPE == "full" or suite.ci_focus is None else suite.ci_focus
    cmd = [
        str(BIN / "ginkgo"),
        f"--focus={selected}",
        f"--procs={PROCS}",
        "--no-color",
        "--silence-skips",
        "--timeout=90m",
        "--junit-report=junit.xml",
        f"--output-dir={out}",
    ]
    cmd += [f"--skip={rx}" for rx, _ in suite.exclusions]
    cmd += [
        str(BIN / "e2e.test"),
        "--",
        f"--kubeconfig={KUBECONFIG}",
        "--provider=skeleton",
        f"--kube-test-repo-list={REPO_LIST}",
        "--non-blocking-taints=node-role.kubernetes.io/control-plane",
        f"--report-dir={out}",
    ]
    start = time.monotonic()
    with (out / "ginkgo.log").open("w") as log:
        subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False, cwd=out)
    result = parse_ginkgo_junit(suite, out / "junit.xml", selected)
    result.seconds = time.monotonic() - start
    return result


def go_events_to_junit(events: list[dict], suite: str, path: Path) -> None:
    """go test's own events (test2json) as a JUnit file: one testcase per test and subtest."""
    cases: dict[str, dict] = {}
    for ev in events:
        test = ev.get("Test")
        if not test:
            continue
        case = cases.setdefault(test, {"output": [], "action": None, "elapsed": 0.0})
        if ev["Action"] == "output":
            case["output"].append(ev.get("Output", ""))
        elif ev["Action"] in ("pass", "fail", "skip"):
            case["action"] = ev["Action"]
            case["elapsed"] = ev.get("Elapsed", 0.0)
    root = ET.Element("testsuites")
    ts = ET.SubElement(root, "testsuite", name=suite, tests=str(len(cases)))
    for test, case in cases.items():
        tc = ET.SubElement(
            ts,
            "testcase",
            name=test,
            classname=suite,
            time=str(case["elapsed"]),
            status=str(case["action"]),
        )
        text = "".join(case["output"])
        if case["action"] == "fail":
            ET.SubElement(tc, "failure", message="failed").text = text
        elif case["action"] == "skip":
            reason = next(
                (ln.strip() for ln in case["output"] if "_test.go" in ln or "run.go" in ln),
                text.strip().splitlines()[-1] if text.strip() else "skipped",
            )
            ET.SubElement(tc, "skipped", message=reason)
        elif case["action"] is None:
            ET.SubElement(tc, "error", message="no result").text = text
    ET.ElementTree(root).write(path, encoding="unicode", xml_declaration=True)


def run_podsecurity() -> Result:
    """Upstream's Pod Security admission suite (k8s.io/pod-security-admission/test)."""
    out = OUT / "podsecurity"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    start = time.monotonic()
    proc = subprocess.run(
        [
            "go",
            "tool",
            "test2json",
            "-t",
            str(BIN / "podsecurity.test"),
            "-test.v=test2json",
            "-test.timeout=20m",
            *([] if SCOPE == "full" else [f"-test.run={PODSECURITY_CI}"]),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=out,
        env={**os.environ, "KUBECONFIG": KUBECONFIG},
    )
    (out / "go-test.json").write_text(proc.stdout)
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    junit = out / "junit.xml"
    go_events_to_junit(events, "podsecurity", junit)
    result = Result("podsecurity", junit=junit, seconds=time.monotonic() - start)
    for case in ET.parse(junit).getroot().iter("testcase"):  # noqa: S314 - written above
        name, status = case.get("name", ""), case.get("status")
        if status == "pass":
            result.passed.append(name)
        elif status == "skip":
            node = case.find("skipped")
            result.skipped[name] = "upstream: " + (
                node.get("message", "") if node is not None else ""
            )
        else:
            result.failed.append(name)
    return result


def e2e_namespaces(since: str) -> list[str]:
    """Namespaces the e2e framework (label e2e-run) or the Pod Security suite made since `since`
    (an RFC 3339 UTC time: namespaces of other people's runs before it are not ours)."""
    proc = subprocess.run(
        [KUBECTL, f"--kubeconfig={KUBECONFIG}", "get", "namespaces", "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    return [
        item["metadata"]["name"]
        for item in json.loads(proc.stdout)["items"]
        if item["metadata"]["creationTimestamp"] >= since
        and (
            "e2e-run" in item["metadata"].get("labels", {})
            or item["metadata"]["name"].startswith("podsecurity-")
        )
    ]


def protected_namespace_uids() -> dict[str, str]:
    proc = subprocess.run(
        [KUBECTL, f"--kubeconfig={KUBECONFIG}", "get", "namespaces", "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    return {
        item["metadata"]["name"]: item["metadata"]["uid"]
        for item in json.loads(proc.stdout)["items"]
        if item["metadata"]["name"] in PROTECTED_NAMESPACES
    }
