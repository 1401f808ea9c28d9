"""Fixtures for Sluice's integration tests: a real sluiced on a free port.

The binary is $SLUICED, or <repo>/build/dataplane/sluiced.

Fixtures:
  broker         function-scoped broker; extra command-line args with
                 @pytest.mark.broker_args("--set", "k=v", ...)
  shared_broker  module-scoped broker for tests that only add their own topics
  make_broker    factory: make_broker(*extra_args, start=True, data_dir=None)

Every test runs under a wall-clock limit (default 120 s, or
@pytest.mark.timeout_s(N)); pytest-timeout is not used.
"""

import faulthandler
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

START_TIMEOUT = 20.0
STOP_TIMEOUT = 20.0
DEFAULT_TEST_TIMEOUT = 120

SANITIZER_RE = re.compile(r"ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:|"
                          r"SUMMARY: UndefinedBehaviorSanitizer")


def _die_with_parent():
    """preexec_fn: SIGKILL the broker if the test process dies, so that an
    aborted run leaves no sluiced behind."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort
        pass


def sluiced_path():
    return os.environ.get("SLUICED") or os.path.join(REPO, "build", "dataplane", "sluiced")


def built_path(*parts):
    """A file of the build SLUICED comes from: <build>/dataplane/sluiced ->
    <build>/PARTS (tools, probes and test clients are built next to it)."""
    build = os.path.dirname(os.path.dirname(os.path.abspath(sluiced_path())))
    return os.path.join(build, *parts)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_pair():
    """A port P with P+1 free too (per-shard endpoints listen on both)."""
    for _ in range(50):
        p = free_port()
        if p >= 65535 - 64:
            continue
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", p + 1))
            return p
        except OSError:
            continue
    raise AssertionError("no two consecutive free ports")


def listeners_on(port):
    """How many TCP sockets are in LISTEN state on this local port (any address)."""
    n = 0
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                        n += 1
        except FileNotFoundError:
            pass
    return n


def unique(prefix="t"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


class BrokerError(AssertionError):
    pass


class Broker:
    def __init__(self, data_dir, extra_args=(), port=None, log_path=None):
        self.binary = sluiced_path()
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.bootstrap = "%s:%d" % (self.host, self.port)
        self.data_dir = str(data_dir)
        self.extra_args = list(extra_args)
        self.log_path = log_path or (self.data_dir.rstrip("/") + ".stderr.log")
        self.proc = None
        self.killed = False  # the test SIGKILLed it: no clean-exit check at teardown
        self.starts = 0

    def args(self):
        return [self.binary, "--listen", self.bootstrap, "--data-dir", self.data_dir,
                *self.extra_args]

    def start(self):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        if not os.path.exists(self.binary):
            pytest.fail("sluiced binary not found at %s (set SLUICED)" % self.binary)
        waited = 0.0
        if self.starts > 0:
            # A restart: wait until the previous process's listening socket is
            # really gone. sluiced's io_uring accept keeps it alive for a few
            # ms after exit, and with SO_REUSEPORT the new process would share
            # the port with that dying socket (connections to it are reset).
            # test_cli.py::test_stop_releases_port reports that separately.
            t0 = time.monotonic()
            while listeners_on(self.port) and time.monotonic() - t0 < 10:
                time.sleep(0.005)
            waited = time.monotonic() - t0
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(("=== start %d%s: %s\n" % (
                self.starts, " (after %.0f ms waiting for the old listener to go)" % (waited * 1000)
                if waited > 0.004 else "", " ".join(self.args()))).encode())
            log.flush()
            self.proc = subprocess.Popen(self.args(), stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, preexec_fn=_die_with_parent)
        self.killed = False
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            rc = self.proc.poll()
            if rc is not None:
                raise BrokerError("sluiced exited with %d during start-up; stderr:\n%s"
                                  % (rc, self.log()))
            try:
                socket.create_connection((self.host, self.port), timeout=1).close()
                return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait(10)
                raise BrokerError("sluiced did not accept connections on %s within %.0f s; "
                                  "stderr:\n%s" % (self.bootstrap, START_TIMEOUT, self.log()))
            time.sleep(0.05)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def _signal_and_wait(self, sig):
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise BrokerError("sluiced did not exit within %.0f s of signal %d; stderr:\n%s"
                              % (STOP_TIMEOUT, sig, self.log()))

    def stop(self, sig=signal.SIGTERM):
        """Clean stop: the signal, then exit code 0 within 20 s."""
        was_running = self.running()
        rc = self._signal_and_wait(sig)
        if rc != 0:
            why = "" if was_running else " (it had already exited before the stop)"
            raise BrokerError("sluiced exited with %d on signal %d%s; stderr:\n%s"
                              % (rc, sig, why, self.log()))
        self.check_log()
        return rc

    def kill(self):
        self.killed = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait(STOP_TIMEOUT)

    def restart(self):
        if self.running():
            self.stop()
        return self.start()

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def check_log(self):
        m = SANITIZER_RE.search(self.log())
        if m:
            raise BrokerError("sanitizer report in sluiced's stderr:\n%s" % self.log()[-20000:])

    def log_tail(self, n=40):
        return "\n".join(self.log().splitlines()[-n:])

    def teardown(self):
        if self.proc is None:
            return
        if self.killed and self.proc.poll() is not None:
            self.check_log()
            return
        self.stop()


# ------------------------------------------------------------------ fixtures


def pytest_configure(config):
    config.addinivalue_line("markers", "broker_args(*args): extra sluiced arguments")
    config.addinivalue_line("markers", "timeout_s(n): wall-clock limit of the test")


class _TestTimeout(Exception):
    pass


@pytest.fixture(autouse=True)
def _deadline(request):
    """Per-test wall-clock limit: SIGALRM raises in the test; a hard
    faulthandler exit 60 s later catches a test stuck inside C code."""
    m = request.node.get_closest_marker("timeout_s")
    limit = int(m.args[0]) if m else DEFAULT_TEST_TIMEOUT

    def on_alarm(signum, frame):
        raise _TestTimeout("test exceeded its %d s limit" % limit)

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(limit)
    faulthandler.dump_traceback_later(limit + 60, exit=True)
    try:
        yield
    finally:
        signal.alarm(0)
        faulthandler.cancel_dump_traceback_later()
        signal.signal(signal.SIGALRM, old)


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _failed(request):
    rep = getattr(request.node, "rep_call", None)
    return rep is not None and rep.failed


def _dump_logs(brokers):
    for i, b in enumerate(brokers):
        print("----- sluiced #%d stderr (%s), last 60 lines -----" % (i, b.log_path))
        print(b.log_tail(60))


@pytest.fixture
def make_broker(tmp_path, request):
    brokers = []

    def make(*extra_args, start=True, data_dir=None, port=None):
        d = data_dir or tmp_path / ("data%d" % len(brokers))
        b = Broker(d, extra_args, port=port,
                   log_path=str(tmp_path / ("broker%d.stderr.log" % len(brokers))))
        brokers.append(b)
        if start:
            b.start()
        return b

    yield make
    if _failed(request):
        _dump_logs(brokers)
    errors = []
    for b in brokers:
        try:
            b.teardown()
        except Exception as e:  # noqa: BLE001 - report every broker
            errors.append(str(e))
    if errors:
        pytest.fail("broker teardown: " + "\n\n".join(errors), pytrace=False)


@pytest.fixture
def broker(request, make_broker):
    m = request.node.get_closest_marker("broker_args")
    return make_broker(*(m.args if m else ()))


@pytest.fixture(scope="module")
def shared_broker(tmp_path_factory):
    d = tmp_path_factory.mktemp("shared")
    b = Broker(d / "data", log_path=str(d / "broker.stderr.log"))
    b.start()
    yield b
    b.teardown()


@pytest.fixture(autouse=True)
def _shared_broker_logs(request):
    """On failure of a test using shared_broker, show the broker's log tail."""
    yield
    if "shared_broker" in request.fixturenames and _failed(request):
        _dump_logs([request.getfixturevalue("shared_broker")])


@pytest.fixture
def topic():
    return unique("t")


def wait_for(pred, timeout=20.0, interval=0.05, what="condition"):
    """Poll pred() until it returns a truthy value; returns it."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(interval)
