"""The BGP lab's exporter traffic (lab/playbooks/bgp-verify.yml): COUNT datagrams from each source address to
DESTINATION:PORT, paced over all addresses at RATE datagrams/s, each one "lab-bgp RUN_ID SOURCE SEQ".

    lab_bgp_send.py RUN_ID DESTINATION PORT COUNT RATE SOURCE [SOURCE ...]

Each address sends from a port of its own (40000 + its index), so the router's layer-4 hash sees one flow per
address. Prints JSON: {"sent": {source: count}, "seconds": elapsed}. Stdlib only.
"""

import json
import socket
import sys
import time


def main(argv):
    if len(argv) < 7:
        sys.exit(__doc__)
    run_id, dst, port, count, rate = argv[1], argv[2], int(argv[3]), int(argv[4]), float(argv[5])
    sources = argv[6:]
    socks = []
    for i, src in enumerate(sources):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((src, 40000 + i))
        socks.append(sock)
    sent = {src: 0 for src in sources}
    start = time.monotonic()
    n = 0
    for seq in range(count):
        for src, sock in zip(sources, socks):
            due = start + n / rate
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            sock.sendto(b"lab-bgp %s %s %d\n" % (run_id.encode(), src.encode(), seq), (dst, port))
            sent[src] += 1
            n += 1
    print(json.dumps({"sent": sent, "seconds": round(time.monotonic() - start, 3)}, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv)
