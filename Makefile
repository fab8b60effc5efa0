# Celeris: `make run` starts the system, `make test` runs the tests.
# Both install what they need on Debian 12 (as root, or with sudo).
SHELL := /bin/bash
APT_PKGS := libhiredis-dev libevent-dev liburing-dev libhttp-parser-dev redis-server python3 python3-venv poppler-utils libssl-dev
# `make test` also installs these: System/DashboardBrowserTests drives the dashboard in headless Chromium;
# System/ContainerTests builds and runs the image with podman (runc; a debootstrap base).
TEST_APT_PKGS := chromium podman runc debootstrap
# System/ManyHostsTests: network namespaces (iproute2), a load balancer (haproxy) and Redis Sentinel.
TEST_APT_PKGS += haproxy redis-sentinel iproute2
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PY := .venv/bin/python
export PATH := $(if $(wildcard /opt/swift/usr/bin),/opt/swift/usr/bin:,)$(PATH)

.PHONY: run test fuzz bench deps venv build release clean

deps:
	@command -v swift >/dev/null || { echo "Swift 6 toolchain not found (expected /opt/swift or on PATH)"; exit 1; }
	@missing=$$(for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing apt packages:" $$missing; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

# pip install -r runs again whenever Tests/requirements.txt changes: the stamp's name is its hash.
VENV_STAMP := .venv/.requirements-$(shell sha256sum Tests/requirements.txt | cut -c1-16)
venv: $(VENV_STAMP)
$(VENV_STAMP): Tests/requirements.txt
	@test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q -r Tests/requirements.txt
	@rm -f .venv/.requirements-* && touch $@

build: deps
	swift build

release: deps
	swift build -c release

run: release venv
	@bash scripts/run.sh

# The second pass runs every suite that runs the worker engine: each XCTestCase class
# (`class <Name>Tests:`) in a file under Tests/CelerisTests/Worker, Interop or System.
# A suite added there joins the pass by itself; Unit, Redis, Frontend and Beat (celeris-beat, no worker) suites run once.
# SOCKET_SKIP keeps out of the pass what runs no celeris-worker (nor an in-process worker, InProcessWorker):
# CELERIS_IO/CELERIS_CLAIM change nothing for it. A whole suite as `Suite`, one test as `Suite/testName`.
# Maintained by hand: a test that starts running a Celeris worker leaves this list; one that stops joins it
# (a renamed test silently rejoins the pass: it costs time, it never hides a test).
# Plus the Redis suites whose tests drain with a worker over TLS and through Sentinel failovers.
SOCKET_DIRS := Worker Interop System
SOCKET_EXTRA := SentinelTests TLSTests
SOCKET_SUITES = $(shell { sed -n 's/^\(final \)\{0,1\}class \([A-Za-z0-9_]*Tests\): .*/\2/p' \
	$(foreach d,$(SOCKET_DIRS),Tests/CelerisTests/$(d)/*.swift); printf '%s\n' $(SOCKET_EXTRA); } | sort -u | paste -sd'|')
SOCKET_SKIP := \
	SchedulerTests \
	SentinelTests/testConnectionFindsTheMasterAndFollowsAFailover \
	SentinelTests/testUnknownMasterAndUnreachableSentinelsAreClearErrors \
	SentinelTests/testTheSentinelThatAnsweredIsAskedFirst \
	SentinelTests/testSentinelAuthentication \
	TLSTests/testLargeRepliesAndLongPipelinesOverTLS \
	TLSTests/testWrongCAIsRefused \
	TLSTests/testOptionalVerifiesAndUnixSocketTLSIsRefused \
	TLSTests/testRedissSendsATLSHandshakeFirst \
	TLSTests/testRedissToAPlainServerFailsClearly \
	TLSTests/testHostNameCheck \
	TLSTests/testClientCertificateRequired \
	ClientLifecycleTests \
	ContainerTests \
	DashboardBrowserTests \
	DeployManifestTests/testEveryManifestIsValidAgainstKubernetesAndKEDASchemas \
	DeployManifestTests/testValidatorRejectsBrokenManifests \
	DeployManifestTests/testManifestsAgreeWithEachOtherAndWithTheBinaries \
	DeployManifestTests/testConsistencyChecksCatchDrift \
	DeployManifestTests/testFrontendProbesAndShutdownAsDeployed \
	LiveUpdateTests/testAPythonCeleryTasksStatesReachTheSubscriberInOrderOnce \
	LiveUpdateTests/testTasksFinishingRightAfterTheirSubscribeAreReportedOnce \
	LiveUpdateTests/testTenThousandSubscribedTasksFinishingInABurstEachReachTheirSubscriberOnce \
	LiveUpdateTests/testNoFirehose \
	HTTPAPITests/testLinkErrorRunsOnFailure \
	HTTPAPITests/testRevokeRefusesMalformedRequests \
	HTTPAPITests/testStatusShowsChildren \
	HTTPAPITests/testWaitRefusesBadValues \
	HTTPAPITests/testClosedLongPollIsUnwatched \
	HTTPAPITests/testShutdownAnswersWaitingRequests
empty :=
space := $(empty) $(empty)
SOCKET_SKIP_RE = ^CelerisTests\.($(subst $(space),|,$(strip $(SOCKET_SKIP))))(/|$$)

# Both passes run under Tests/System/close_watch.c: a close(2) of a descriptor that is not open,
# in the test process or a celeris-* process started with its environment, is reported (also
# when a pass fails) and fails the run (a double close can take a reused number from another thread).
CLOSE_WATCH_SO := .build/close_watch.so
CLOSE_WATCH_LOG := .build/close_watch.log
WATCH_CLOSES := CELERIS_CLOSE_WATCH=$(abspath $(CLOSE_WATCH_LOG)) LD_PRELOAD=$(abspath $(CLOSE_WATCH_SO))
SHOW_CLOSES = if [ -s $(CLOSE_WATCH_LOG) ]; then \
  echo "== close(2) of descriptors not open (Tests/System/close_watch.c; addr2line -f -e OBJECT +OFFSET) =="; \
  cat $(CLOSE_WATCH_LOG); fi
CLANG := $(or $(wildcard /opt/swift/usr/bin/clang),$(shell command -v clang || command -v cc),clang)

test: deps venv
	@$(MAKE) --no-print-directory deps APT_PKGS="$(TEST_APT_PKGS)"
	swift build --build-tests
	swift build --package-path Examples/WordCount   # the example package, run by System/ExampleTests
	$(CLANG) -shared -fPIC -O1 -o $(CLOSE_WATCH_SO) Tests/System/close_watch.c -ldl
	$(CLANG) -DCLOSE_WATCH_CHECK -o .build/celeris-close-watch-check Tests/System/close_watch.c
	@rm -f $(CLOSE_WATCH_LOG)
	@$(WATCH_CLOSES) .build/celeris-close-watch-check && grep -q "not open, in celeris-close-watch-check" $(CLOSE_WATCH_LOG) \
	  || { echo "close watch: a descriptor closed twice went unreported (is LD_PRELOAD honoured?)"; exit 1; }
	@rm -f $(CLOSE_WATCH_LOG)
	$(WATCH_CLOSES) CELERIS_PYTHON=$(abspath $(PY)) swift test --skip-build --disable-swift-testing \
		|| { $(SHOW_CLOSES); exit 1; }
	@echo "== the worker's tests again over the plain-socket broker transport, claiming by move (the run above used io_uring where allowed, and the claim script) =="
	$(WATCH_CLOSES) CELERIS_IO=socket CELERIS_CLAIM=move CELERIS_PYTHON=$(abspath $(PY)) swift test --skip-build --disable-swift-testing \
		--filter '^CelerisTests\.($(SOCKET_SUITES))/' --skip '$(SOCKET_SKIP_RE)' || { $(SHOW_CLOSES); exit 1; }
	@$(SHOW_CLOSES); [ ! -s $(CLOSE_WATCH_LOG) ]
	@echo "== close watch: no close(2) of a descriptor that was not open =="

# libFuzzer + ASan/UBSan on CEventShim's HTTP and WebSocket readers (CI runs 60 s each), and
# libFuzzer + ASan on the Swift readers of JSON, base64, times, envelopes, control requests
# and task submissions (Tests/Fuzz/Swift, SWIFT_FUZZ_SECONDS each).
FUZZ_SECONDS ?= 60
SWIFT_FUZZ_SECONDS ?= 30
fuzz: deps
	bash Tests/Fuzz/run.sh $(FUZZ_SECONDS) $(SWIFT_FUZZ_SECONDS)

# Benchmarks (not part of CI): each prints progress, ends by itself, writes perf/results/.
bench: release venv
	@$(PY) -c 'import fastapi, uvicorn, matplotlib, hdrh' 2>/dev/null || $(PY) -m pip install -q -r bench/requirements.txt
	@command -v wrk >/dev/null && command -v nginx >/dev/null || { $(SUDO) apt-get install -y -qq wrk nginx-light >/dev/null; }
	.venv/bin/python bench/workflow_bench.py --bin $$(swift build -c release --show-bin-path)
	.venv/bin/python bench/http_bench.py --bin $$(swift build -c release --show-bin-path)
	.venv/bin/python bench/fanout_bench.py --bin $$(swift build -c release --show-bin-path)
	.venv/bin/python bench/drain_bench.py --bin $$(swift build -c release --show-bin-path) --tasks 200000 --prefetch-multiplier 64
	.venv/bin/python bench/beat_bench.py --bin $$(swift build -c release --show-bin-path) --sizes 100,1000,10000 --seconds 30
	.venv/bin/python perf/allocs_per_task.py --bin $$(swift build -c release --show-bin-path)
	cd bench && swift package --disable-sandbox benchmark --format markdown | tee /dev/stderr | sed -n '/^## Codec/,$$p' > ../perf/results/micro-codec.md
	cd bench && ../.venv/bin/python charts.py

clean:
	rm -rf .build
