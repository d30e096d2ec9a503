"""The lab library: what lab/, tests/ and bench/ use to build throwaway networks (never a copy of it).

- netlab     network namespaces on the host kernel (create, run in, delete with what lives there), the
             exporter/replicator/receiver topology of the integration tests, the collection's import path
- harness    User-Mode Linux guests (a stock Debian kernel with the tc rewrite actions) and their wires
- agentlab   a replicator guest with the agent, for the agent's UML tests and bench/neighbour_change
- lab        the built-in lab of lab/labctl, reached from benchmarks (ssh, the numbered-syslog probe)
- bridgeconf the syslog bridge's files rendered as the role renders them

lab/labctl, bench/*.py and the tests' conftest.py files put this directory (lib/) on sys.path; only public
functions are used from outside each module.
"""
