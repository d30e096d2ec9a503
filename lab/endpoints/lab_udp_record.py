"""The BGP lab's collector receiver and its summary (lab/playbooks/bgp-endpoints.yml, bgp-verify.yml).

    lab_udp_record.py record PORT FILE        receive UDP on PORT, one line per datagram in FILE:
                                              "<source address> <source port> <payload head>"
    lab_udp_record.py summary FILE RUN_ID     JSON: per exporter address named in the payloads of run RUN_ID
                                              (lab_bgp_send.py writes "lab-bgp RUN_ID EXPORTER SEQ"), the
                                              datagrams, the distinct sequence numbers, and those whose source
                                              address was not the exporter's

Stdlib only: the guest image's python3.
"""

import json
import socket
import sys


def record(port, path):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(("0.0.0.0", port))
    with open(path, "a", buffering=1, encoding="ascii", errors="replace") as out:
        while True:
            data, (addr, sport) = sock.recvfrom(65535)
            head = data[:160].decode("ascii", "replace").replace("\n", " ").replace("\r", " ")
            out.write("%s %d %s\n" % (addr, sport, head))


def summary(path, run_id):
    exporters = {}
    other = 0
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        lines = []
    for line in lines:
        fields = line.split()
        if len(fields) < 6 or fields[2] != "lab-bgp" or fields[3] != run_id:
            other += 1
            continue
        source, exporter, seq = fields[0], fields[4], fields[5]
        entry = exporters.setdefault(exporter, {"datagrams": 0, "seqs": set(), "wrong_source": 0})
        entry["datagrams"] += 1
        entry["seqs"].add(seq)
        if source != exporter:
            entry["wrong_source"] += 1
    result = {"exporters": {addr: {"datagrams": e["datagrams"], "distinct": len(e["seqs"]),
                                   "wrong_source": e["wrong_source"]}
                            for addr, e in sorted(exporters.items())},
              "other_lines": other}
    print(json.dumps(result, sort_keys=True))


def main(argv):
    if len(argv) == 4 and argv[1] == "record":
        record(int(argv[2]), argv[3])
    elif len(argv) == 4 and argv[1] == "summary":
        summary(argv[2], argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
