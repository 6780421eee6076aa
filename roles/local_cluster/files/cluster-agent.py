#!/usr/bin/env python3
"""Two small controllers of the local cluster, run as host processes (standard library only).

  cluster-agent.py netpol       enforce NetworkPolicy with iptables (filter table, LCNP-* chains)
  cluster-agent.py provisioner  provision hostPath PersistentVolumes for the default StorageClass

Both poll the API server every --interval seconds with list calls and act only when what they
would write changes. They talk to the API server with the client certificate given on the
command line (the role issues one and binds it to a ClusterRole).

Why our own NetworkPolicy enforcer: kube-router (the intended enforcer) is not served by the
Go module proxy that this machine reaches. This one covers the NetworkPolicy v1 API: pod,
namespace and ipBlock peers (with except), ports with protocol, named ports and endPort,
Ingress and Egress policy types. Traffic between a pod and the node itself (kubelet probes,
the host-side ingress controller, CoreDNS, the API server) is not filtered, as with most CNIs.
"""

import argparse
import hashlib
import http.client
import ipaddress
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

MARK = "0x100000"
CHAIN_PREFIX = "LCNP-"
TOP_CHAIN = "LCNP-FORWARD"
PROVISIONER = "invoicing-platform.local/hostpath"


def log(msg: str) -> None:
    print(time.strftime("%Y-%m-%dT%H:%M:%S"), msg, flush=True)


class Api:
    def __init__(self, server: str, ca: str, cert: str, key: str) -> None:
        self.host, _, port = server.removeprefix("https://").partition(":")
        self.port = int(port or 443)
        self.ctx = ssl.create_default_context(cafile=ca)
        self.ctx.load_cert_chain(cert, key)

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=20)
        try:
            data = json.dumps(body).encode() if body is not None else None
            headers = {"Content-Type": "application/json", "Accept": "application/json"}
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
            return resp.status, (json.loads(raw) if raw else {})
        finally:
            conn.close()

    def items(self, path: str) -> list[dict]:
        status, body = self.call("GET", path)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {body.get('message', '')}")
        return body.get("items", [])


# ---------------------------------------------------------------- label selectors


def matches(selector: dict | None, labels: dict) -> bool:
    """LabelSelector semantics; an empty selector matches everything."""
    if selector is None:
        return True
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


# ---------------------------------------------------------------- NetworkPolicy


def chain_name(kind: str, pod: dict) -> str:
    uid = pod["metadata"]["uid"]
    return f"{CHAIN_PREFIX}{kind}-{hashlib.sha256(uid.encode()).hexdigest()[:16]}"


def port_matches(ports: list[dict] | None, pod_for_names: dict | None) -> list[str] | None:
    """iptables match fragments for a rule's ports; None means the rule can never match."""
    if not ports:
        return [""]
    out = []
    for p in ports:
        proto = (p.get("protocol") or "TCP").lower()
        port = p.get("port")
        if port is None:
            out.append(f"-p {proto}")
            continue
        if isinstance(port, str) and not port.isdigit():
            if pod_for_names is None:
                continue
            numbers = [
                cp["containerPort"]
                for c in pod_for_names["spec"].get("containers", [])
                for cp in c.get("ports") or []
                if cp.get("name") == port and (cp.get("protocol") or "TCP").lower() == proto
            ]
            out.extend(f"-p {proto} -m {proto} --dport {n}" for n in numbers)
            continue
        end = p.get("endPort")
        dport = f"{port}:{end}" if end else f"{port}"
        out.append(f"-p {proto} -m {proto} --dport {dport}")
    return out or None


def peer_targets(peer: dict, policy_ns: str, pods: list[dict], namespaces: dict) -> list:
    """Either pods (dicts) or ("cidr", cidr, [excepts]) tuples that a peer selects."""
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        if ipaddress.ip_network(block["cidr"], strict=False).version != 4:
            return []  # the cluster is IPv4-only; an IPv6 block selects nothing here
        return [("cidr", block["cidr"], block.get("except") or [])]
    pod_sel = peer.get("podSelector")
    ns_sel = peer.get("namespaceSelector")
    selected = []
    for pod in pods:
        ns = pod["metadata"]["namespace"]
        if ns_sel is None:
            if ns != policy_ns:
                continue
        elif not matches(ns_sel, namespaces.get(ns, {})):
            continue
        if pod_sel is not None and not matches(pod_sel, pod["metadata"].get("labels") or {}):
            continue
        selected.append(pod)
    return selected


def render_rules(pods: list[dict], namespaces: dict, policies: list[dict], pod_cidr: str) -> str:
    """The whole LCNP-* ruleset as iptables-restore lines (without the table header)."""
    chains: dict[str, list[str]] = {TOP_CHAIN: ["-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"]}
    top_isolation: list[str] = []
    for direction, kind in (("Egress", "E"), ("Ingress", "I")):
        for pod in pods:
            ns = pod["metadata"]["namespace"]
            labels = pod["metadata"].get("labels") or {}
            applying = []
            for pol in policies:
                spec = pol["spec"]
                if pol["metadata"]["namespace"] != ns or not matches(spec.get("podSelector", {}), labels):
                    continue
                types = spec.get("policyTypes") or (["Ingress"] + (["Egress"] if "egress" in spec else []))
                if direction in types:
                    applying.append(pol)
            if not applying:
                continue
            chain = chain_name(kind, pod)
            ip = pod["status"]["podIP"]
            rules = [f"-j MARK --set-xmark 0x0/{MARK}"]
            addr_flag = "-d" if kind == "E" else "-s"
            for pol in applying:
                key = "egress" if kind == "E" else "ingress"
                peers_key = "to" if kind == "E" else "from"
                for rule in pol["spec"].get(key) or []:
                    peers = rule.get(peers_key)
                    targets = [("cidr", "0.0.0.0/0", [])] if not peers else [
                        t for peer in peers for t in peer_targets(peer, ns, pods, namespaces)
                    ]
                    for target in targets:
                        # Named ports resolve on the pod that receives the traffic.
                        named_on = pod if kind == "I" else (target if isinstance(target, dict) else None)
                        ports = port_matches(rule.get("ports"), named_on)
                        if ports is None:
                            continue
                        if isinstance(target, dict):
                            addr, excepts = target["status"]["podIP"] + "/32", []
                        else:
                            _, addr, excepts = target
                        if excepts:
                            sub = f"{CHAIN_PREFIX}X-" + hashlib.sha256(
                                f"{chain}{addr}{excepts}{ports}".encode()).hexdigest()[:16]
                            chains[sub] = [f"{addr_flag} {e} -j RETURN" for e in excepts] + [
                                f"{p} -j MARK --set-xmark {MARK}/{MARK}".strip() for p in ports
                            ]
                            rules.append(f"{addr_flag} {addr} -j {sub}")
                        else:
                            rules.extend(
                                f"{addr_flag} {addr} {p} -j MARK --set-xmark {MARK}/{MARK}".replace("  ", " ")
                                for p in ports
                            )
            rules += [
                f"-m mark --mark {MARK}/{MARK} -j RETURN",
                "-p tcp -j REJECT --reject-with tcp-reset",
                "-j REJECT --reject-with icmp-port-unreachable",
            ]
            chains[chain] = rules
            match = "-s" if kind == "E" else "-d"
            top_isolation.append(f"{match} {ip}/32 -j {chain}")
    chains[TOP_CHAIN] += top_isolation + [f"-s {pod_cidr} -j ACCEPT", f"-d {pod_cidr} -j ACCEPT"]
    lines = [f":{name} - [0:0]" for name in chains]
    for name, rules in chains.items():
        lines += [f"-A {name} {r}" for r in rules]
    return "\n".join(lines)


def existing_chains() -> set[str]:
    out = subprocess.run(["iptables-save", "-t", "filter"], check=True, capture_output=True, text=True).stdout
    return {line[1:].split()[0] for line in out.splitlines() if line.startswith(f":{CHAIN_PREFIX}")}


def apply_rules(body: str) -> None:
    wanted = {line[1:].split()[0] for line in body.splitlines() if line.startswith(":")}
    stale = sorted(existing_chains() - wanted)
    # Declaring a chain flushes it; stale chains are flushed, then deleted, in one transaction.
    text = "*filter\n" + body + "\n"
    text += "".join(f":{c} - [0:0]\n" for c in stale) + "".join(f"-X {c}\n" for c in stale)
    text += "COMMIT\n"
    subprocess.run(["iptables-restore", "--noflush", "-w", "5"], input=text, text=True, check=True)
    if subprocess.run(["iptables", "-w", "5", "-C", "FORWARD", "-j", TOP_CHAIN], capture_output=True).returncode:
        subprocess.run(["iptables", "-w", "5", "-I", "FORWARD", "1", "-j", TOP_CHAIN], check=True)


def run_netpol(api: Api, args: argparse.Namespace) -> None:
    last = None
    while True:
        try:
            pods = [
                p for p in api.items("/api/v1/pods")
                if p.get("status", {}).get("podIP")
                and not p["spec"].get("hostNetwork")
                and p["status"].get("phase") not in ("Succeeded", "Failed")
            ]
            namespaces = {
                n["metadata"]["name"]: n["metadata"].get("labels") or {}
                for n in api.items("/api/v1/namespaces")
            }
            policies = api.items("/apis/networking.k8s.io/v1/networkpolicies")
            body = render_rules(pods, namespaces, policies, args.pod_cidr)
            forward_ok = subprocess.run(
                ["iptables", "-w", "5", "-C", "FORWARD", "-j", TOP_CHAIN], capture_output=True
            ).returncode == 0
            if body != last or not forward_ok:
                apply_rules(body)
                log(f"applied {len(policies)} policies over {len(pods)} pods "
                    f"({body.count(chr(10)) + 1} lines)")
                last = body
            Path(args.ready_file).touch()
        except Exception as exc:  # keep enforcing the last good ruleset; retry next round
            log(f"error: {exc}")
        time.sleep(args.interval)


def cleanup_netpol() -> None:
    while subprocess.run(["iptables", "-w", "5", "-D", "FORWARD", "-j", TOP_CHAIN], capture_output=True).returncode == 0:
        pass
    chains = sorted(existing_chains())
    if chains:
        text = "*filter\n" + "".join(f":{c} - [0:0]\n" for c in chains)
        text += "".join(f"-X {c}\n" for c in chains) + "COMMIT\n"
        subprocess.run(["iptables-restore", "--noflush", "-w", "5"], input=text, text=True, check=True)


# ---------------------------------------------------------------- hostPath provisioner


def run_provisioner(api: Api, args: argparse.Namespace) -> None:
    root = Path(args.volumes_dir)
    root.mkdir(parents=True, exist_ok=True)
    while True:
        try:
            classes = {
                c["metadata"]["name"]: c
                for c in api.items("/apis/storage.k8s.io/v1/storageclasses")
                if c.get("provisioner") == PROVISIONER
            }
            for pvc in api.items("/api/v1/persistentvolumeclaims"):
                provision(api, pvc, classes, root)
            for pv in api.items("/api/v1/persistentvolumes"):
                reclaim(api, pv, root)
            Path(args.ready_file).touch()
        except Exception as exc:
            log(f"error: {exc}")
        time.sleep(args.interval)


def provision(api: Api, pvc: dict, classes: dict, root: Path) -> None:
    meta, spec = pvc["metadata"], pvc["spec"]
    sc = classes.get(spec.get("storageClassName") or "")
    if sc is None or spec.get("volumeName") or pvc.get("status", {}).get("phase") != "Pending":
        return
    annotations = meta.get("annotations") or {}
    if sc.get("volumeBindingMode") == "WaitForFirstConsumer" and "volume.kubernetes.io/selected-node" not in annotations:
        return
    name = f"pvc-{meta['uid']}"
    path = root / f"{meta['namespace']}_{meta['name']}_{meta['uid']}"
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o777)  # pods run as arbitrary non-root UIDs
    pv = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER}},
        "spec": {
            "capacity": {"storage": spec["resources"]["requests"]["storage"]},
            "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy") or "Delete",
            "storageClassName": sc["metadata"]["name"],
            "volumeMode": spec.get("volumeMode") or "Filesystem",
            "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": meta["namespace"],
                         "name": meta["name"], "uid": meta["uid"]},
            "hostPath": {"path": str(path), "type": "DirectoryOrCreate"},
        },
    }
    status, body = api.call("POST", "/api/v1/persistentvolumes", pv)
    if status in (200, 201):
        log(f"provisioned {name} for {meta['namespace']}/{meta['name']} at {path}")
    elif status != 409:
        log(f"could not create {name}: {status} {body.get('message', '')}")


def reclaim(api: Api, pv: dict, root: Path) -> None:
    meta = pv["metadata"]
    if (meta.get("annotations") or {}).get("pv.kubernetes.io/provisioned-by") != PROVISIONER:
        return
    if pv.get("status", {}).get("phase") != "Released" or pv["spec"].get("persistentVolumeReclaimPolicy") != "Delete":
        return
    path = Path(pv["spec"]["hostPath"]["path"])
    if path.parent == root:
        shutil.rmtree(path, ignore_errors=True)
    status, _ = api.call("DELETE", f"/api/v1/persistentvolumes/{meta['name']}")
    log(f"deleted {meta['name']} and {path} ({status})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["netpol", "provisioner", "netpol-cleanup"])
    parser.add_argument("--server", default="https://127.0.0.1:6443")
    parser.add_argument("--ca", default="")
    parser.add_argument("--cert", default="")
    parser.add_argument("--key", default="")
    parser.add_argument("--pod-cidr", default="10.244.0.0/24")
    parser.add_argument("--volumes-dir", default="/var/lib/invoicing-platform/cluster/volumes")
    parser.add_argument("--ready-file", default=os.devnull)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args()
    ipaddress.ip_network(args.pod_cidr)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if args.mode == "netpol-cleanup":
        cleanup_netpol()
        return
    api = Api(args.server, args.ca, args.cert, args.key)
    log(f"{args.mode} started against {args.server}")
    if args.mode == "netpol":
        run_netpol(api, args)
    else:
        run_provisioner(api, args)


if __name__ == "__main__":
    main()
