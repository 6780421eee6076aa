#!/bin/sh
# Tear down the local cluster. Every process is stopped by pid: supervisord stops its
# programs, then supervisord itself goes by its pidfile, then containerd's shims and
# containers go by the pidfiles containerd wrote. Then the chains, mounts, interfaces and
# cgroups that bring-up made are removed. Prints one line per thing it stopped or removed.
#
# Usage: teardown.sh SUPERVISOR_CONF SUPERVISOR_PIDFILE CONTAINERD_SOCKET CONTAINERD_STATE
#                    STATE_DIR RUN_DIR CGROUP_ROOT "INTERFACES" KUBE_PROXY
set -u
conf=$1 pidfile=$2 sock=$3 ctrd_state=$4 state_dir=$5 run_dir=$6 cgroup_root=$7 interfaces=$8 kube_proxy=$9
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }
# stop_all_at_once CONF: supervisor.stopAllProcesses(wait=False) on CONF's server, through
# supervisor's own client library, in the interpreter supervisorctl runs with.
stop_all_at_once() {
  url=$(sed -n 's/^serverurl *= *//p' "$1")
  "$(sed -n '1s/^#! *//p' "$(command -v supervisorctl)")" - "$url" <<'PY' >/dev/null 2>&1
import sys
import xmlrpc.client

from supervisor.xmlrpc import SupervisorTransport

transport = SupervisorTransport(None, None, sys.argv[1])
xmlrpc.client.ServerProxy("http://localhost", transport).supervisor.stopAllProcesses(False)
PY
}
# still_up CONF: the programs that have not stopped yet.
still_up() {
  supervisorctl -c "$1" status 2>/dev/null | awk '$2 ~ /^(RUNNING|STOPPING|STARTING|BACKOFF)$/ {print $1}'
}
wait_stopped() { # wait_stopped CONF SECONDS: until no program of CONF is up, or SECONDS pass
  i=0
  while [ -n "$(still_up "$1")" ] && [ $i -lt $(($2 * 10)) ]; do sleep 0.1; i=$((i + 1)); done
}
wait_gone() { # wait_gone PID SECONDS
  i=0
  while alive "$1" && [ $i -lt $(($2 * 10)) ]; do sleep 0.1; i=$((i + 1)); done
  ! alive "$1"
}

# 1. Pods first, while containerd still runs: stop the kubelet so it recreates nothing,
#    then kill and delete every task and container in the k8s.io namespace.
spid=""
[ -f "$pidfile" ] && spid=$(cat "$pidfile")
if alive "$spid"; then
  supervisorctl -c "$conf" stop kubelet >/dev/null 2>&1 && echo "stopped kubelet"
  if ctr --address "$sock" version >/dev/null 2>&1; then
    for id in $(ctr --address "$sock" -n k8s.io tasks ls -q 2>/dev/null); do
      ctr --address "$sock" -n k8s.io tasks kill -s SIGKILL "$id" >/dev/null 2>&1
    done
    sleep 1
    for id in $(ctr --address "$sock" -n k8s.io tasks ls -q 2>/dev/null); do
      ctr --address "$sock" -n k8s.io tasks delete -f "$id" >/dev/null 2>&1
    done
    for id in $(ctr --address "$sock" -n k8s.io containers ls -q 2>/dev/null); do
      ctr --address "$sock" -n k8s.io containers delete "$id" >/dev/null 2>&1 && echo "removed container $id"
    done
  fi
  # 2. Every program at once, then supervisord itself, by pid. `supervisorctl stop all`
  #    stops one program after another, each waiting for the last (about 20 s in all);
  #    the XML-RPC call it makes can also just signal them all and return, and their state
  #    is removed below, so nothing needs them stopped in order. supervisord stays up
  #    meanwhile, so it restarts none of them and reaps each one.
  #    One that has not exited after 5 s is killed with its process group, by pid (its
  #    state goes next, so it need not flush anything), and named.
  if stop_all_at_once "$conf"; then
    wait_stopped "$conf" 5
    for name in $(still_up "$conf"); do
      pid=$(supervisorctl -c "$conf" pid "$name" 2>/dev/null)
      [ "${pid:-0}" -gt 0 ] 2>/dev/null && kill -KILL -- "-$pid" 2>/dev/null && echo "killed $name ($pid), still up 5 s after SIGTERM"
    done
    wait_stopped "$conf" 5
    echo "stopped all supervised programs"
  else
    supervisorctl -c "$conf" stop all >/dev/null 2>&1 && echo "stopped all supervised programs"
  fi
  kill -TERM "$spid" 2>/dev/null
  if wait_gone "$spid" 30; then echo "stopped supervisord ($spid)"; else kill -KILL "$spid"; echo "stopped supervisord ($spid, killed)"; fi
fi

# 3. Anything containerd started that outlived it: shims and container processes, by the
#    pidfiles in containerd's state directory.
if [ -d "$ctrd_state" ]; then
  for f in $(find "$ctrd_state" -name '*.pid' 2>/dev/null); do
    pid=$(cat "$f" 2>/dev/null)
    if alive "$pid"; then kill -KILL "$pid" && echo "stopped pid $pid ($f)"; fi
  done
fi

# 4. iptables: kube-proxy's own cleanup, then any chain left with our prefixes
#    (KUBE-* from kube-proxy, the kubelet and kube-router's firewall, CNI-* from the CNI
#    plugins), after removing the rules that jump to them.
[ -x "$kube_proxy" ] && "$kube_proxy" --cleanup >/dev/null 2>&1
for table in filter nat mangle raw; do
  chains=$(iptables-save -t "$table" 2>/dev/null | sed -n 's/^:\(\(KUBE\|CNI\|LCNP\)-[^ ]*\) .*/\1/p')
  [ -z "$chains" ] && continue
  iptables-save -t "$table" | grep -E '^-A ' | grep -E -- '-j (KUBE|CNI)-' | grep -vE '^-A (KUBE|CNI)-' |
    while read -r rule; do
      # shellcheck disable=SC2086
      eval "iptables -w 5 -t $table $(echo "$rule" | sed 's/^-A /-D /')"
    done
  for c in $chains; do iptables -w 5 -t "$table" -F "$c" 2>/dev/null; done
  for c in $chains; do iptables -w 5 -t "$table" -X "$c" 2>/dev/null && echo "removed chain $table/$c"; done
done

# 4b. kube-router's router (with more than one node) also writes rules straight into the
#     built-in chains: its pod egress masquerade, which names its ipsets, and the forwarding
#     accepts for its bridge and the node interface. They go too, so its ipsets can go next.
for table in filter nat mangle raw; do
  iptables-save -t "$table" 2>/dev/null | grep -E '^-A ' | grep -vE '^-A (KUBE|CNI)-' |
    grep -E -- '--match-set kube-router-|kube-bridge|allow outbound node port traffic' |
    while read -r rule; do
      # shellcheck disable=SC2086
      eval "iptables -w 5 -t $table $(echo "$rule" | sed 's/^-A /-D /')" && echo "removed rule $table: $rule"
    done
done

# 5. kube-router's ipsets, now that no rule refers to them.
for set in $(ipset list -n 2>/dev/null | grep -E '^(KUBE-|kube-router-|inet6:KUBE-|inet6:kube-router-)'); do
  ipset destroy "$set" 2>/dev/null && echo "removed ipset $set"
done

# 6. Mounts under our directories and the pods' network namespaces, deepest first.
for m in $(awk '{print $5}' /proc/self/mountinfo | grep -E "^($state_dir|$run_dir|/run/netns/cni-|/var/run/netns/cni-)" | sort -r); do
  umount -l "$m" 2>/dev/null && echo "removed mount $m"
done
for ns in /run/netns/cni-*; do
  [ -e "$ns" ] && rm -f "$ns" && echo "removed netns $ns"
done

# 7. Interfaces: the pods' veths still on a bridge, then the CNI bridge and the node one.
#    A veth goes with its pod's namespace only once the kernel frees that namespace, which it
#    does asynchronously after the last unmount: deleting the host end removes the pair now.
for ifc in $interfaces; do
  for port in $(ip -o link show master "$ifc" 2>/dev/null | sed -n 's/^[0-9]*: \([^@:]*\).*/\1/p'); do
    ip link delete "$port" 2>/dev/null && echo "removed interface $port"
  done
  ip link show "$ifc" >/dev/null 2>&1 && ip link delete "$ifc" && echo "removed interface $ifc"
done

# 8. The kubelet's cgroups, deepest first, in every v1 hierarchy.
for h in /sys/fs/cgroup/*/; do
  [ -d "$h${cgroup_root#/}" ] || continue
  find "$h${cgroup_root#/}" -depth -type d -exec rmdir {} \; 2>/dev/null
  [ -d "$h${cgroup_root#/}" ] && echo "could not remove cgroup $h${cgroup_root#/}" >&2 || echo "removed cgroup $h${cgroup_root#/}"
done
exit 0
