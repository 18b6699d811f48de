# ECI: build, test and benchmark. `make help` lists the targets.
SWIFT ?= swift
CONFIG ?= release
# Binaries that go into the VM carry the Swift runtime with them.
SWIFT_BUILD_FLAGS := -c $(CONFIG) $(if $(filter release,$(CONFIG)),--static-swift-stdlib)
PRODUCTS := eci-runc ecibuild eci-agent ecid
TEST_EXECUTABLES := eci-test-helper eci-e2e
EXECUTABLES := $(PRODUCTS) $(TEST_EXECUTABLES)
# Release products are installed stripped (the symbol tables are a quarter of their size; the VM
# image carries eci-runc and eci-agent). Debug builds and the test-only tools keep their symbols.
STRIP_FLAG := $(if $(filter release,$(CONFIG)),-s)
DEB_PACKAGES := runc docker.io containerd busybox-static libseccomp-dev libcap-dev libfuse3-dev fuse3 pkg-config iproute2 procps libc6-dev \
	mmdebstrap e2fsprogs mtools syslinux syslinux-common qemu-system-x86 qemu-utils fdisk linux-source-6.1 flex bison bc xz-utils make gcc openssl \
	arch-test gpg libdpkg-perl mount debian-archive-keyring curl

.PHONY: all build test unit-test integration e2e deps bench clean help image kernel-config-verify

all: build

help:
	@echo "make            build every executable into ./bin ($(CONFIG))"
	@echo "make deps       install the Debian packages the build and the tests need (idempotent)"
	@echo "make test       build, then run every test (unit, host integration, image build + QEMU boot, the VM end-to-end tests; as root)"
	@echo "make e2e        the VM end-to-end tests: build the image, boot it with ecibuild run, drive it with the docker CLI (as root)"
	@echo "make image      build the ECI VM image into ./out (ecibuild image; as root)"
	@echo "make kernel-config-verify  check kernel-config/ against Debian's linux-source"
	@echo "make unit-test  only the unit tests (swift test: pure logic, seconds, no root needed)"
	@echo "make integration  the host integration suites (Tests/Integration: real runc, dockerd, mounts, ecid, the image under QEMU; as root)"
	@echo "make bench      side-by-side timings of eci against plain runc, and of the ECI VM against plain (as root)"

build:
	$(SWIFT) build $(SWIFT_BUILD_FLAGS)
	@mkdir -p bin
	@dir=$$($(SWIFT) build $(SWIFT_BUILD_FLAGS) --show-bin-path); \
	for e in $(PRODUCTS); do install -m 0755 $(STRIP_FLAG) "$$dir/$$e" bin/; done; \
	for e in $(TEST_EXECUTABLES); do install -m 0755 "$$dir/$$e" bin/; done
	$(MAKE) bin/eci-init
	@echo "built: $(addprefix bin/,$(EXECUTABLES) eci-init)"

# eci-init runs inside containers (any image, as their first program): plain C, static, small.
# Not a SwiftPM target: swiftc would link the Swift runtime into it (7 MB instead of 0.7).
bin/eci-init: Sources/eci-init/main.c
	@mkdir -p bin
	$(CC) -static -O2 -Wall -Wextra -Werror -s -o $@ $<

test: build kernel-config-verify
	$(SWIFT) test
	$(MAKE) integration
	$(MAKE) e2e

# Per-case logs and the VM's console log are kept in .e2e-logs/.
e2e: build
	bin/eci-e2e --logs .e2e-logs

image: build
	bin/ecibuild image -o out

kernel-config-verify:
	kernel-config/verify.sh

unit-test:
	$(SWIFT) test

# A package of its own, so `swift test` at the root stays fast and root-free. Uses ./bin.
integration: build
	$(SWIFT) test --package-path Tests/Integration

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "all Debian packages present"; fi

bench: build
	Tests/Benchmarks/bench.sh

clean:
	rm -rf .build bin Tests/Integration/.build
