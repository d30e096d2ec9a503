#!/usr/bin/env bash
# Converge time of inventories/example (the paper's shape: 4 ingress segments, 2 egress subnets,
# 13 collectors) on two lab replicators built in that shape (lab/topology-example.json), then a
# second, no-change converge. Prints both times and the replication state the kernel holds.
#
#   bash bench/example_converge.sh        # as root; needs the lab to be down (it uses the namespace)
#
# The inventory is used unchanged; lab/inventories/example-connection.yml only adds how to log in.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH" ANSIBLE_CONFIG="$PWD/ansible.cfg"
export LOGFWDR_LAB_TOPOLOGY="$PWD/lab/topology-example.json" LOGFWDR_LAB_KEY="$PWD/.build/lab/id_ed25519"
inv=(-i inventories/example -i lab/inventories/example-connection.yml)
log=.build/bench-example-converge
mkdir -p "$log"

if lab/labctl status >/dev/null 2>&1; then
  echo "a lab is up; run lab/labctl down first (this benchmark starts its own)" >&2
  exit 2
fi
trap 'lab/labctl down --force >/dev/null 2>&1 || true' EXIT
lab/labctl up

run() {  # run NAME: one site.yml run, timed into $log/NAME.time; its log in $log/NAME.log
  local t0 t1
  t0=$(date +%s.%N)
  # not inside $(...): a failure's tail must reach the terminal, not a variable that set -e then discards
  if ! ansible-playbook "${inv[@]}" site.yml >"$log/$1.log" 2>&1; then
    echo "site.yml ($1 converge) failed; the last lines of $log/$1.log:" >&2
    tail -40 "$log/$1.log" >&2
    exit 1
  fi
  t1=$(date +%s.%N)
  python3 -c "import sys; print('%.1f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$t0" "$t1" >"$log/$1.time"
}
run first
run second
first=$(cat "$log/first.time")
second=$(cat "$log/second.time")
recap=$(grep -E '^logfwdr-[ab] ' "$log/second.log")
echo "$recap"
changed=$(echo "$recap" | grep -o 'changed=[0-9]*' | cut -d= -f2 | awk '{s+=$1} END {print s+0}')

ansible "${inv[@]}" replicators -m netops.logfwdr.tc_mirror_info -o >"$log/info.log" 2>&1 || true
python3 - "$log/info.log" <<'PY'
import json, re, sys
for line in open(sys.argv[1]):
    m = re.match(r"^(\S+) \| SUCCESS => (.*)$", line)
    if not m:
        continue
    res = json.loads(m.group(2))
    for dev in res["devices"]:
        ports = {p["port"]: len(p["destinations"]) for p in dev["ports"]}
        print("%-10s %-5s destinations per port: %s" % (m.group(1), dev["name"], ports))
PY
printf '\nexample inventory (2 hosts, 4 ingress x 5 protocols, 13 collectors):\n'
printf '  first converge     %6s s\n' "$first"
printf '  no-change converge %6s s  (changed=%s)\n' "$second" "$changed"
[ "$changed" = 0 ] || { echo "second converge changed something" >&2; exit 1; }
