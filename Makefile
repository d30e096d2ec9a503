# logfwdr: the two commands that matter are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(CURDIR)/$(VENV)/bin/python
# pyroute2 as Debian 12 ships it, to run the module against the oldest supported release
VENV_OLD := .venv-pyroute2-0.7.2
PY_OLD := $(CURDIR)/$(VENV_OLD)/bin/python
# the oldest ansible-core release the collection claims (meta/runtime.yml): unit tests and sanity run there too
VENV_218 := .venv-ansible-2.18
PY_218 := $(CURDIR)/$(VENV_218)/bin/python
COLL := $(CURDIR)/.build/collections
COLL_LINK := $(COLL)/ansible_collections/netops/logfwdr
APT_PACKAGES := iproute2 tcpdump strace socat user-mode-linux debootstrap e2fsprogs openssh-client shellcheck nftables
# Daemons the tests need installed but never running here (keepalived -t checks the role's keepalived.conf): a
# policy-rc.d denies their start during the install and is removed after it, unless one was there before.
APT_NOSTART_PACKAGES += keepalived
# rsyslogd -N1 checks the syslog bridge's configuration; the bridge's tests run their own rsyslogd (TLS: gnutls)
APT_NOSTART_PACKAGES += rsyslog rsyslog-gnutls
# snmptrapd: a real trap collector in the UML fragments test (3,000- and 9,000-byte traps reassembled)
APT_NOSTART_PACKAGES += snmptrapd
# nfdump: nfcapd, a real IPFIX collector in the same test (template and flows in datagrams of 3,000 and 9,000 bytes)
APT_NOSTART_PACKAGES += nfdump
# promtool checks and tests the shipped alert rules (make alerts); the Prometheus server itself never runs here
APT_NOSTART_PACKAGES += prometheus
# frr: zebra, bfdd and bgpd of the BGP mode's tests and bench (tests/integration/test_bgp_netns.py, bench/bgp_failover.py)
# run in network namespaces as the lab starts them; vtysh --dryrun checks the role's frr.conf. The host's frr service
# never runs here
APT_NOSTART_PACKAGES += frr
POLICY_RC_D ?= /usr/sbin/policy-rc.d

.PHONY: deps venv collection test unit alerts integration uml sanity lint molecule molecule-bgp demo demo-bgp bench bench-peers clean

deps: ## system packages and the pinned Python environments
	@if [ "$$(id -u)" = 0 ]; then \
	  missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	  if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi; \
	fi
	@if [ "$$(id -u)" = 0 ]; then \
	  missing=$$(for p in $(APT_NOSTART_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	  if [ -n "$$missing" ]; then \
	    if [ ! -e $(POLICY_RC_D) ]; then \
	      trap 'rm -f $(POLICY_RC_D)' EXIT; printf '#!/bin/sh\nexit 101\n' > $(POLICY_RC_D); chmod +x $(POLICY_RC_D); \
	    fi; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  fi; \
	fi
	$(MAKE) venv

venv: $(VENV)/.done $(VENV_OLD)/.done $(VENV_218)/.done collection

$(VENV)/.done: requirements-ci.txt requirements-test.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -r requirements-test.txt
	touch $@

$(VENV_218)/.done: requirements-ansible-2.18.txt
	$(PYTHON) -m venv $(VENV_218)
	$(VENV_218)/bin/pip install -q -r requirements-ansible-2.18.txt
	touch $@

$(VENV_OLD)/.done: requirements.txt
	$(PYTHON) -m venv $(VENV_OLD)
	$(VENV_OLD)/bin/pip install -q pyroute2==0.7.2 pytest==9.2.0 prometheus-client==0.16.0
	touch $@

# .venv/bin/logfwdr runs the host program (plugins/module_utils/tc/cli.py) from this checkout
collection:
	@mkdir -p $(dir $(COLL_LINK))
	@ln -sfn $(CURDIR) $(COLL_LINK)
	@if [ -d $(VENV)/bin ]; then \
	  printf '#!%s\nimport sys\nsys.path.insert(0, "%s")\nfrom ansible_collections.netops.logfwdr.plugins.module_utils.tc import cli\nsys.exit(cli.main())\n' \
	    "$(PY)" "$(COLL)" > $(VENV)/bin/.logfwdr.new; \
	  chmod +x $(VENV)/bin/.logfwdr.new; \
	  cmp -s $(VENV)/bin/.logfwdr.new $(VENV)/bin/logfwdr && rm -f $(VENV)/bin/.logfwdr.new \
	    || mv $(VENV)/bin/.logfwdr.new $(VENV)/bin/logfwdr; \
	fi

test: deps unit alerts integration uml lint sanity molecule molecule-bgp ## everything CI runs (installs what it needs)

unit: collection
	$(PY) -m pytest -q tests/unit
	@echo "== the unit tests again on $$($(VENV_218)/bin/ansible --version | head -n1)"
	$(PY_218) -m pytest -q -p no:cacheprovider tests/unit

alerts: ## the Prometheus alert rules: promtool's syntax check and their unit tests
	promtool check rules prometheus/logfwdr-alerts.yml
	promtool test rules tests/prometheus/logfwdr-alerts.test.yml

integration: collection
	LOGFWDR_TEST_PYTHONS=$(PY):$(PY_OLD) $(PY) -m pytest -q tests/integration -m netns

uml: collection
	$(PY) -m pytest -q tests/uml -m uml

lint: collection
	cd $(COLL_LINK) && PATH=$(CURDIR)/$(VENV)/bin:$$PATH ansible-lint --profile production

sanity: collection
	VENV=$(CURDIR)/$(VENV) .ci/sanity.sh
	@echo "== ansible-test sanity again on $$($(VENV_218)/bin/ansible --version | head -n1)"
	VENV=$(CURDIR)/$(VENV_218) .ci/sanity.sh

molecule: collection ## the lab scenario: create, converge, idempotence, verify with real traffic, destroy
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH molecule test -s default

molecule-bgp: collection ## the BGP lab scenario: router (FRR, ECMP, BFD), three replicators (logfwdr_ha: bgp), real traffic
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH molecule test -s bgp

demo: deps ## lab up, site.yml, real traffic from every exporter, a table per collector (installs what it needs)
	lab/demo

demo-bgp: deps ## the BGP lab up, router and replicators configured, traffic spread over three replicators (lab/demo-bgp)
	lab/demo-bgp

bench: venv
	$(PY) bench/reconfig_under_load.py
	$(PY) bench/apply_time.py

bench-peers: ## logfwdr beside rsyslog and pmacct's tee (bench/peers.py; installs gcc and pmacct, never started)
	$(MAKE) deps APT_PACKAGES="gcc libc6-dev iproute2" APT_NOSTART_PACKAGES="pmacct rsyslog"
	$(PY) bench/peers.py

clean:
	rm -rf .build $(VENV) $(VENV_OLD) tests/output
