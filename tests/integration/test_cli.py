"""sluiced's command line: --help, --version, exit codes, --config / --set."""

import os
import re
import signal
import socket
import subprocess
import tempfile
import time

import pytest

import kafka_raw as kr
from conftest import _die_with_parent, free_port, listeners_on, sluiced_path, unique, wait_for


def run(*args, timeout=20):
    return subprocess.run([sluiced_path(), *args], capture_output=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)


def start(*args):
    """Start sluiced with stderr to a temporary file (a pipe could fill up)."""
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([sluiced_path(), *args], stdin=subprocess.DEVNULL,
                            stdout=log, stderr=log, preexec_fn=_die_with_parent)
    proc.log = log
    return proc


def proc_log(proc):
    proc.log.seek(0)
    return proc.log.read().decode(errors="replace")


def stop_clean(proc, sig=signal.SIGTERM):
    proc.send_signal(sig)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        raise AssertionError("sluiced ignored signal %d for 20 s" % sig)
    assert proc.returncode == 0, "exit %d; stderr:\n%s" % (proc.returncode, proc_log(proc))
    return proc_log(proc)


def wait_listening(proc, port, timeout=20):
    def up():
        if proc.poll() is not None:
            raise AssertionError("sluiced exited %d: %s" % (proc.returncode, proc_log(proc)))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False
    wait_for(up, timeout=timeout, what="sluiced to listen on %d" % port)


def one_error_line(stderr):
    lines = [l for l in stderr.decode(errors="replace").splitlines() if l.strip()]
    assert len(lines) == 1, "expected exactly one stderr line, got %r" % lines
    assert lines[0].startswith("sluiced: "), lines[0]
    return lines[0]


def test_binary_exists():
    assert os.access(sluiced_path(), os.X_OK), "no executable at %s" % sluiced_path()


def test_help_lists_settings_and_defaults():
    r = run("--help")
    assert r.returncode == 0
    out = r.stdout.decode()
    for flag in ("--listen", "--advertise", "--data-dir", "--node-id", "--config", "--set",
                 "--help", "--version"):
        assert flag in out, flag
    defaults = {
        "listeners": "127.0.0.1:9092",
        "auto.create.topics.enable": "true",
        "num.partitions": "1",
        "default.replication.factor": "1",
        "socket.request.max.bytes": "104857600",
        "message.max.bytes": "1048588",
        "flush": "always",
        "log.segment.bytes": None,
        "log.retention.ms": None,
        "log.retention.bytes": None,
        "log.index.interval.bytes": None,
        "fetch.max.bytes": None,
        "max.connections": None,
        "log.flush.interval.ms": None,
        "log.level": None,
        "log.dirs": None,
        "advertised.listeners": None,
        "node.id": None,
    }
    for name, default in defaults.items():
        lines = [l for l in out.splitlines() if re.search(r"(^|\s)%s(\s|$)" % re.escape(name), l)]
        assert lines, "--help does not list %s" % name
        if default is not None:
            assert any(re.search(r"(^|[\s=:(])%s([\s,)]|$)" % re.escape(default), l)
                       for l in lines), "%s: default %s not shown in %r" % (name, default, lines)


def test_version():
    r = run("--version")
    assert r.returncode == 0
    assert re.match(r"sluiced \d+\.\d+\.\d+", r.stdout.decode()), r.stdout


@pytest.mark.parametrize("args", [
    ["--bogus"],
    ["--listen"],
    ["extra-positional"],
    ["--set", "unknown.key=1"],
    ["--set", "no-equals-sign"],
    ["--set", "num.partitions=abc"],
    ["--set", "num.partitions=0"],
    ["--set", "log.segment.bytes=1000"],
    ["--set", "auto.create.topics.enable=maybe"],
    ["--set", "flush=sometimes"],
    ["--listen", "127.0.0.1:99999"],
    ["--listen", "no-port-here"],
    ["--node-id", "-3"],
], ids=lambda a: " ".join(a))
def test_bad_arguments_exit_2(tmp_path, args):
    r = run("--data-dir", str(tmp_path / "d"), *args)
    assert r.returncode == 2, "exit %d, stderr %r" % (r.returncode, r.stderr)
    one_error_line(r.stderr)
    assert not (tmp_path / "d").exists() or not os.listdir(tmp_path / "d"), \
        "a refused start must not touch the data dir"


def test_config_file_unknown_key_exit_2(tmp_path):
    cfg = tmp_path / "bad.properties"
    cfg.write_text("num.partitions=2\nno.such.setting=1\n")
    r = run("--config", str(cfg), "--data-dir", str(tmp_path / "d"))
    assert r.returncode == 2
    one_error_line(r.stderr)


def test_port_in_use_exit_1(tmp_path):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        r = run("--listen", "127.0.0.1:%d" % port, "--data-dir", str(tmp_path / "d"))
    assert r.returncode == 1, "exit %d, stderr %r" % (r.returncode, r.stderr)
    err = r.stderr.decode()
    last = [l for l in err.splitlines() if l.strip()][-1]
    assert last.startswith("sluiced: ")
    assert str(port) in last or "in use" in last.lower(), last


def test_port_of_a_running_sluiced_exit_1(broker, tmp_path):
    """A second sluiced on the port of a running one (other data dir) must
    refuse to start, not share the port with it."""
    proc = start("--listen", broker.bootstrap, "--data-dir", str(tmp_path / "other"))
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        raise AssertionError(
            "second sluiced on %s kept running (listeners on the port: %d); stderr:\n%s"
            % (broker.bootstrap, listeners_on(broker.port), proc_log(proc)))
    assert proc.returncode == 1, proc_log(proc)
    assert "in use" in proc_log(proc).lower() or str(broker.port) in proc_log(proc)
    with kr.Conn.to(broker.bootstrap) as c:
        assert c.api_versions(0)[0] == 0


def test_stop_releases_port(make_broker):
    """Once sluiced has exited, its port is free (a restart can bind it)."""
    b = make_broker()
    for i in range(10):
        b.stop()
        n = listeners_on(b.port)
        assert n == 0, "after exit %d, %d socket(s) still listen on %d" % (i + 1, n, b.port)
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", b.port))  # EADDRINUSE if a listener lingers
        b.start()


def test_data_dir_is_a_file_exit_1(tmp_path):
    f = tmp_path / "not-a-dir"
    f.write_text("x")
    r = run("--listen", "127.0.0.1:%d" % free_port(), "--data-dir", str(f))
    assert r.returncode == 1, "exit %d, stderr %r" % (r.returncode, r.stderr)
    line = one_error_line(r.stderr)
    assert str(f) in line
    assert f.read_text() == "x"


def test_data_dir_unwritable_parent_exit_1(tmp_path):
    if os.geteuid() == 0:
        # root ignores permissions; use a path below a regular file instead
        (tmp_path / "file").write_text("x")
        d = tmp_path / "file" / "sub"
    else:
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        d = ro / "sub"
    r = run("--listen", "127.0.0.1:%d" % free_port(), "--data-dir", str(d))
    assert r.returncode == 1, "exit %d, stderr %r" % (r.returncode, r.stderr)
    one_error_line(r.stderr)


def test_two_brokers_same_data_dir(broker):
    r = run("--listen", "127.0.0.1:%d" % free_port(), "--data-dir", broker.data_dir)
    assert r.returncode == 1, "exit %d, stderr %r" % (r.returncode, r.stderr)
    line = [l for l in r.stderr.decode().splitlines() if l.strip()][-1]
    assert line.startswith("sluiced: ")
    assert broker.data_dir in line or "in use" in line or "lock" in line, line
    # the first one is unaffected
    with kr.Conn.to(broker.bootstrap) as c:
        assert c.api_versions(0)[0] == 0


def test_config_file_and_set_override(tmp_path):
    p1, p2 = free_port(), free_port()
    data = tmp_path / "data"
    cfg = tmp_path / "server.properties"
    cfg.write_text("# a comment\n\nlisteners=PLAINTEXT://127.0.0.1:%d\nlog.dirs=%s\n"
                   "num.partitions=3\nnode.id=7\n" % (p1, data))
    # 1) the file alone
    proc = start("--config", str(cfg))
    try:
        wait_listening(proc, p1)
        with kr.Conn.to("127.0.0.1:%d" % p1) as c:
            t = unique("cfgfile")
            c.metadata([t], allow_auto_create=True)
            md = wait_for(lambda: (lambda m: m if m["topics"][t]["error"] == 0 else None)(
                c.metadata([t])), timeout=10, what="auto-created topic")
            assert len(md["topics"][t]["partitions"]) == 3
            assert md["brokers"] == [(7, "127.0.0.1", p1, None)]
        assert os.path.isdir(data / ("%s-0" % t))
    finally:
        if proc.poll() is None:
            stop_clean(proc)
        else:
            raise AssertionError("sluiced exited: %s" % proc_log(proc))
    # 2) --set after --config wins; --listen too
    proc = start("--config", str(cfg), "--set", "num.partitions=2", "--listen",
                 "127.0.0.1:%d" % p2)
    try:
        wait_listening(proc, p2)
        with kr.Conn.to("127.0.0.1:%d" % p2) as c:
            t = unique("cfgset")
            c.metadata([t], allow_auto_create=True)
            md = wait_for(lambda: (lambda m: m if m["topics"][t]["error"] == 0 else None)(
                c.metadata([t])), timeout=10, what="auto-created topic")
            assert len(md["topics"][t]["partitions"]) == 2
            assert md["brokers"] == [(7, "127.0.0.1", p2, None)]
    finally:
        stop_clean(proc)
    # 3) command-line settings win whatever their position relative to --config
    proc = start("--set", "num.partitions=4", "--config", str(cfg))
    try:
        wait_listening(proc, p1)
        with kr.Conn.to("127.0.0.1:%d" % p1) as c:
            t = unique("cfgorder")
            c.metadata([t], allow_auto_create=True)
            md = wait_for(lambda: (lambda m: m if m["topics"][t]["error"] == 0 else None)(
                c.metadata([t])), timeout=10, what="auto-created topic")
            assert len(md["topics"][t]["partitions"]) == 4
    finally:
        stop_clean(proc)


def test_advertise_is_what_metadata_returns(make_broker):
    b = make_broker("--advertise", "broker.example:19092", "--node-id", "5")
    with kr.Conn.to(b.bootstrap) as c:
        md = c.metadata(None)
        assert md["brokers"] == [(5, "broker.example", 19092, None)]
        assert md["controller_id"] == 5


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_clean_exit(make_broker, sig):
    b = make_broker()
    with kr.Conn.to(b.bootstrap) as c:
        assert c.create_topic("sig")[0] == 0
        assert c.produce_v3("sig", 0, kr.record_batch([(None, b"x")])) == (0, 0)
        # an idle open connection does not block the stop
        b.stop(sig)
    b.start()
    with kr.Conn.to(b.bootstrap) as c:
        assert c.fetch_all("sig", 0)[0] == 1


def test_stop_with_parked_fetch(make_broker):
    """SIGTERM while a long-poll fetch is parked still exits 0 promptly."""
    b = make_broker()
    with kr.Conn.to(b.bootstrap) as c:
        assert c.create_topic("parked")[0] == 0
        c.send_request(kr.FETCH, 4, kr.i32(-1) + kr.i32(30000) + kr.i32(1) + kr.i32(1 << 20)
                       + kr.i8(0) + kr.array([kr.string("parked") + kr.array(
                           [kr.i32(0) + kr.i64(0) + kr.i32(1 << 20)])]))
        time.sleep(0.3)
        t0 = time.monotonic()
        b.stop()
        assert time.monotonic() - t0 < 10


def test_max_connections(make_broker):
    b = make_broker("--set", "max.connections=3")

    def try_connect():
        """A connection that answers ApiVersions, or None if refused."""
        c = kr.Conn.to(b.bootstrap)
        try:
            if c.api_versions(0)[0] == 0:
                return c
        except (kr.ConnectionClosed, OSError):
            pass
        c.close()
        return None

    conns = []
    try:
        # retry: the start-up probe's connection may not be reaped yet
        for _ in range(3):
            conns.append(wait_for(try_connect, timeout=10, what="a connection under the limit"))
        extra = kr.Conn.to(b.bootstrap)
        try:
            assert extra.is_closed_by_peer(5), "4th connection kept open with max.connections=3"
        finally:
            extra.close()
        conns.pop().close()
        conns.append(wait_for(try_connect, timeout=10, what="a connection slot to free up"))
    finally:
        for c in conns:
            c.close()
