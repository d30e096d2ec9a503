"""What the lab benchmarks (failover.py, bridge_rate.py) share: reaching the UML lab's hosts through
lab/labctl, the numbered-syslog probe they run on the exporters, and how its messages read at a collector."""

import os
import re
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LABCTL = os.path.join(REPO, "lab", "labctl")
PROBE = os.path.join(REPO, "lab", "endpoints", "lab_probe.py")
COLLECTORS = ["collector1", "collector2", "collector3", "collector4"]
COLLECTOR_LOG = "/var/log/lab/syslog.log"   # lab/endpoints/rsyslog-lab.conf.j2: one JSON line per message
# lab_probe.py's message body: run id, exporter, udp|tcp, sequence number
LFP = re.compile(r"LFP run=(\S+) exp=(\S+) p=(udp|tcp) seq=(\d+)")


def ssh(host, cmd, check=True, timeout=120):
    """stdout of CMD on a lab host; with check, a non-zero exit raises with its stderr."""
    p = subprocess.run([LABCTL, "ssh", host, cmd], capture_output=True, text=True, timeout=timeout, check=False)
    if check and p.returncode != 0:
        raise RuntimeError("%s: %s: rc=%d %s" % (host, cmd, p.returncode, p.stderr.strip()))
    return p.stdout


def require_lab():
    """Exit with a hint unless this is root and the lab is up."""
    if os.geteuid() != 0:
        sys.exit("run as root (the lab needs it)")
    # `labctl wait` retries each host's SSH for up to a minute: one 3-second probe of `labctl status`
    # failed on a loaded 2-core CI machine right after molecule's idempotence run, with every host up.
    p = subprocess.run([LABCTL, "wait", "--timeout", "60"], capture_output=True, text=True, check=False)
    if p.returncode != 0:
        st = subprocess.run([LABCTL, "status"], capture_output=True, text=True, check=False)
        sys.exit("the lab is not up: run `make demo` first\n%s%s%s" % (p.stdout, p.stderr, st.stdout))


def copy_probe(host):
    """Put lab_probe.py on HOST as /root/lab_probe.py."""
    with open(PROBE, "rb") as f:
        subprocess.run([LABCTL, "ssh", host, "cat > /root/lab_probe.py"], stdin=f, check=True, capture_output=True)
