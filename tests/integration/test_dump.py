"""sluice-dump on the files a real sluiced wrote.

One broker (module fixture) takes records from real clients: an idempotent
confluent-kafka producer with keys and headers, kcat with keys and a header,
gzip and zstd batches from confluent-kafka, then enough bulk records to roll
a 1 MiB segment. After a clean stop, sluice-dump must show those records,
offsets and valid CRCs with exit 0; on corrupted copies it must exit
non-zero and name the file and byte position.

The binary is found next to SLUICED: <build>/dataplane/sluiced ->
<build>/tools/sluice-dump.
"""

import glob
import os
import re
import shutil
import struct
import subprocess

import pytest

import kafka_raw as kr
from conftest import SANITIZER_RE, Broker, _die_with_parent, built_path, unique
from helpers import create_topic, kcat, produce_all, producer

SEGMENT_BYTES = 1024 * 1024
BATCH_RE = re.compile(
    r"^baseOffset: (?P<base>\d+) lastOffset: (?P<last>\d+) count: (?P<count>\d+) "
    r"position: (?P<pos>\d+) size: (?P<size>\d+) magic: 2 .*compression: (?P<codec>\S+) .*"
    r"producerId: (?P<pid>-?\d+) producerEpoch: (?P<epoch>-?\d+) "
    r"baseSequence: (?P<seq>-?\d+) .*crcValid: (?P<crc>true|false)$", re.M)
QUOTED = r'(?:null|"(?:[^"\\]|\\.)*"(?:\.\.\.\(\d+ more bytes\))?)'
RECORD_RE = re.compile(
    r"^\| offset: (?P<offset>\d+) timestamp: (?P<ts>-?\d+) keySize: -?\d+ key: (?P<key>%s) "
    r"valueSize: -?\d+ value: (?P<value>%s) headers: \{(?P<headers>.*)\}$" % (QUOTED, QUOTED),
    re.M)
HEADER_RE = re.compile(r"(%s): (%s)" % (QUOTED, QUOTED))


def dump_binary():
    return built_path("tools", "sluice-dump")


def dump(*args):
    path = dump_binary()
    if not os.path.exists(path):
        pytest.fail("sluice-dump not found at %s (built next to SLUICED)" % path)
    r = subprocess.run([path, *args], capture_output=True, timeout=120,
                       stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
    r.out = r.stdout.decode(errors="replace")
    r.err = r.stderr.decode(errors="replace")
    assert not SANITIZER_RE.search(r.err), "sanitizer report from sluice-dump:\n" + r.err
    return r


def unquote(s):
    """The inverse of sluice-dump's quoting."""
    if s == "null":
        return None
    assert s.startswith('"') and s.endswith('"'), s
    out, i, body = bytearray(), 0, s[1:-1]
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(ord(c))
            i += 1
            continue
        n = body[i + 1]
        if n == "x":
            out.append(int(body[i + 2:i + 4], 16))
            i += 4
            continue
        out.append({"n": 10, "r": 13, "t": 9}.get(n, ord(n)))
        i += 2
    return bytes(out)


def records_of(out):
    """{offset: (key, value, [(hkey, hvalue)], timestamp)} from a --records dump."""
    recs = {}
    for m in RECORD_RE.finditer(out):
        headers = [(unquote(k).decode(), unquote(v)) for k, v in HEADER_RE.findall(m["headers"])]
        recs[int(m["offset"])] = (unquote(m["key"]), unquote(m["value"]), headers, int(m["ts"]))
    return recs


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A stopped broker's partition directory and what was written to it."""
    d = tmp_path_factory.mktemp("dump")
    b = Broker(d / "data", ["--set", "log.segment.bytes=%d" % SEGMENT_BYTES,
                            "--set", "log.index.interval.bytes=4096"],
               log_path=str(d / "broker.stderr.log"))
    b.start()
    try:
        t = unique("dump")
        assert create_topic(b.bootstrap, t, 1) is None
        want = {}  # offset -> (key, value, headers)
        p = producer(b.bootstrap, acks="all", enable_idempotence=True, linger_ms=20)
        msgs = [{"partition": 0, "key": b"key-%d" % i, "value": b"value-%d" % i,
                 "headers": [("trace", b"t-%d" % i), ("bin", b"\x00\x01\xff\"\\")]}
                for i in range(40)]
        dl = produce_all(p, t, msgs)
        assert not dl.errors and len(dl.ok) == 40
        for _, off, k, v in dl.ok:
            i = int(k.split(b"-")[1])
            want[off] = (k, v, [("trace", b"t-%d" % i), ("bin", b"\x00\x01\xff\"\\")])
        kcat("-b", b.bootstrap, "-t", t, "-P", "-p", "0", "-K", ":", "-H", "src=kcat",
             "-X", "broker.address.family=v4",
             input="".join("kk-%d:kv-%d\n" % (i, i) for i in range(5)).encode())
        for codec in ("gzip", "zstd"):
            p = producer(b.bootstrap, acks="all", compression_type=codec, linger_ms=50)
            dl = produce_all(p, t, [{"partition": 0, "key": b"%s-%d" % (codec.encode(), i),
                                     "value": b"%s value %d " % (codec.encode(), i) * 8}
                                    for i in range(20)])
            assert not dl.errors
            for _, off, k, v in dl.ok:
                want[off] = (k, v, [])
        # small batches, so that the segments get many index entries
        p = producer(b.bootstrap, acks="all", linger_ms=5, batch_size=8192)
        dl = produce_all(p, t, [{"partition": 0, "value": b"bulk-%05d-" % i + b"x" * 990}
                                for i in range(1300)])
        assert not dl.errors
        total = max(off for _, off, _, _ in dl.ok) + 1
        b.stop()
    except BaseException:
        print(b.log_tail(60))
        b.teardown()
        raise
    yield {"dir": os.path.join(b.data_dir, "%s-0" % t), "want": want, "total": total}


def frame_batches(data):
    """(position, base offset, size, CRC ok) of each batch: an independent
    framing of the .log, with kafka_raw's CRC-32C."""
    out, pos = [], 0
    while pos + 61 <= len(data):
        base, length = struct.unpack(">qi", data[pos:pos + 12])
        size = 12 + length
        crc = struct.unpack(">I", data[pos + 17:pos + 21])[0]
        out.append((pos, base, size, kr.crc32c(data[pos + 21:pos + size]) == crc))
        pos += size
    assert pos == len(data), "trailing bytes after the last batch"
    return out


def files(d, ext):
    return sorted(glob.glob(os.path.join(d, "*" + ext)))


def test_dump_shows_what_clients_wrote(written):
    d = written["dir"]
    logs = files(d, ".log")
    assert len(logs) >= 2, "expected a rolled segment: %s" % os.listdir(d)
    r = dump("--records", *logs)
    assert r.returncode == 0 and r.err == "", (r.returncode, r.err, r.out[-3000:])

    batches = [m.groupdict() for m in BATCH_RE.finditer(r.out)]
    assert batches and all(b["crc"] == "true" for b in batches)
    # Offsets back to back from 0, over every segment.
    assert [int(b["base"]) for b in batches] == \
        [0] + [int(b["last"]) + 1 for b in batches[:-1]]
    assert int(batches[-1]["last"]) == written["total"] - 1
    # Positions and sizes tile each file, as an independent parser sees it.
    for log in logs:
        data = open(log, "rb").read()
        section = r.out.split("Dumping %s " % log)[1].split("\nDumping ")[0]
        ours = [(int(b["pos"]), int(b["base"]), int(b["size"]), b["crc"] == "true")
                for b in (m.groupdict() for m in BATCH_RE.finditer(section))]
        assert ours == frame_batches(data)
        assert "0 bytes of zero fill, 0 problems" in section

    codecs = {b["codec"] for b in batches}
    assert {"none", "gzip", "zstd"} <= codecs, codecs
    assert "records not shown" not in r.out

    # Every record, the zstd batches' included, is in the dump as written.
    recs = records_of(r.out)
    for off, (k, v, h) in written["want"].items():
        assert off in recs, "record %d missing from the dump" % off
        assert recs[off][:3] == (k, v, h), (off, recs[off])
    kc = {rec[0]: rec[1:3] for rec in recs.values() if rec[0] and rec[0].startswith(b"kk-")}
    assert kc == {b"kk-%d" % i: (b"kv-%d" % i, [("src", b"kcat")]) for i in range(5)}
    bulk = sorted(off for off, rec in recs.items() if rec[1].startswith(b"bulk-"))
    assert len(bulk) == 1300 and all(recs[o][0] is None for o in bulk)

    # The idempotent producer's batches carry its id, and the snapshot has it.
    idem = [b for b in batches if int(b["pid"]) >= 0]
    assert idem and len({b["pid"] for b in idem}) == 1
    assert [int(b["seq"]) for b in idem] == \
        [0] + [int(b["seq"]) + int(b["count"]) for b in idem[:-1]]
    snaps = files(d, ".snapshot")
    assert snaps
    s = dump(snaps[-1])
    assert s.returncode == 0 and s.err == "", (s.err, s.out)
    last = idem[-1]
    assert re.search(r"^producerId: %s producerEpoch: %s batches:.* \[sequence %d\.\.%d offsets "
                     r"%s\.\.%s\]$" % (last["pid"], last["epoch"], int(last["seq"]),
                                       int(last["seq"]) + int(last["count"]) - 1,
                                       last["base"], last["last"]), s.out, re.M), s.out


def test_dump_indexes_verify(written):
    d = written["dir"]
    idx, tidx = files(d, ".index"), files(d, ".timeindex")
    r = dump(*idx, *tidx)
    assert r.returncode == 0 and r.err == "", (r.err, r.out[-3000:])
    # The sealed first segment has entries, all checked against its log.
    first = r.out.split("Dumping %s " % idx[0])[1].split("\nDumping ")[0]
    n = len(re.findall(r"^offset: \d+ position: \d+$", first, re.M))
    assert n >= 10 and "checked %d entries against" % n in first, first
    tfirst = r.out.split("Dumping %s " % tidx[0])[1].split("\nDumping ")[0]
    assert "(sealed segment)" in tfirst and re.search(r"^timestamp: \d+ offset: \d+$", tfirst,
                                                      re.M), tfirst
    # Entries as the file holds them.
    raw = open(idx[0], "rb").read()
    base = int(os.path.basename(idx[0])[:20])
    entries = [struct.unpack(">ii", raw[i:i + 8]) for i in range(0, len(raw), 8)]
    assert re.findall(r"^offset: (\d+) position: (\d+)$", first, re.M) == \
        [(str(base + o), str(p)) for o, p in entries]


@pytest.fixture
def copy(written, tmp_path):
    dst = tmp_path / "part"
    shutil.copytree(written["dir"], dst)
    return str(dst)


def batch_positions(log):
    r = dump(log)
    assert r.returncode == 0, r.err
    return [m.groupdict() for m in BATCH_RE.finditer(r.out)]


def flip(path, pos):
    with open(path, "r+b") as f:
        f.seek(pos)
        b = f.read(1)
        f.seek(pos)
        f.write(bytes([b[0] ^ 0x40]))


def problem(r, path, pos):
    """The stderr line for a problem at pos of path."""
    lines = [l for l in r.err.splitlines() if l.startswith("sluice-dump: %s: position %d: "
                                                            % (path, pos))]
    assert lines, "no problem reported at %s position %d; stderr:\n%s" % (path, pos, r.err)
    return lines[0]


def test_flipped_record_byte_fails_crc(copy):
    log = files(copy, ".log")[0]
    data = open(log, "rb").read()
    at = data.find(b"value-17")
    assert at > 0
    owner = [b for b in batch_positions(log)
             if int(b["pos"]) <= at < int(b["pos"]) + int(b["size"])]
    assert len(owner) == 1
    flip(log, at + 3)
    r = dump("--records", log)
    assert r.returncode == 1
    line = problem(r, log, int(owner[0]["pos"]))
    assert "CRC-32C mismatch" in line, line
    # The walk goes on past the bad batch: every batch is still listed, and
    # only that one fails.
    listed = [m.groupdict() for m in BATCH_RE.finditer(r.out)]
    assert len(listed) == len(frame_batches(data))
    assert [b["pos"] for b in listed if b["crc"] == "false"] == [owner[0]["pos"]]
    assert "records not shown: the batch fails its CRC" in r.out


def test_truncated_mid_batch(copy):
    """Cut the active segment 100 bytes into the batch its last offset index
    entry points at: the .log is truncated there, and the entry points at
    no whole batch any more."""
    log = files(copy, ".log")[-1]
    idx = log[:-4] + ".index"
    raw = open(idx, "rb").read()
    assert len(raw) >= 8, "no index entry in the active segment"
    _, pos = struct.unpack(">ii", raw[-8:])
    batch = [b for b in batch_positions(log) if int(b["pos"]) == pos]
    assert len(batch) == 1 and int(batch[0]["size"]) > 100
    os.truncate(log, pos + 100)
    r = dump(log)
    assert r.returncode == 1
    line = problem(r, log, pos)
    assert "truncated mid-batch" in line and "only 100 bytes are left" in line, line
    ri = dump(idx)
    assert ri.returncode == 1
    assert "points past the last batch" in problem(ri, idx, len(raw) - 8)


def test_zero_fill_is_not_corruption(copy):
    log = files(copy, ".log")[-1]
    size = os.path.getsize(log)
    with open(log, "ab") as f:
        f.write(b"\x00" * 6000)
    r = dump(log)
    assert r.returncode == 0 and r.err == "", r.err
    assert "6000 bytes of zero fill at position %d" % size in r.out, r.out[-500:]
    with open(log, "ab") as f:
        f.write(b"\x00" * 100 + b"junk")
    r = dump(log)
    assert r.returncode == 1
    line = problem(r, log, size)
    assert "not zero fill" in line and "position %d" % (size + 6100) in line, line


def test_garbage_after_last_batch(copy):
    log = files(copy, ".log")[-1]
    size = os.path.getsize(log)
    with open(log, "ab") as f:
        f.write(bytes((i * 131 + 7) % 256 for i in range(1000)))
    r = dump(log)
    assert r.returncode == 1
    assert "batch header does not parse" in problem(r, log, size)


def test_broken_offset_index_entry(copy):
    idx = files(copy, ".index")[0]
    raw = bytearray(open(idx, "rb").read())
    assert len(raw) >= 16
    # entry 1: position one byte into its batch
    rel, p = struct.unpack(">ii", raw[8:16])
    raw[8:16] = struct.pack(">ii", rel, p + 1)
    # entry 0: the batch's first offset instead of its last
    rel0, p0 = struct.unpack(">ii", raw[0:8])
    raw[0:8] = struct.pack(">ii", rel0 - 1, p0)
    open(idx, "wb").write(bytes(raw))
    r = dump(idx)
    assert r.returncode == 1
    assert "an entry holds its batch's last offset" in problem(r, idx, 0)
    assert "does not point at the start of a batch" in problem(r, idx, 8)
    # an entry past the end of the log
    raw[-8:] = struct.pack(">ii", 0x7FFFFFF0, 0x7FFFFFF0)
    open(idx, "wb").write(bytes(raw))
    r = dump(idx)
    assert r.returncode == 1
    assert "points past the last batch" in problem(r, idx, len(raw) - 8)


def test_broken_time_index(copy):
    tidx = files(copy, ".timeindex")[0]
    raw = open(tidx, "rb").read()
    assert len(raw) >= 24
    # the sealed segment's last entry (its maximum) dropped
    open(tidx, "wb").write(raw[:-12])
    r = dump(tidx)
    assert r.returncode == 1
    assert "has no entry" in problem(r, tidx, len(raw) - 12)
    # an entry whose timestamp is not its batch's maximum
    ts, rel = struct.unpack(">qi", raw[0:12])
    open(tidx, "wb").write(struct.pack(">qi", ts - 1, rel) + raw[12:])
    r = dump(tidx)
    assert r.returncode == 1
    assert "not the entry's" in problem(r, tidx, 0)


def test_corrupt_snapshot(copy):
    snap = files(copy, ".snapshot")[-1]
    size = os.path.getsize(snap)
    flip(snap, size // 2)
    r = dump(snap)
    assert r.returncode == 1
    assert "CRC-32C mismatch" in problem(r, snap, size - 4)


def test_unknown_kind_and_unreadable(copy):
    other = os.path.join(copy, "notes.txt")
    open(other, "w").write("x")
    r = dump(other)
    assert r.returncode == 2 and "unknown kind of file" in r.err, r.err
    r = dump(os.path.join(copy, "00000000000000000000.missing.log"))
    assert r.returncode == 2 and "cannot read" in r.err, r.err
    r = dump("--help")
    assert r.returncode == 0 and "Usage: sluice-dump" in r.out
    r = dump()
    assert r.returncode == 2
