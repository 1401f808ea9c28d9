#!/usr/bin/python3
"""Markdown tables from `perf script -F comm,pid,ip,sym,dso` on stdin.

Used by tests/bench/profile.sh: the samples of a system-wide cpu-clock
profile, split by who ran them (the server's shard threads, its io_uring
workers, the client, kernel threads, idle), by kind of work (a coarse
bucket per symbol), and the hottest symbols, as percentages of all
samples.
"""

import argparse
import collections
import re
import sys

LINE = re.compile(r"^\s*(.+?)\s+(\d+)(?:/\d+)?\s+([0-9a-f]+)\s+(.*?)\s+\((.*)\)\s*$")

# Coarse kinds of work, first match wins; matched against the symbol.
BUCKETS = [
    ("CRC-32C", re.compile(r"crc32c|crc32_", re.I)),
    ("user-space memory copy", re.compile(r"^(__)?mem(move|cpy)|^plog_copy|copy_nt|stream_copy")),
    ("kernel copy to/from user (socket data)",
     re.compile(r"copy_to_iter|copy_from_iter|copy_user|rep_movs|skb_copy_datagram|copy_page_to_iter|memcpy_orig|__memcpy$")),
    ("TCP/IP and sockets",
     re.compile(r"^(tcp|ip|ipv4|inet|sock|sk_|skb|__skb|kfree_skb|__dev_queue|dev_|loopback|net_|__netif|netif|process_backlog|__tcp|__inet|__sock|__sys_(send|recv)|sys_(send|recv)|release_sock|lock_sock|__release_sock)")),
    ("io_uring", re.compile(r"^(__)?io_|^io_uring|^__io_uring|^tctx_")),
    ("block, ext4, page cache",
     re.compile(r"^(ext4|__ext4|jbd2|__jbd2|iomap|__iomap|blk|__blk|bio|__bio|submit_bio|virtblk|virtqueue|vring|dd_|dio|filemap|__filemap|folio|__folio|file_|generic_perform|mpage|fsnotify)")),
    ("scheduler, wake-ups, idle entry",
     re.compile(r"schedule|switch|wake|^(enqueue|dequeue|pick_next|update_curr|update_load|set_next|put_prev|select_task|ttwu|check_preempt|resched|__resched|cpuidle|do_idle|native_safe_halt|default_idle|pv_|kvm_|hrtimer|tick_|__hrtimer|sched_|psi_|account_|irq_|__irq|__sysvec|sysvec|asm_sysvec|handle_irq|__do_softirq|do_softirq|__softirqentry|futex|__futex|rcu_|__rcu|raw_spin|_raw_spin|queued_spin|native_queued)")),
    ("memory management",
     re.compile(r"^(alloc_pages|__alloc_pages|get_page_from|kmem_cache|__kmem_cache|__kmalloc|kmalloc|kfree|__kfree|page_|__page|free_|__free|handle_mm_fault|__handle_mm|do_anonymous|exc_page_fault|do_user_addr_fault|clear_page|mmap|munmap|vma_|lru_|mem_cgroup|__mem_cgroup|refill_stock|memcg|obj_cgroup|__mod_|mod_|zap_|unmap_|rmqueue|__rmqueue|slab_|___slab)")),
    ("system call entry and exit", re.compile(r"syscall|entry_SYSCALL|^(__x64_sys|x64_sys|__se_sys|__do_sys|fdget|__fdget|fput|__fput|ksys_)")),
]


def bucket(sym):
    for name, rx in BUCKETS:
        if rx.search(sym):
            return name
    return "other"


def who(comm, pid, server, client):
    if pid == 0:
        return "idle"
    if pid == server:
        if comm.startswith("shard-"):
            return "sluiced shard threads"
        if comm.startswith("iou-"):
            return "sluiced io_uring workers"
        return "sluiced, other threads"
    if pid == client:
        if comm.startswith("rdk:"):
            return "client: librdkafka threads"
        if comm.startswith("iou-"):
            return "client: io_uring workers"
        return "client: application thread"
    if comm.startswith(("kworker", "ksoftirqd", "jbd2", "rcu", "migration", "kswapd")):
        return "kernel threads"
    return "other processes"


def pct(n, total):
    return "%.1f%%" % (100.0 * n / total) if total else "-"


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--server-pid", type=int, required=True)
    ap.add_argument("--client-pid", type=int, required=True)
    ap.add_argument("--top", type=int, default=25)
    a = ap.parse_args()

    total = 0
    by_who = collections.Counter()
    by_who_kernel = collections.Counter()
    by_bucket = collections.Counter()  # (bucket, side) -> n, side: server/client/other
    syms = collections.Counter()  # (sym, dso, side) -> n
    for line in sys.stdin:
        m = LINE.match(line)
        if not m:
            continue
        comm, pid, ip, sym, dso = m.group(1), int(m.group(2)), m.group(3), m.group(4), m.group(5)
        total += 1
        w = who(comm, pid, a.server_pid, a.client_pid)
        kernel = dso == "[kernel.kallsyms]" or ip.startswith("ffff")
        by_who[w] += 1
        if kernel:
            by_who_kernel[w] += 1
        if w == "idle":
            continue
        if sym == "[unknown]":
            sym = "[unknown] in " + dso.rsplit("/", 1)[-1]
        side = "sluiced" if w.startswith("sluiced") else "client" if w.startswith("client") else "other"
        by_bucket[(bucket(sym), side)] += 1
        short = "kernel" if kernel else dso.rsplit("/", 1)[-1]
        syms[(sym, short, side)] += 1

    if total == 0:
        print("(no samples)")
        return 1
    print("Samples: %d over both cores." % total)
    print()
    print("| who | share of both cores | of it in the kernel |")
    print("| --- | --- | --- |")
    for w, n in by_who.most_common():
        print("| %s | %s | %s |" % (w, pct(n, total), pct(by_who_kernel[w], n)))
    print()
    print("| kind of work (by symbol) | sluiced | client | others | all |")
    print("| --- | --- | --- | --- | --- |")
    names = [b for b, _ in BUCKETS] + ["other"]
    rows = []
    for b in names:
        s, c, o = (by_bucket[(b, k)] for k in ("sluiced", "client", "other"))
        rows.append((s + c + o, b, s, c, o))
    for n, b, s, c, o in sorted(rows, reverse=True):
        if n:
            print("| %s | %s | %s | %s | %s |" % (b, pct(s, total), pct(c, total), pct(o, total), pct(n, total)))
    print()
    print("Hottest symbols, all processes (idle left out):")
    print()
    print("| symbol | in | process | share of both cores |")
    print("| --- | --- | --- | --- |")
    for (sym, dso, side), n in syms.most_common(a.top):
        print("| `%s` | %s | %s | %s |" % (sym, dso, side, pct(n, total)))
    print()
    server_syms = collections.Counter({(sym, dso): n for (sym, dso, side), n in syms.items()
                                       if side == "sluiced"})
    server_total = sum(server_syms.values())
    print("Hottest symbols in sluiced (%s of both cores):" % pct(server_total, total))
    print()
    print("| symbol | in | share of sluiced's samples |")
    print("| --- | --- | --- |")
    for (sym, dso), n in server_syms.most_common(a.top):
        print("| `%s` | %s | %s |" % (sym, dso, pct(n, server_total)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
