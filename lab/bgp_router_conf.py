"""Print the BGP lab router's frr.conf (lab/playbooks/router.yml reads it on the controller).

It is lib/lflab/bgplab.py's router_conf(), the "router side" that the host-kernel tests run against (listen range
for the replicators' subnet, maximum-paths, as-path multipath-relax, a BFD profile, ttl-security), so the UML lab's
router and the tested one cannot drift apart.  GTSM (--ttl-security) only when the replicators have
logfwdr_bgp_ttl_security on: FRR 8.4 then asks bfdd for a multihop BFD session, which never meets the router's
single-hop one for a listen-range peer (BFD stays down; lib/lflab/bgplab.py says the same).  The inventory's addresses and AS numbers must be bgplab's; a
difference is an error naming both.

    python3 lab/bgp_router_conf.py --interval 100 --multiplier 3 \\
        --router-address 10.50.0.254 --router-asn 65000 --replicator-asn 65010 --replicator-network 10.50.0.0/24
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from lflab import bgplab  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("--interval", type=int, default=100, help="BFD transmit and receive interval, ms")
    ap.add_argument("--multiplier", type=int, default=3, help="BFD detect multiplier")
    ap.add_argument("--no-bfd", action="store_true")
    ap.add_argument("--ttl-security", action="store_true",
                    help="GTSM on the sessions (the replicators' logfwdr_bgp_ttl_security must match)")
    ap.add_argument("--router-address", default=bgplab.ROUTER_IP)
    ap.add_argument("--router-asn", type=int, default=bgplab.ROUTER_ASN)
    ap.add_argument("--replicator-asn", type=int, default=bgplab.REPLICATOR_ASN)
    ap.add_argument("--replicator-network", default=bgplab.REPLICATOR_NET)
    args = ap.parse_args()
    wanted = {"router address": (args.router_address, bgplab.ROUTER_IP),
              "router AS": (args.router_asn, bgplab.ROUTER_ASN),
              "replicator AS": (args.replicator_asn, bgplab.REPLICATOR_ASN),
              "replicator network": (args.replicator_network, bgplab.REPLICATOR_NET)}
    wrong = ["%s %s (lib/lflab/bgplab.py has %s)" % (what, mine, theirs)
             for what, (mine, theirs) in wanted.items() if str(mine) != str(theirs)]
    if wrong:
        print("bgp_router_conf.py: the inventory differs from the tested router side: " + "; ".join(wrong),
              file=sys.stderr)
        return 2
    sys.stdout.write(bgplab.router_conf(bfd=not args.no_bfd, interval=args.interval, multiplier=args.multiplier,
                                        ttl_security=args.ttl_security))
    return 0


if __name__ == "__main__":
    sys.exit(main())
