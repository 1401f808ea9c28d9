"""Raw-protocol client calls for the consumer group APIs, on kafka_raw.Conn.

Written from the message schemas (messages/*.json in the Kafka protocol
reference), independently of the broker's codec: FindCoordinator v0-4,
JoinGroup v0-9, SyncGroup v0-5, Heartbeat v0-4, LeaveGroup v0-5,
OffsetCommit v2-9, OffsetFetch v1-8, DescribeGroups v0-5, ListGroups v0-5,
DeleteGroups v0-2, OffsetDelete v0; and the consumer protocol's
subscription and assignment (ConsumerProtocolSubscription v0,
ConsumerProtocolAssignment v0). Each call takes a version; flexible
versions use compact strings, compact arrays and tagged fields.

Also java_string_hash / partition_for: the group -> __consumer_offsets
partition mapping, to pick group ids that land on a given shard.
"""

import kafka_raw as kr
from kafka_raw import Reader, i8, i16, i32, i64

# Error codes of the group APIs.
COORDINATOR_LOAD_IN_PROGRESS = 14
COORDINATOR_NOT_AVAILABLE = 15
NOT_COORDINATOR = 16
ILLEGAL_GENERATION = 22
INCONSISTENT_GROUP_PROTOCOL = 23
INVALID_GROUP_ID = 24
UNKNOWN_MEMBER_ID = 25
INVALID_SESSION_TIMEOUT = 26
REBALANCE_IN_PROGRESS = 27
INVALID_REQUEST = 42
NON_EMPTY_GROUP = 68
GROUP_ID_NOT_FOUND = 69
MEMBER_ID_REQUIRED = 79
GROUP_MAX_SIZE_REACHED = 81
FENCED_INSTANCE_ID = 82
GROUP_SUBSCRIBED_TO_TOPIC = 86
INVALID_TOPIC_EXCEPTION = 17


class Enc:
    """Field encoders for one version: classic or flexible."""

    def __init__(self, flexible):
        self.flex = flexible

    def s(self, v):
        return kr.compact_string(v) if self.flex else kr.string(v)

    def b(self, v):
        return kr.compact_bytes(v) if self.flex else kr.bytes_(v)

    def arr(self, items):
        return kr.compact_array(items) if self.flex else kr.array(items)

    def tags(self):
        return kr.TAGS if self.flex else b""


class Dec:
    def __init__(self, r, flexible):
        self.r = r
        self.flex = flexible

    def s(self):
        return self.r.compact_string() if self.flex else self.r.string()

    def b(self):
        return self.r.compact_bytes() if self.flex else self.r.bytes_()

    def arr(self, f):
        return self.r.compact_array(lambda r: f()) if self.flex else self.r.array(lambda r: f())

    def tags(self):
        if self.flex:
            self.r.tags()


# ---------------------------------------------------------------- consumer protocol


def subscription(topics, user_data=None):
    """ConsumerProtocolSubscription v0."""
    return i16(0) + kr.array([kr.string(t) for t in topics]) + kr.bytes_(user_data)


def assignment(parts):
    """ConsumerProtocolAssignment v0; parts: {topic: [partitions]}."""
    return i16(0) + kr.array([kr.string(t) + kr.array([i32(p) for p in ps])
                              for t, ps in parts.items()]) + kr.bytes_(None)


def parse_assignment(data):
    if not data:
        return {}
    r = Reader(data)
    r.i16()
    return dict(r.array(lambda r: (r.string(), r.array(Reader.i32))))


# ---------------------------------------------------------------- hashing


def java_string_hash(s):
    """Java's String.hashCode over UTF-16 code units, as a signed int32."""
    h = 0
    data = s.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + (data[i] << 8 | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def partition_for(group, n_partitions):
    """Kafka's Utils.abs(groupId.hashCode) % n (Integer.MIN_VALUE -> 0)."""
    h = java_string_hash(group)
    a = 0 if h == -(1 << 31) else abs(h)
    return a % n_partitions


# ---------------------------------------------------------------- the calls


def find_coordinator(c, key, version=2, key_type=0):
    """Returns (error, node_id, host, port) (v0-3) or a list of them with key (v4+)."""
    flex = version >= 3
    e = Enc(flex)
    if version >= 4:
        body = i8(key_type) + e.arr([e.s(k) for k in key]) + e.tags()
    else:
        body = e.s(key) + (i8(key_type) if version >= 1 else b"") + e.tags()
    d = Dec(c.request(kr_api("FIND_COORDINATOR"), version, body, flexible=flex), flex)
    r = d.r
    if version >= 1:
        r.i32()
    if version >= 4:
        def coord():
            out = (d.s(), r.i32(), d.s(), r.i32(), r.i16(), d.s())
            d.tags()
            return {"key": out[0], "node_id": out[1], "host": out[2], "port": out[3],
                    "error": out[4], "message": out[5]}
        res = d.arr(coord)
        d.tags()
        return res
    err = r.i16()
    if version >= 1:
        d.s()
    out = (err, r.i32(), d.s(), r.i32())
    d.tags()
    return out


def kr_api(name):
    return getattr(kr, name)


def join_group(c, group, member_id="", protocols=(("range", b""),), session_ms=10000,
               rebalance_ms=30000, instance_id=None, protocol_type="consumer", version=5,
               send_only=False):
    """JoinGroup. Returns dict error, generation, protocol, leader, member_id, members
    [(member_id, instance_id, metadata)], skip_assignment; or the correlation id
    with send_only (read it with join_group_recv)."""
    flex = version >= 6
    e = Enc(flex)
    body = e.s(group) + i32(session_ms)
    if version >= 1:
        body += i32(rebalance_ms)
    body += e.s(member_id)
    if version >= 5:
        body += e.s(instance_id)
    body += e.s(protocol_type)
    body += e.arr([e.s(n) + e.b(m) + e.tags() for n, m in protocols])
    if version >= 8:
        body += e.s(None)  # reason
    body += e.tags()
    corr = c.send_request(kr.JOIN_GROUP, version, body, flexible=flex)
    if send_only:
        return corr
    return join_group_recv(c, corr, version)


def join_group_recv(c, corr, version):
    flex = version >= 6
    r = c.recv_response(corr, flexible_header=flex)
    d = Dec(r, flex)
    out = {}
    if version >= 2:
        r.i32()
    out["error"] = r.i16()
    out["generation"] = r.i32()
    if version >= 7:
        out["protocol_type"] = d.s()
    out["protocol"] = d.s()
    out["leader"] = d.s()
    if version >= 9:
        out["skip_assignment"] = r.boolean()
    out["member_id"] = d.s()

    def member():
        m = [d.s()]
        m.append(d.s() if version >= 5 else None)
        m.append(d.b())
        d.tags()
        return tuple(m)

    out["members"] = d.arr(member)
    d.tags()
    assert r.remaining() == 0, "%d bytes left after JoinGroup" % r.remaining()
    return out


def sync_group(c, group, generation, member_id, assignments=(), instance_id=None, version=3,
               send_only=False, protocol_type=None, protocol_name=None):
    """SyncGroup; assignments [(member_id, bytes)]. Returns (error, assignment bytes)."""
    flex = version >= 4
    e = Enc(flex)
    body = e.s(group) + i32(generation) + e.s(member_id)
    if version >= 3:
        body += e.s(instance_id)
    if version >= 5:
        body += e.s(protocol_type) + e.s(protocol_name)
    body += e.arr([e.s(m) + e.b(a) + e.tags() for m, a in assignments]) + e.tags()
    corr = c.send_request(kr.SYNC_GROUP, version, body, flexible=flex)
    if send_only:
        return corr
    return sync_group_recv(c, corr, version)


def sync_group_recv(c, corr, version):
    flex = version >= 4
    r = c.recv_response(corr, flexible_header=flex)
    d = Dec(r, flex)
    if version >= 1:
        r.i32()
    err = r.i16()
    if version >= 5:
        d.s()
        d.s()
    a = d.b()
    d.tags()
    return err, a


def heartbeat(c, group, generation, member_id, instance_id=None, version=3, send_only=False):
    flex = version >= 4
    e = Enc(flex)
    body = e.s(group) + i32(generation) + e.s(member_id)
    if version >= 3:
        body += e.s(instance_id)
    body += e.tags()
    corr = c.send_request(kr.HEARTBEAT, version, body, flexible=flex)
    if send_only:
        return corr
    return heartbeat_recv(c, corr, version)


def heartbeat_recv(c, corr, version):
    flex = version >= 4
    r = c.recv_response(corr, flexible_header=flex)
    if version >= 1:
        r.i32()
    return r.i16()


def leave_group(c, group, members, version=3):
    """members [(member_id, instance_id)] (v0-2: one, instance ignored). Returns
    (top error, [(member_id, instance_id, error)])."""
    flex = version >= 4
    e = Enc(flex)
    body = e.s(group)
    if version < 3:
        body += e.s(members[0][0])
    else:
        body += e.arr([e.s(m) + e.s(i) + (e.s(None) if version >= 5 else b"") + e.tags()
                       for m, i in members])
    body += e.tags()
    r = c.request(kr.LEAVE_GROUP, version, body, flexible=flex)
    d = Dec(r, flex)
    if version >= 1:
        r.i32()
    err = r.i16()
    out = []
    if version >= 3:
        def member():
            m = (d.s(), d.s(), r.i16())
            d.tags()
            return m
        out = d.arr(member)
    d.tags()
    return err, out


def offset_commit(c, group, offsets, generation=-1, member_id="", instance_id=None,
                  version=7, metadata="", retention_ms=-1):
    """offsets {topic: [(partition, offset)]}. Returns {(topic, partition): error}."""
    flex = version >= 8
    e = Enc(flex)
    body = e.s(group) + i32(generation) + e.s(member_id)
    if version >= 7:
        body += e.s(instance_id)
    if 2 <= version <= 4:
        body += i64(retention_ms)
    topics = []
    for t, parts in offsets.items():
        ps = []
        for p, off in parts:
            x = i32(p) + i64(off)
            if version >= 6:
                x += i32(-1)
            x += e.s(metadata) + e.tags()
            ps.append(x)
        topics.append(e.s(t) + e.arr(ps) + e.tags())
    body += e.arr(topics) + e.tags()
    r = c.request(kr.OFFSET_COMMIT, version, body, flexible=flex)
    d = Dec(r, flex)
    if version >= 3:
        r.i32()
    out = {}

    def part(t):
        p, err = r.i32(), r.i16()
        d.tags()
        out[(t, p)] = err

    def topic():
        t = d.s()
        d.arr(lambda: part(t))
        d.tags()

    d.arr(topic)
    d.tags()
    return out


def offset_fetch(c, group, topics=None, version=7):
    """topics {topic: [partitions]} or None (all). Returns (error, {(t, p): (offset,
    metadata, error)})."""
    flex = version >= 6
    e = Enc(flex)
    if topics is None:
        tl = e.arr(None)
    else:
        tl = e.arr([e.s(t) + e.arr([i32(p) for p in ps]) + e.tags()
                    for t, ps in topics.items()])
    body = e.s(group) + tl
    if version >= 7:
        body += kr.boolean(False)
    body += e.tags()
    r = c.request(kr.OFFSET_FETCH, version, body, flexible=flex)
    d = Dec(r, flex)
    if version >= 3:
        r.i32()
    out = {}

    def part(t):
        p, off = r.i32(), r.i64()
        if version >= 5:
            r.i32()
        meta, err = d.s(), r.i16()
        d.tags()
        out[(t, p)] = (off, meta, err)

    def topic():
        t = d.s()
        d.arr(lambda: part(t))
        d.tags()

    d.arr(topic)
    err = r.i16() if version >= 2 else 0
    d.tags()
    return err, out


def offset_fetch_groups(c, groups, version=8):
    """v8+: groups {group: {topic: [partitions]} or None}. Returns {group: (error,
    {(t, p): (offset, metadata, error)})}."""
    e = Enc(True)
    gl = []
    for g, topics in groups.items():
        x = e.s(g)
        if version >= 9:
            x += e.s(None) + i32(-1)
        if topics is None:
            x += e.arr(None)
        else:
            x += e.arr([e.s(t) + e.arr([i32(p) for p in ps]) + e.tags()
                        for t, ps in topics.items()])
        gl.append(x + e.tags())
    body = e.arr(gl) + kr.boolean(False) + e.tags()
    r = c.request(kr.OFFSET_FETCH, version, body, flexible=True)
    d = Dec(r, True)
    r.i32()
    res = {}

    def group():
        g = d.s()
        out = {}

        def part(t):
            p, off, _epoch, meta, err = r.i32(), r.i64(), r.i32(), d.s(), r.i16()
            d.tags()
            out[(t, p)] = (off, meta, err)

        def topic():
            t = d.s()
            d.arr(lambda: part(t))
            d.tags()

        d.arr(topic)
        err = r.i16()
        d.tags()
        res[g] = (err, out)

    d.arr(group)
    d.tags()
    return res


def describe_groups(c, groups, version=5, include_ops=False):
    """Returns [dict error, group, state, protocol_type, protocol, members
    [dict member_id, instance_id, client_id, client_host, metadata, assignment],
    authorized_operations]."""
    flex = version >= 5
    e = Enc(flex)
    body = e.arr([e.s(g) for g in groups])
    if version >= 3:
        body += kr.boolean(include_ops)
    body += e.tags()
    r = c.request(kr.DESCRIBE_GROUPS, version, body, flexible=flex)
    d = Dec(r, flex)
    if version >= 1:
        r.i32()

    def member():
        m = {"member_id": d.s()}
        m["instance_id"] = d.s() if version >= 4 else None
        m["client_id"], m["client_host"] = d.s(), d.s()
        m["metadata"], m["assignment"] = d.b(), d.b()
        d.tags()
        return m

    def group():
        g = {"error": r.i16(), "group": d.s(), "state": d.s(), "protocol_type": d.s(),
             "protocol": d.s(), "members": d.arr(member)}
        g["authorized_operations"] = r.i32() if version >= 3 else None
        d.tags()
        return g

    out = d.arr(group)
    d.tags()
    return out


def list_groups(c, states=None, types=None, version=4):
    """Returns (error, [(group, protocol_type, state, type)])."""
    flex = version >= 3
    e = Enc(flex)
    body = b""
    if version >= 4:
        body += e.arr([e.s(s) for s in (states or [])])
    if version >= 5:
        body += e.arr([e.s(t) for t in (types or [])])
    body += e.tags()
    r = c.request(kr.LIST_GROUPS, version, body, flexible=flex)
    d = Dec(r, flex)
    if version >= 1:
        r.i32()
    err = r.i16()

    def group():
        g = [d.s(), d.s()]
        g.append(d.s() if version >= 4 else None)
        g.append(d.s() if version >= 5 else None)
        d.tags()
        return tuple(g)

    out = d.arr(group)
    d.tags()
    return err, out


def delete_groups(c, groups, version=2):
    """Returns {group: error}."""
    flex = version >= 2
    e = Enc(flex)
    body = e.arr([e.s(g) for g in groups]) + e.tags()
    r = c.request(kr.DELETE_GROUPS, version, body, flexible=flex)
    d = Dec(r, flex)
    r.i32()

    def result():
        g, err = d.s(), r.i16()
        d.tags()
        return g, err

    out = dict(d.arr(result))
    d.tags()
    return out


def offset_delete(c, group, topics):
    """OffsetDelete v0; topics {topic: [partitions]}. Returns (error, {(t, p): error})."""
    body = kr.string(group) + kr.array([kr.string(t) + kr.array([i32(p) for p in ps])
                                        for t, ps in topics.items()])
    r = c.request(kr.OFFSET_DELETE, 0, body)
    err = r.i16()
    r.i32()
    out = {}
    for t, parts in r.array(lambda r: (r.string(), r.array(lambda r: (r.i32(), r.i16())))):
        for p, pe in parts:
            out[(t, p)] = pe
    return err, out


class Member:
    """One dynamic or static member driven over the raw protocol."""

    def __init__(self, conn, group, topics=(), instance_id=None, session_ms=30000,
                 rebalance_ms=30000, version=5):
        self.c = conn
        self.group = group
        self.topics = list(topics)
        self.instance_id = instance_id
        self.session_ms = session_ms
        self.rebalance_ms = rebalance_ms
        self.version = version
        self.member_id = ""
        self.generation = -1
        self.leader = None
        self.members = []

    def protocols(self):
        return (("range", subscription(self.topics)),)

    def join(self):
        """Join (retrying MEMBER_ID_REQUIRED once). Returns the response dict."""
        for _ in range(2):
            j = join_group(self.c, self.group, self.member_id, self.protocols(),
                           self.session_ms, self.rebalance_ms, self.instance_id,
                           version=self.version)
            if j["error"] == MEMBER_ID_REQUIRED:
                self.member_id = j["member_id"]
                continue
            break
        if j["error"] == 0:
            self.member_id = j["member_id"]
            self.generation = j["generation"]
            self.leader = j["leader"]
            self.members = j["members"]
        return j

    def sync(self, assignments=()):
        return sync_group(self.c, self.group, self.generation, self.member_id, assignments,
                          self.instance_id)

    def heartbeat(self):
        return heartbeat(self.c, self.group, self.generation, self.member_id, self.instance_id)

    def commit(self, offsets, generation=None, member_id=None):
        return offset_commit(self.c, self.group, offsets,
                             self.generation if generation is None else generation,
                             self.member_id if member_id is None else member_id,
                             self.instance_id)
