"""A tiny raw Kafka protocol client for the integration tests (socket + struct).

Only what the integration tests need: framing, request header v1/v2,
ApiVersions, Metadata, Produce (v3 non-flexible, v9 flexible), Fetch v4,
ListOffsets v1, CreateTopics v4, DeleteTopics v1, DeleteRecords v0-2,
InitProducerId v0, and a
record batch v2 builder/parser with a pure-Python CRC-32C. Produce v3, Fetch
v4 and ListOffsets v1 also come in a *_multi form: one request over several
topics and partitions, answered as the broker ordered it.

Everything here is written from the protocol spec (messages/*.json and
implementation.html), independently of the broker's codec.
"""

import gzip
import socket
import struct
import time
import zlib

# ---------------------------------------------------------------- error codes

NONE = 0
OFFSET_OUT_OF_RANGE = 1
CORRUPT_MESSAGE = 2
UNKNOWN_TOPIC_OR_PARTITION = 3
MESSAGE_TOO_LARGE = 10
INVALID_REQUIRED_ACKS = 21
UNSUPPORTED_VERSION = 35
TOPIC_ALREADY_EXISTS = 36
INVALID_REPLICATION_FACTOR = 38
INVALID_CONFIG = 40
OUT_OF_ORDER_SEQUENCE_NUMBER = 45
DUPLICATE_SEQUENCE_NUMBER = 46
FETCH_SESSION_ID_NOT_FOUND = 70
INVALID_RECORD = 87
UNKNOWN_TOPIC_ID = 100
KAFKA_STORAGE_ERROR = 56

# ---------------------------------------------------------------- API keys

PRODUCE = 0
FETCH = 1
LIST_OFFSETS = 2
METADATA = 3
API_VERSIONS = 18
CREATE_TOPICS = 19
DELETE_TOPICS = 20
DELETE_RECORDS = 21
INIT_PRODUCER_ID = 22
OFFSET_COMMIT = 8
OFFSET_FETCH = 9
FIND_COORDINATOR = 10
JOIN_GROUP = 11
HEARTBEAT = 12
LEAVE_GROUP = 13
SYNC_GROUP = 14
DESCRIBE_GROUPS = 15
LIST_GROUPS = 16
DELETE_GROUPS = 42
OFFSET_DELETE = 47
CREATE_PARTITIONS = 37
CONSUMER_GROUP_HEARTBEAT = 68
CONSUMER_GROUP_DESCRIBE = 69

# What the broker advertises (the brief): api key -> (min, max).
# What ApiVersions lists. Produce is listed from v0 as Kafka 4.0 does (for
# librdkafka's codec detection) though v0-2 requests are refused.
EXPECTED_API_VERSIONS = {
    PRODUCE: (0, 11),
    FETCH: (4, 17),
    LIST_OFFSETS: (1, 10),
    METADATA: (0, 12),
    API_VERSIONS: (0, 4),
    CREATE_TOPICS: (2, 7),
    DELETE_TOPICS: (1, 6),
    CREATE_PARTITIONS: (0, 3),
    DELETE_RECORDS: (0, 2),
    INIT_PRODUCER_ID: (0, 5),
    OFFSET_COMMIT: (0, 9),
    OFFSET_FETCH: (0, 9),
    FIND_COORDINATOR: (0, 6),
    JOIN_GROUP: (0, 9),
    HEARTBEAT: (0, 4),
    LEAVE_GROUP: (0, 5),
    SYNC_GROUP: (0, 5),
    DESCRIBE_GROUPS: (0, 5),
    LIST_GROUPS: (0, 5),
    DELETE_GROUPS: (0, 2),
    OFFSET_DELETE: (0, 0),
    CONSUMER_GROUP_HEARTBEAT: (0, 1),
    CONSUMER_GROUP_DESCRIBE: (0, 0),
}

# ---------------------------------------------------------------- CRC-32C


def _make_crc32c_table():
    poly = 0x82F63B78  # Castagnoli, reflected
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C_TABLE = _make_crc32c_table()


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    t = _CRC32C_TABLE
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


# ---------------------------------------------------------------- primitives


def i8(v):
    return struct.pack(">b", v)


def i16(v):
    return struct.pack(">h", v)


def i32(v):
    return struct.pack(">i", v)


def i64(v):
    return struct.pack(">q", v)


def u32(v):
    return struct.pack(">I", v)


def boolean(v):
    return b"\x01" if v else b"\x00"


def string(s):
    """Non-compact (nullable) string: int16 length, -1 for None."""
    if s is None:
        return i16(-1)
    b = s.encode() if isinstance(s, str) else s
    return i16(len(b)) + b


def bytes_(b):
    """Non-compact (nullable) bytes: int32 length, -1 for None."""
    if b is None:
        return i32(-1)
    return i32(len(b)) + b


def array(items, enc=None):
    """Non-compact array: int32 count. items None -> -1 (null)."""
    if items is None:
        return i32(-1)
    items = list(items)
    return i32(len(items)) + b"".join(enc(x) if enc else x for x in items)


def uvarint(v):
    assert v >= 0
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def varint(v):
    """Zig-zag signed varint (also used for varlong)."""
    return uvarint((v << 1) ^ (v >> 63))


def compact_string(s):
    if s is None:
        return uvarint(0)
    b = s.encode() if isinstance(s, str) else s
    return uvarint(len(b) + 1) + b


def compact_bytes(b):
    if b is None:
        return uvarint(0)
    return uvarint(len(b) + 1) + b


def compact_array(items, enc=None):
    if items is None:
        return uvarint(0)
    items = list(items)
    return uvarint(len(items) + 1) + b"".join(enc(x) if enc else x for x in items)


TAGS = b"\x00"  # an empty tagged-field section


class Truncated(Exception):
    pass


class Reader:
    """Decoder over a response body; raises Truncated when out of bytes."""

    def __init__(self, data, pos=0):
        self.data = data
        self.pos = pos

    def remaining(self):
        return len(self.data) - self.pos

    def take(self, n):
        if n < 0 or self.pos + n > len(self.data):
            raise Truncated("need %d bytes at %d of %d" % (n, self.pos, len(self.data)))
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def _unpack(self, fmt, n):
        return struct.unpack(fmt, self.take(n))[0]

    def i8(self):
        return self._unpack(">b", 1)

    def i16(self):
        return self._unpack(">h", 2)

    def i32(self):
        return self._unpack(">i", 4)

    def u32(self):
        return self._unpack(">I", 4)

    def i64(self):
        return self._unpack(">q", 8)

    def boolean(self):
        return self.i8() != 0

    def string(self):
        n = self.i16()
        return None if n < 0 else self.take(n).decode()

    def bytes_(self):
        n = self.i32()
        return None if n < 0 else self.take(n)

    def array(self, dec):
        n = self.i32()
        if n < 0:
            return None
        return [dec(self) for _ in range(n)]

    def uvarint(self):
        shift = 0
        v = 0
        while True:
            b = self.take(1)[0]
            v |= (b & 0x7F) << shift
            if not b & 0x80:
                return v
            shift += 7
            if shift > 63:
                raise Truncated("varint too long")

    def varint(self):
        v = self.uvarint()
        return (v >> 1) ^ -(v & 1)

    def compact_string(self):
        n = self.uvarint()
        return None if n == 0 else self.take(n - 1).decode()

    def compact_bytes(self):
        n = self.uvarint()
        return None if n == 0 else self.take(n - 1)

    def compact_array(self, dec):
        n = self.uvarint()
        if n == 0:
            return None
        return [dec(self) for _ in range(n - 1)]

    def tags(self):
        """Skip a tagged-field section; returns {tag: raw bytes}."""
        out = {}
        for _ in range(self.uvarint()):
            tag = self.uvarint()
            size = self.uvarint()
            out[tag] = self.take(size)
        return out


# ---------------------------------------------------------------- record batch v2

COMPRESSION_NONE = 0
COMPRESSION_GZIP = 1
CODEC_NAMES = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}


def encode_record(offset_delta, key, value, headers=(), timestamp_delta=0):
    body = (
        i8(0)  # attributes
        + varint(timestamp_delta)
        + varint(offset_delta)
        + (varint(-1) if key is None else varint(len(key)) + key)
        + (varint(-1) if value is None else varint(len(value)) + value)
        + varint(len(headers))
        + b"".join(
            varint(len(hk)) + hk + (varint(-1) if hv is None else varint(len(hv)) + hv)
            for hk, hv in headers
        )
    )
    return varint(len(body)) + body


def record_batch(records, base_offset=0, producer_id=-1, producer_epoch=-1,
                 base_sequence=-1, base_timestamp=None, attributes=0,
                 partition_leader_epoch=-1, corrupt_crc=False, magic=2, gzip_records=False):
    """Build one v2 record batch (uncompressed, or gzip with gzip_records).

    records: list of (key, value) or (key, value, headers) tuples, bytes or None.
    """
    if base_timestamp is None:
        base_timestamp = int(time.time() * 1000)
    recs = b""
    for idx, r in enumerate(records):
        key, value = r[0], r[1]
        headers = r[2] if len(r) > 2 else ()
        recs += encode_record(idx, key, value, headers)
    n = len(records)
    if gzip_records:
        recs = gzip.compress(recs)
        attributes = (attributes & ~0x7) | COMPRESSION_GZIP
    after_crc = (
        i16(attributes)
        + i32(max(n - 1, 0))  # lastOffsetDelta
        + i64(base_timestamp)  # baseTimestamp
        + i64(base_timestamp)  # maxTimestamp
        + i64(producer_id)
        + i16(producer_epoch)
        + i32(base_sequence)
        + i32(n)
        + recs
    )
    crc = crc32c(after_crc)
    if corrupt_crc:
        crc ^= 0xDEADBEEF
    # batchLength counts from partitionLeaderEpoch to the end.
    tail = i32(partition_leader_epoch) + i8(magic) + u32(crc) + after_crc
    return i64(base_offset) + i32(len(tail)) + tail


def legacy_message_set(key, value, magic=1, offset=0):
    """A one-message v0/v1 message set (CRC-32 over magic..value)."""
    body = i8(magic) + i8(0)
    if magic == 1:
        body += i64(int(time.time() * 1000))
    body += bytes_(key) + bytes_(value)
    msg = u32(zlib.crc32(body) & 0xFFFFFFFF) + body
    return i64(offset) + i32(len(msg)) + msg


def parse_record_batches(data, check_crc=True):
    """Parse concatenated v2 batches (uncompressed or gzip).

    Returns a list of dicts (one per batch) with 'base_offset', 'producer_id',
    'producer_epoch', 'base_sequence', 'records' [(offset, ts, key, value, headers)].
    A trailing partial batch (allowed in Fetch responses) is ignored.
    """
    out = []
    r = Reader(data)
    while r.remaining() >= 12:
        start = r.pos
        base_offset = r.i64()
        length = r.i32()
        if r.remaining() < length:
            break  # partial batch at the end
        body = Reader(r.take(length))
        b = {"base_offset": base_offset}
        b["partition_leader_epoch"] = body.i32()
        b["magic"] = body.i8()
        if b["magic"] != 2:
            raise ValueError("magic %d batch at %d" % (b["magic"], start))
        crc = body.u32()
        if check_crc and crc32c(body.data[body.pos:]) != crc:
            raise ValueError("bad CRC in batch at offset %d" % base_offset)
        b["attributes"] = body.i16()
        codec = b["attributes"] & 0x7
        b["last_offset_delta"] = body.i32()
        b["base_timestamp"] = body.i64()
        b["max_timestamp"] = body.i64()
        b["producer_id"] = body.i64()
        b["producer_epoch"] = body.i16()
        b["base_sequence"] = body.i32()
        n = body.i32()
        if codec == COMPRESSION_GZIP:
            body = Reader(gzip.decompress(body.data[body.pos:]))
        elif codec != 0:
            raise ValueError("%s batch: the parser handles none and gzip only"
                             % CODEC_NAMES.get(codec, codec))
        recs = []
        for _ in range(n):
            rlen = body.varint()
            rr = Reader(body.take(rlen))
            rr.i8()
            ts_delta = rr.varint()
            off_delta = rr.varint()
            kl = rr.varint()
            key = None if kl < 0 else rr.take(kl)
            vl = rr.varint()
            value = None if vl < 0 else rr.take(vl)
            headers = []
            for _ in range(rr.varint()):
                hkl = rr.varint()
                hk = rr.take(hkl)
                hvl = rr.varint()
                hv = None if hvl < 0 else rr.take(hvl)
                headers.append((hk, hv))
            recs.append((base_offset + off_delta, b["base_timestamp"] + ts_delta, key, value,
                         headers))
        b["records"] = recs
        out.append(b)
    return out


# ---------------------------------------------------------------- connection


class ConnectionClosed(Exception):
    pass


class Conn:
    """One TCP connection speaking Kafka frames."""

    def __init__(self, host, port, timeout=10.0, client_id="sluice-raw-test"):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.timeout = timeout
        self.client_id = client_id
        self.next_corr = 1

    @classmethod
    def to(cls, bootstrap, **kw):
        host, port = bootstrap.rsplit(":", 1)
        return cls(host, int(port), **kw)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    # -- framing

    def send_raw(self, data):
        self.sock.sendall(data)

    def send_frame(self, payload):
        self.sock.sendall(i32(len(payload)) + payload)

    def _recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionClosed("peer closed after %d of %d bytes" % (len(buf), n))
            buf += chunk
        return bytes(buf)

    def recv_frame(self):
        (size,) = struct.unpack(">i", self._recv_exact(4))
        if size < 0 or size > 1 << 30:
            raise ValueError("bad response size %d" % size)
        return self._recv_exact(size)

    def header(self, api_key, version, corr, header_version):
        h = i16(api_key) + i16(version) + i32(corr)
        if header_version >= 1:
            h += string(self.client_id)
        if header_version >= 2:
            h += TAGS
        return h

    def send_request(self, api_key, version, body, flexible=False, corr=None):
        """Send one request; returns its correlation id."""
        if corr is None:
            corr = self.next_corr
            self.next_corr += 1
        self.send_frame(self.header(api_key, version, corr, 2 if flexible else 1) + body)
        return corr

    def recv_response(self, corr, flexible_header=False):
        """Read one response; checks the correlation id; returns a Reader on the body."""
        frame = self.recv_frame()
        r = Reader(frame)
        got = r.i32()
        if got != corr:
            raise AssertionError("correlation id %d, expected %d" % (got, corr))
        if flexible_header:
            r.tags()
        return r

    def request(self, api_key, version, body, flexible=False):
        corr = self.send_request(api_key, version, body, flexible)
        # ApiVersions responses always use response header v0.
        return self.recv_response(corr, flexible_header=flexible and api_key != API_VERSIONS)

    def is_closed_by_peer(self, timeout=10.0):
        """True if the peer closes (EOF or reset) within timeout, discarding any data."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.sock.settimeout(left)
                try:
                    chunk = self.sock.recv(65536)
                except socket.timeout:
                    return False
                if not chunk:
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        finally:
            self.sock.settimeout(self.timeout)

    # -- ApiVersions

    def api_versions(self, version=0):
        """Returns (error_code, {api_key: (min, max)})."""
        if version >= 3:
            body = compact_string("sluice-tests") + compact_string("1.0") + TAGS
            corr = self.send_request(API_VERSIONS, version, body, flexible=True)
        else:
            corr = self.send_request(API_VERSIONS, version, b"")
        r = self.recv_response(corr)  # header v0 always
        return parse_api_versions_body(r, version)

    # -- Metadata v4

    def metadata(self, topics=None, allow_auto_create=False):
        """topics None = all topics. Returns dict with brokers, cluster_id, controller_id, topics."""
        body = array(topics, string) if topics is not None else i32(-1)
        body += boolean(allow_auto_create)
        r = self.request(METADATA, 4, body)
        out = {"throttle": r.i32()}
        out["brokers"] = r.array(lambda r: (r.i32(), r.string(), r.i32(), r.string()))
        out["cluster_id"] = r.string()
        out["controller_id"] = r.i32()

        def part(r):
            return {"error": r.i16(), "partition": r.i32(), "leader": r.i32(),
                    "replicas": r.array(Reader.i32), "isr": r.array(Reader.i32)}

        def topic(r):
            return {"error": r.i16(), "name": r.string(), "internal": r.boolean(),
                    "partitions": r.array(part)}

        out["topics"] = {t["name"]: t for t in r.array(topic)}
        return out

    # -- CreateTopics v4 / DeleteTopics v1

    def create_topic(self, name, partitions=1, replication_factor=1, configs=None,
                     validate_only=False, timeout_ms=10000):
        """Returns (error_code, error_message)."""
        cfgs = list(configs.items()) if isinstance(configs, dict) else list(configs or ())
        t = (string(name) + i32(partitions) + i16(replication_factor) + i32(0)
             + array(cfgs, lambda kv: string(kv[0]) + string(kv[1])))
        body = array([t]) + i32(timeout_ms) + boolean(validate_only)
        r = self.request(CREATE_TOPICS, 4, body)
        r.i32()
        res = r.array(lambda r: (r.string(), r.i16(), r.string()))
        assert len(res) == 1 and res[0][0] == name, res
        return res[0][1], res[0][2]

    def delete_topic(self, name, timeout_ms=10000):
        body = array([name], string) + i32(timeout_ms)
        r = self.request(DELETE_TOPICS, 1, body)
        r.i32()
        res = r.array(lambda r: (r.string(), r.i16()))
        assert len(res) == 1 and res[0][0] == name, res
        return res[0][1]

    # -- DeleteRecords v0-2 (v2 flexible)

    def delete_records(self, topic, partition, offset, version=0, timeout_ms=10000):
        """Move one partition's log start offset (-1: to the high watermark).
        Returns (error_code, low_watermark)."""
        resp = self.delete_records_multi([(topic, [(partition, offset)])], version, timeout_ms)
        assert len(resp) == 1 and resp[0][0] == topic, resp
        p = resp[0][1][0]
        assert p[0] == partition, resp
        return p[2], p[1]

    def delete_records_multi(self, topics, version=0, timeout_ms=10000):
        """One DeleteRecords request. topics: [(topic, [(partition, offset), ...]), ...].
        Returns [(topic, [(partition, low_watermark, error_code), ...]), ...] in
        the order the broker wrote it."""
        flexible = version >= 2
        arr = compact_array if flexible else array
        st = compact_string if flexible else string
        tags = TAGS if flexible else b""
        tds = [st(t) + arr([i32(p) + i64(off) + tags for p, off in parts]) + tags
               for t, parts in topics]
        body = arr(tds) + i32(timeout_ms) + tags
        r = self.request(DELETE_RECORDS, version, body, flexible=flexible)
        r.i32()  # throttle

        def part(r):
            p = (r.i32(), r.i64(), r.i16())
            if flexible:
                r.tags()
            return p

        def topic_(r):
            if flexible:
                t = (r.compact_string(), r.compact_array(part))
                r.tags()
                return t
            return (r.string(), r.array(part))

        resp = r.compact_array(topic_) if flexible else r.array(topic_)
        if flexible:
            r.tags()
        assert r.remaining() == 0, "%d bytes left after DeleteRecords" % r.remaining()
        return resp

    # -- InitProducerId v0

    def init_producer_id(self, transactional_id=None, timeout_ms=60000):
        """Returns (error_code, producer_id, producer_epoch)."""
        r = self.request(INIT_PRODUCER_ID, 0, string(transactional_id) + i32(timeout_ms))
        r.i32()
        return r.i16(), r.i64(), r.i16()

    # -- Produce

    def produce_body_v3(self, topic, partition, records_bytes, acks=-1, timeout_ms=10000,
                        transactional_id=None):
        return produce_body_v3_multi([(topic, [(partition, records_bytes)])], acks, timeout_ms,
                                     transactional_id)

    def produce_v3(self, topic, partition, records_bytes, acks=-1, timeout_ms=10000):
        """Produce v3 (non-flexible). Returns (error_code, base_offset)."""
        r = self.produce_v3_full(topic, partition, records_bytes, acks, timeout_ms)
        return None if r is None else r[:2]

    def produce_v3_full(self, topic, partition, records_bytes, acks=-1, timeout_ms=10000):
        """Produce v3. Returns (error_code, base_offset, log_append_time_ms)."""
        resp = self.produce_v3_multi([(topic, [(partition, records_bytes)])], acks, timeout_ms)
        if resp is None:
            return None
        assert len(resp) == 1 and resp[0][0] == topic, resp
        assert len(resp[0][1]) == 1 and resp[0][1][0][0] == partition, resp
        return resp[0][1][0][1:]

    def produce_v3_multi(self, topics, acks=-1, timeout_ms=10000):
        """One Produce v3 request for several topics and partitions.

        topics: [(topic, [(partition, records_bytes), ...]), ...], sent in that
        order. Returns the response in the order the broker wrote it:
        [(topic, [(partition, error_code, base_offset, log_append_time_ms), ...]), ...],
        or None for acks=0 (no response)."""
        body = produce_body_v3_multi(topics, acks, timeout_ms)
        if acks == 0:
            self.send_request(PRODUCE, 3, body)
            return None
        r = self.request(PRODUCE, 3, body)
        resp = r.array(lambda r: (r.string(), r.array(
            lambda r: (r.i32(), r.i16(), r.i64(), r.i64()))))
        r.i32()  # throttle
        return resp

    def produce_v9(self, topic, partition, records_bytes, acks=-1, timeout_ms=10000):
        """Produce v9 (flexible). Returns (error_code, base_offset, error_message)."""
        p = self.produce_v9_full(topic, partition, records_bytes, acks, timeout_ms)
        return p["error"], p["base_offset"], p["error_message"]

    def produce_v9_full(self, topic, partition, records_bytes, acks=-1, timeout_ms=10000):
        """Produce v9. Returns the partition's answer as a dict: partition, error,
        base_offset, log_append_time, log_start_offset, record_errors, error_message."""
        pd = i32(partition) + compact_bytes(records_bytes) + TAGS
        td = compact_string(topic) + compact_array([pd]) + TAGS
        body = compact_string(None) + i16(acks) + i32(timeout_ms) + compact_array([td]) + TAGS
        r = self.request(PRODUCE, 9, body, flexible=True)

        def part(r):
            p = {"partition": r.i32(), "error": r.i16(), "base_offset": r.i64(),
                 "log_append_time": r.i64(), "log_start_offset": r.i64()}
            p["record_errors"] = r.compact_array(
                lambda r: (r.i32(), r.compact_string(), r.tags()))
            p["error_message"] = r.compact_string()
            r.tags()
            return p

        def topic_(r):
            t = (r.compact_string(), r.compact_array(part))
            r.tags()
            return t

        resp = r.compact_array(topic_)
        r.i32()
        r.tags()
        assert len(resp) == 1 and resp[0][0] == topic, resp
        p = resp[0][1][0]
        assert p["partition"] == partition, resp
        return p

    # -- Fetch v4

    def fetch(self, topic, partition, offset, max_wait_ms=0, min_bytes=0,
              max_bytes=50 * 1024 * 1024, partition_max_bytes=10 * 1024 * 1024):
        """Fetch v4. Returns (error_code, high_watermark, records_bytes)."""
        resp = self.fetch_multi([(topic, [(partition, offset)])], max_wait_ms, min_bytes,
                                max_bytes, partition_max_bytes)
        assert len(resp) == 1 and resp[0][0] == topic, resp
        p = resp[0][1][0]
        assert p["partition"] == partition, resp
        return p["error"], p["hw"], p["records"] or b""

    def fetch_multi(self, topics, max_wait_ms=0, min_bytes=0, max_bytes=50 * 1024 * 1024,
                    partition_max_bytes=10 * 1024 * 1024):
        """One Fetch v4 request. topics: [(topic, [(partition, offset), ...]), ...].
        Returns parse_fetch_v4's list, in the order the broker wrote it."""
        corr = self.send_request(FETCH, 4, fetch_body_v4(topics, max_wait_ms, min_bytes,
                                                         max_bytes, partition_max_bytes))
        return parse_fetch_v4(self.recv_response(corr))

    def fetch_all(self, topic, partition, start=0, deadline_s=20.0):
        """Read every record from start to the high watermark.

        Returns (hw, [(offset, ts, key, value, headers)])."""
        deadline = time.monotonic() + deadline_s
        records = []
        offset = start
        while True:
            err, hw, data = self.fetch(topic, partition, offset)
            if err != 0:
                raise AssertionError("fetch %s-%d@%d: error %d" % (topic, partition, offset, err))
            for b in parse_record_batches(data):
                for rec in b["records"]:
                    if rec[0] >= offset:
                        records.append(rec)
            if records:
                offset = records[-1][0] + 1
            if offset >= hw:
                return hw, records
            if time.monotonic() > deadline:
                raise AssertionError("fetch_all stuck at %d < hw %d" % (offset, hw))

    # -- Fetch v11 (sessions, non-flexible) and v13 (flexible, topic ids)

    def fetch_v11(self, topic, partition, offset, session_id=0, session_epoch=-1,
                  max_wait_ms=0, min_bytes=0):
        """Returns dict: error, session_id, partition (error, hw, records)."""
        pd = i32(partition) + i32(-1) + i64(offset) + i64(-1) + i32(10 << 20)
        body = (i32(-1) + i32(max_wait_ms) + i32(min_bytes) + i32(50 << 20) + i8(0)
                + i32(session_id) + i32(session_epoch)
                + array([string(topic) + array([pd])]) + array([]) + string(""))
        r = self.request(FETCH, 11, body)
        out = {"throttle": r.i32(), "error": r.i16(), "session_id": r.i32()}

        def part(r):
            p = {"partition": r.i32(), "error": r.i16(), "hw": r.i64(), "lso": r.i64(),
                 "log_start": r.i64()}
            p["aborted"] = r.array(lambda r: (r.i64(), r.i64()))
            p["preferred_read_replica"] = r.i32()
            p["records"] = r.bytes_() or b""
            return p

        resp = r.array(lambda r: (r.string(), r.array(part)))
        out["topics"] = resp
        return out

    def fetch_v13(self, topic_id, partition, offset, max_wait_ms=0, min_bytes=0):
        """Fetch by topic id (16 bytes). Returns dict: error, session_id, topics
        [(topic_id, [partition dicts])]."""
        pd = (i32(partition) + i32(-1) + i64(offset) + i32(-1) + i64(-1) + i32(10 << 20)
              + TAGS)
        body = (i32(-1) + i32(max_wait_ms) + i32(min_bytes) + i32(50 << 20) + i8(0)
                + i32(0) + i32(-1)
                + compact_array([topic_id + compact_array([pd]) + TAGS])
                + compact_array([]) + compact_string("") + TAGS)
        r = self.request(FETCH, 13, body, flexible=True)
        out = {"throttle": r.i32(), "error": r.i16(), "session_id": r.i32()}

        def part(r):
            p = {"partition": r.i32(), "error": r.i16(), "hw": r.i64(), "lso": r.i64(),
                 "log_start": r.i64()}
            p["aborted"] = r.compact_array(lambda r: (r.i64(), r.i64(), r.tags()))
            p["preferred_read_replica"] = r.i32()
            p["records"] = r.compact_bytes() or b""
            r.tags()
            return p

        def topic_(r):
            t = (r.take(16), r.compact_array(part))
            r.tags()
            return t

        out["topics"] = r.compact_array(topic_)
        r.tags()
        return out

    # -- Metadata v12 (flexible, topic ids)

    def metadata_v12(self, topics=None, allow_auto_create=False):
        """topics: list of names, or None for all. Returns dict with brokers,
        cluster_id, controller_id, topics {name: {error, topic_id, partitions}}."""
        if topics is None:
            tl = uvarint(0)
        else:
            tl = compact_array([b"\x00" * 16 + compact_string(t) + TAGS for t in topics])
        body = tl + boolean(allow_auto_create) + boolean(False) + TAGS
        r = self.request(METADATA, 12, body, flexible=True)
        out = {"throttle": r.i32()}

        def broker(r):
            b = (r.i32(), r.compact_string(), r.i32(), r.compact_string())
            r.tags()
            return b

        out["brokers"] = r.compact_array(broker)
        out["cluster_id"] = r.compact_string()
        out["controller_id"] = r.i32()

        def part(r):
            p = {"error": r.i16(), "partition": r.i32(), "leader": r.i32(),
                 "leader_epoch": r.i32(),
                 "replicas": r.compact_array(Reader.i32), "isr": r.compact_array(Reader.i32),
                 "offline": r.compact_array(Reader.i32)}
            r.tags()
            return p

        def topic(r):
            t = {"error": r.i16(), "name": r.compact_string(), "topic_id": r.take(16),
                 "internal": r.boolean(), "partitions": r.compact_array(part),
                 "authorized_operations": r.i32()}
            r.tags()
            return t

        out["topics"] = {t["name"]: t for t in r.compact_array(topic)}
        r.tags()
        assert r.remaining() == 0, "%d bytes left after Metadata v12" % r.remaining()
        return out

    # -- ListOffsets v1

    def list_offset(self, topic, partition, timestamp):
        """timestamp -1 latest, -2 earliest. Returns (error_code, timestamp, offset)."""
        resp = self.list_offsets_multi([(topic, [(partition, timestamp)])])
        p = resp[0][1][0]
        assert resp[0][0] == topic and p[0] == partition, resp
        return p[1], p[2], p[3]

    def list_offsets_multi(self, topics):
        """One ListOffsets v1 request. topics: [(topic, [(partition, timestamp), ...]), ...].
        Returns [(topic, [(partition, error_code, timestamp, offset), ...]), ...] in
        the order the broker wrote it."""
        body = i32(-1) + array([string(t) + array([i32(p) + i64(ts) for p, ts in parts])
                                for t, parts in topics])
        r = self.request(LIST_OFFSETS, 1, body)
        return r.array(lambda r: (r.string(), r.array(
            lambda r: (r.i32(), r.i16(), r.i64(), r.i64()))))


def produce_body_v3_multi(topics, acks=-1, timeout_ms=10000, transactional_id=None):
    """Produce v3 body. topics: [(topic, [(partition, records_bytes), ...]), ...]."""
    tds = [string(t) + array([i32(p) + bytes_(rec) for p, rec in parts]) for t, parts in topics]
    return string(transactional_id) + i16(acks) + i32(timeout_ms) + array(tds)


def fetch_body_v4(topics, max_wait_ms=0, min_bytes=0, max_bytes=50 * 1024 * 1024,
                  partition_max_bytes=10 * 1024 * 1024):
    """Fetch v4 body. topics: [(topic, [(partition, offset), ...]), ...]."""
    tds = [string(t) + array([i32(p) + i64(off) + i32(partition_max_bytes)
                              for p, off in parts]) for t, parts in topics]
    return (i32(-1) + i32(max_wait_ms) + i32(min_bytes) + i32(max_bytes) + i8(0)
            + array(tds))


def parse_fetch_v4(r):
    """Fetch v4 response body: [(topic, [{partition, error, hw, lso, aborted,
    records}, ...]), ...]."""
    r.i32()  # throttle

    def part(r):
        p = {"partition": r.i32(), "error": r.i16(), "hw": r.i64(), "lso": r.i64()}
        p["aborted"] = r.array(lambda r: (r.i64(), r.i64()))
        p["records"] = r.bytes_() or b""
        return p

    return r.array(lambda r: (r.string(), r.array(part)))


def batch_codecs(data):
    """Compression codec names of the (complete) v2 batches in a fetch response."""
    out = []
    r = Reader(data)
    while r.remaining() >= 12:
        r.i64()
        length = r.i32()
        if r.remaining() < length:
            break
        body = r.take(length)
        out.append(CODEC_NAMES.get(struct.unpack(">h", body[9:11])[0] & 0x7, "?"))
    return out


def parse_api_versions_body(r, version):
    """Body of an ApiVersions response of the given version (or v0 on error)."""
    err = r.i16()
    if version >= 3:
        keys = r.compact_array(lambda r: (r.i16(), r.i16(), r.i16(), r.tags()))
    else:
        keys = r.array(lambda r: (r.i16(), r.i16(), r.i16()))
    return err, {k[0]: (k[1], k[2]) for k in keys or []}


def wait_port(host, port, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False
