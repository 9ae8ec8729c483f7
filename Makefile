# Mizar in Swift: build, test, benchmark and demo. Run as root on Debian 12.
SHELL       := /bin/bash
# The Swift toolchain may be installed without being on PATH.
export PATH := $(PATH):/opt/swift/usr/bin
SWIFT       ?= swift
CLANG       ?= clang
CONFIG      ?= debug
PREFIX      ?= /usr/local
CNI_BIN_DIR ?= /opt/cni/bin
CNI_CONF_DIR ?= /etc/cni/net.d
MIZAR_CONF_DIR ?= /etc/mizar
BUILD       := build
BPF_OUT     := $(BUILD)/bpf
ARCH_INC    := /usr/include/$(shell gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)
BPF_CFLAGS  := -O2 -g -target bpf -Wall -Werror -Ibpf/include -I$(ARCH_INC)

# Debian packages the project needs to build, test and demo.
APT_PACKAGES := libbpf-dev libelf-dev zlib1g-dev libnl-3-dev libnl-route-3-dev libjson-c-dev \
	pkg-config bpftool iproute2 iperf3 tcpdump iputils-ping util-linux ethtool netsniff-ng nftables python3 curl openssl \
	containerd runc containernetworking-plugins iptables busybox-static golang-go golang-github-appc-cni-dev \
	python3-grpcio python3-grpc-tools python3-scapy python3-prometheus-client podman etcd-server etcd-client

PLUGIN_SRCS := $(wildcard plugins/*/*.bpf.c) $(wildcard plugins/examples/*/*.bpf.c)
BPF_SRCS  := $(wildcard bpf/*.bpf.c) $(PLUGIN_SRCS)
BPF_OBJS  := $(patsubst %.c,$(BPF_OUT)/%.o,$(notdir $(BPF_SRCS)))
# make bench's baselines: the core programs built without trace hooks, without per-endpoint
# counters, and without the underlay checks (trusting every outer source).
BENCH_BPF_OBJS := $(foreach v,notrace nocounters trusting,$(BPF_OUT)/transit_xdp_$(v).bpf.o $(BPF_OUT)/transit_agent_$(v).bpf.o)
TEST_BPF_SRCS := $(wildcard Tests/bpf/*.bpf.c)
TEST_BPF_OBJS := $(patsubst %.c,$(BPF_OUT)/tests/%.o,$(notdir $(TEST_BPF_SRCS)))
BIN_DIR    = $(shell $(SWIFT) build -c $(CONFIG) --show-bin-path)

.PHONY: all deps bpf build test bench fuzz demo demo-cluster install install-sdk clean cnidriver

all: build

## deps: install the apt packages (only when one is missing) and mount bpffs.
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
	@mkdir -p /run/netns

## bpf: compile every BPF program into build/bpf/.
bpf: $(BPF_OBJS) $(TEST_BPF_OBJS) $(BENCH_BPF_OBJS)

$(BPF_OUT)/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/include/mizar/*.h)
	@mkdir -p $(@D)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BPF_OUT)/%_notrace.bpf.o: bpf/%.bpf.c $(wildcard bpf/include/mizar/*.h)
	@mkdir -p $(@D)
	$(CLANG) $(BPF_CFLAGS) -DMZ_NO_TRACE -c $< -o $@

$(BPF_OUT)/%_nocounters.bpf.o: bpf/%.bpf.c $(wildcard bpf/include/mizar/*.h)
	@mkdir -p $(@D)
	$(CLANG) $(BPF_CFLAGS) -DMZ_NO_ENDPOINT_STATS -c $< -o $@

$(BPF_OUT)/%_trusting.bpf.o: bpf/%.bpf.c $(wildcard bpf/include/mizar/*.h)
	@mkdir -p $(@D)
	$(CLANG) $(BPF_CFLAGS) -DMZ_TRUST_UNDERLAY -c $< -o $@

# Plugins live in plugins/<name>/ (and plugins/examples/<name>/) with their own headers.
vpath %.bpf.c $(sort $(dir $(PLUGIN_SRCS)))
$(BPF_OUT)/%.bpf.o: %.bpf.c $(wildcard bpf/include/mizar/*.h)
	@mkdir -p $(@D)
	$(CLANG) $(BPF_CFLAGS) -I$(<D) -I$(<D)/include -c $< -o $@

$(BPF_OUT)/tests/%.bpf.o: Tests/bpf/%.bpf.c $(wildcard bpf/include/mizar/*.h)
	@mkdir -p $(@D)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

## build: the Swift packages and executables.
build: bpf
	$(SWIFT) build -c $(CONFIG)

## cnidriver: the libcni driver the CNI tests run chains through (Debian's libcni, built offline).
cnidriver: $(BUILD)/cnidriver
$(BUILD)/cnidriver: cni/driver/main.go
	@mkdir -p $(BUILD)
	cd cni/driver && GOPATH=/usr/share/gocode GO111MODULE=off GOFLAGS= GOCACHE=$(CURDIR)/$(BUILD)/gocache go build -o $(CURDIR)/$@ .

## test: everything a clean machine needs, then every test (root required).
test: deps bpf cnidriver
	$(SWIFT) build --build-tests
	@mkdir -p $(BUILD)
	set -o pipefail; $(SWIFT) test --skip-build --no-parallel 2>&1 | tee $(BUILD)/test.log
	@# One closing line for CI: swift-testing's per-test results, counted.
	@echo "tests: $$(grep -E '^✔ Test .* passed after' $(BUILD)/test.log | grep -vc 'Test run with' | tr -d ' ') passed, $$(grep -E '^✘ Test .* failed after' $(BUILD)/test.log | grep -vc 'Test run with' | tr -d ' ') failed"

## bench: benchmarks into build/bench/results.json (release build).
bench: deps bpf
	$(SWIFT) build -c release --product mizar-bench
	$(SWIFT) build -c release --product transitd
	$(SWIFT) build -c release --product mizarctl
	$(SWIFT) build -c release --product mizar
	$(SWIFT) build -c release --product mizar-controller
	$$($(SWIFT) build -c release --show-bin-path)/mizar-bench --bpf-dir $(BPF_OUT) --output $(BUILD)/bench/results.json

## fuzz: 1,000,000 random and mutated frames through transit XDP and the agent, invariants checked (SEED=, FRAMES=).
SEED   ?= 13
FRAMES ?= 1000000
fuzz: deps bpf
	$(SWIFT) build -c release --product mizar-fuzz
	$$($(SWIFT) build -c release --show-bin-path)/mizar-fuzz --bpf-dir $(BPF_OUT) --seed $(SEED) --frames $(FRAMES)

## demo: one transitd per namespaced droplet (2 hosts, bouncer, divider), the overlay applied with mizarctl; ping, iperf3, counters, a container plugged by the CNI plugin, plugin chain.
demo: deps bpf
	$(SWIFT) build --product mizar-demo
	$(SWIFT) build --product transitd
	$(SWIFT) build --product mizarctl
	$(SWIFT) build --product mizar
	$$($(SWIFT) build --show-bin-path)/mizar-demo --bpf-dir $(BPF_OUT)

## demo-cluster: a 3-member etcd, 4 droplets with transitd in cluster mode, 2 mizar-controllers (all in namespaces);
## a manifest applied through one droplet, CNI ADDs on two others, pings across; a bouncer's droplet killed, its role re-placed.
demo-cluster: deps bpf
	$(SWIFT) build --product mizar-demo
	$(SWIFT) build --product transitd
	$(SWIFT) build --product mizarctl
	$(SWIFT) build --product mizar
	$(SWIFT) build --product mizar-controller
	$$($(SWIFT) build --show-bin-path)/mizar-demo --cluster --bpf-dir $(BPF_OUT)

## install-sdk: what plugin authors build against (the BPF headers, for mizarctl plugin build) and start
## from (the template of mizarctl plugin new): $(PREFIX)/include/mizar and $(PREFIX)/share/mizar/plugin-template.
install-sdk:
	install -d $(DESTDIR)$(PREFIX)/include/mizar $(DESTDIR)$(PREFIX)/share/mizar/plugin-template/Tests
	install -m 0644 bpf/include/mizar/*.h $(DESTDIR)$(PREFIX)/include/mizar/
	install -m 0644 $(addprefix plugins/examples/port_guard/,port_guard.bpf.c port_guard.plugin.yaml PortGuard.swift) \
		$(DESTDIR)$(PREFIX)/share/mizar/plugin-template/
	install -m 0644 plugins/examples/port_guard/Tests/PortGuardTests.swift $(DESTDIR)$(PREFIX)/share/mizar/plugin-template/Tests/

## install: transitd, mizar-controller and mizarctl to $(PREFIX)/bin, BPF objects to $(PREFIX)/lib/mizar/bpf, the BPF headers to
## $(PREFIX)/include/mizar and the plugin template to $(PREFIX)/share/mizar/plugin-template (plugin authors),
## the systemd unit to $(PREFIX)/lib/systemd/system, the CNI plugin `mizar` to $(CNI_BIN_DIR) and
## cni/10-mizar.conflist to $(CNI_CONF_DIR) and packaging/transitd.yaml to $(MIZAR_CONF_DIR) (existing ones are kept).
install: bpf
	$(SWIFT) build -c release --product mizarctl
	$(SWIFT) build -c release --product mizar
	$(SWIFT) build -c release --product transitd
	$(SWIFT) build -c release --product mizar-controller
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/mizar/bpf $(DESTDIR)$(PREFIX)/lib/systemd/system
	install -m 0755 $$($(SWIFT) build -c release --show-bin-path)/mizarctl $(DESTDIR)$(PREFIX)/bin/
	install -m 0755 $$($(SWIFT) build -c release --show-bin-path)/transitd $(DESTDIR)$(PREFIX)/bin/
	install -m 0755 $$($(SWIFT) build -c release --show-bin-path)/mizar-controller $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 $(BPF_OBJS) $(DESTDIR)$(PREFIX)/lib/mizar/bpf/
	$(MAKE) install-sdk
	sed 's|@PREFIX@|$(PREFIX)|g' packaging/systemd/transitd.service > $(DESTDIR)$(PREFIX)/lib/systemd/system/transitd.service
	install -d $(DESTDIR)$(MIZAR_CONF_DIR)
	@if [ -e $(DESTDIR)$(MIZAR_CONF_DIR)/transitd.yaml ]; then echo "kept $(DESTDIR)$(MIZAR_CONF_DIR)/transitd.yaml"; \
	else sed 's|^# bpfDir: .*|bpfDir: $(PREFIX)/lib/mizar/bpf|' packaging/transitd.yaml > $(DESTDIR)$(MIZAR_CONF_DIR)/transitd.yaml; fi
	install -d $(DESTDIR)$(CNI_BIN_DIR) $(DESTDIR)$(CNI_CONF_DIR)
	install -m 0755 "$$($(SWIFT) build -c release --show-bin-path)/mizar" $(DESTDIR)$(CNI_BIN_DIR)/
	@if [ -e $(DESTDIR)$(CNI_CONF_DIR)/10-mizar.conflist ]; then echo "kept $(DESTDIR)$(CNI_CONF_DIR)/10-mizar.conflist"; \
	else install -m 0644 cni/10-mizar.conflist $(DESTDIR)$(CNI_CONF_DIR)/; fi
	@echo "installed; set the substrate interface in $(MIZAR_CONF_DIR)/transitd.yaml (interface: eth0), then: systemctl enable --now transitd"

clean:
	rm -rf $(BUILD)
	$(SWIFT) package clean
