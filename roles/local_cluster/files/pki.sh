#!/bin/sh
# Generate the cluster's PKI with openssl. Idempotent: a key or certificate that exists is
# kept, so a rerun changes nothing; every file it creates is printed as "created FILE".
#
# Usage: pki.sh DIR NODE_NAME NODE_IP SERVICE_IP DAYS
set -eu
dir=$1 node=$2 node_ip=$3 service_ip=$4 days=$5
umask 077
mkdir -p "$dir"
cd "$dir"

key() { # key NAME: an ECDSA P-256 private key
  [ -s "$1.key" ] && return 0
  openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl pkcs8 -topk8 -nocrypt -out "$1.key"
  echo "created $dir/$1.key"
}

cert() { # cert NAME SUBJECT EXTENSIONS: a certificate signed by ca
  name=$1 subj=$2 ext=$3
  key "$name"
  [ -s "$name.crt" ] && return 0
  printf '%s\n' "$ext" > "$name.ext"
  openssl req -new -key "$name.key" -subj "$subj" -out "$name.csr"
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial \
    -days "$days" -sha256 -extfile "$name.ext" -out "$name.crt" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
  echo "created $dir/$name.crt"
}

client='basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth'
server_ext() { # server_ext SANS
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=%s\n' "$1"
}

key ca
if [ ! -s ca.crt ]; then
  openssl req -x509 -new -key ca.key -subj "/CN=invoicing-platform-local-ca" -days "$days" -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out ca.crt
  echo "created $dir/ca.crt"
fi

cert apiserver "/CN=kube-apiserver" "$(server_ext "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,DNS:$node,IP:127.0.0.1,IP:$node_ip,IP:$service_ip")"
cert etcd-server "/CN=etcd-server" "$(server_ext "DNS:localhost,IP:127.0.0.1")"
cert kubelet-server "/CN=$node" "$(server_ext "DNS:$node,DNS:localhost,IP:127.0.0.1,IP:$node_ip")"
cert apiserver-etcd-client "/CN=kube-apiserver-etcd-client" "$client"
cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "$client"
cert admin "/O=system:masters/CN=invoicing-platform-admin" "$client"
cert controller-manager "/CN=system:kube-controller-manager" "$client"
cert scheduler "/CN=system:kube-scheduler" "$client"
cert kubelet "/O=system:nodes/CN=system:node:$node" "$client"
cert kube-proxy "/CN=system:kube-proxy" "$client"
cert coredns "/CN=invoicing-platform:coredns" "$client"
cert cluster-agent "/CN=invoicing-platform:cluster-agent" "$client"

# Service-account token signing pair.
if [ ! -s sa.key ]; then
  openssl genrsa -out sa.key 2048 2>/dev/null
  echo "created $dir/sa.key"
fi
if [ ! -s sa.pub ]; then
  openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  echo "created $dir/sa.pub"
fi
rm -f ca.srl
