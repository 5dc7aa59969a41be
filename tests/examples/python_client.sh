#!/usr/bin/env bash
# Runs examples/python_client.py against a live one-node cluster (ctest
# Examples.PythonClientWritesAndReads): a client written from docs/protocol.md alone, in
# plaintext and with mutual TLS.
#   python_client.sh BIN_DIR SOURCE_DIR
set -euo pipefail
bin=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
work=$(mktemp -d /tmp/cafraft-python-XXXXXX)
node=0
cleanup() {
  if ((node)); then kill "$node" 2>/dev/null || true; wait "$node" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

run() { # run NAME [node flags...] -- [client flags...]
  local name=$1
  shift
  local p
  p=$(port)
  local flags=()
  while [[ $1 != -- ]]; do flags+=("$1"); shift; done
  shift
  "$bin/cafraft-node" --id n1 --data-dir "$work/$name" --listen "127.0.0.1:$p" \
    --initial-cluster "n1=127.0.0.1:$p" "${flags[@]}" >"$work/$name.log" 2>&1 &
  node=$!
  local out=""
  for _ in $(seq 50); do
    if out=$(/usr/bin/python3 "$src/examples/python_client.py" --protos "$src/messages" "$@" \
      "127.0.0.1:$p" "key-$name" "value-$name" 2>&1); then
      echo "$name: $out"
      kill "$node"; wait "$node" || true; node=0
      return 0
    fi
    sleep 0.2
  done
  echo "$name: the Python client failed: $out" >&2
  cat "$work/$name.log" >&2
  exit 1
}

run plaintext --insecure --
cd "$work"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=ca -keyout ca.key -out ca.pem \
  >/dev/null 2>&1
for n in n1 client; do
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$n" -keyout $n.key -out $n.csr >/dev/null 2>&1
  openssl x509 -req -in $n.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out $n.pem \
    >/dev/null 2>&1
done
run tls --tls-cert n1.pem --tls-key n1.key --tls-ca ca.pem -- \
  --cert client.pem --key client.key --ca ca.pem
