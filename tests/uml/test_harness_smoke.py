"""Smoke test for the UML harness: one guest, two NICs on two bridges, one plain
namespace on each bridge; tc action modules load in the guest; a UDP datagram from a
namespace reaches the guest; the guest pings the other namespace."""
import pytest

pytestmark = pytest.mark.uml

GUEST_SCRIPT = r"""
set -e
ip link set vec0 up
ip link set vec1 up
ip addr add 192.0.2.10/24 dev vec0
ip addr add 198.51.100.10/24 dev vec1
modprobe -a act_skbmod act_nat sch_ingress cls_u32 act_mirred
lsmod
ip -br link
ip -br addr
ping -c 2 -W 5 198.51.100.20
# receive one datagram from the exporter namespace on bridge a
python3 - <<'PY' &
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("192.0.2.10", 5514))
open("/tmp/bound", "w").close()
s.settimeout(60)
data, peer = s.recvfrom(2048)
print("RECEIVED %r from %s:%d" % (data.decode(), peer[0], peer[1]), flush=True)
PY
while [ ! -e /tmp/bound ]; do sleep 0.05; done
lf_ready
wait
"""


def test_guest_two_nics(wire):
    wire.bridge("bra")
    wire.bridge("brb")
    exp = wire.name + "-exp"
    col = wire.name + "-col"
    wire.attach_netns("bra", exp, "eth0", cidr="192.0.2.20/24")
    wire.attach_netns("brb", col, "eth0", cidr="198.51.100.20/24")

    g = wire.start_guest("smoke", bridges=["bra", "brb"], script=GUEST_SCRIPT, timeout=120)
    g.wait_ready(timeout=90)
    send = ("import socket,time\n"
            "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
            "s.bind(('192.0.2.20',40000))\n"
            "for _ in range(20):\n"
            "    s.sendto(b'hello-from-exporter',('192.0.2.10',5514)); time.sleep(0.25)\n")
    sender = wire.popen(exp, ["python3", "-c", send])
    res = g.wait()
    sender.kill()
    out = res.output
    assert res.rc == 0, out + "\n" + res.console[-2000:]
    lsmod = {line.split()[0] for line in out.splitlines() if line and not line.startswith(" ")}
    for mod in ("act_skbmod", "act_nat", "sch_ingress", "cls_u32", "act_mirred"):
        assert mod in lsmod, out
    assert "vec0" in out and "vec1" in out
    assert "2 packets transmitted, 2 received" in out, out
    assert "RECEIVED 'hello-from-exporter' from 192.0.2.20:40000" in out, out
    print(f"guest run: boot-to-script {res.boot_seconds}s, total {res.duration:.1f}s")
