"""askonce.py — rule 3 checked the way a person checks it (issue 13): once
the leak has happened, wait about as long as the tool needs (the settle
time, a confirming scan a second later, a margin), then ask ONE time
`leakwatch threads PID --json` and read the verdict. Healthy twins are
asked a few times at random moments, once after the moment a leak would
have been proven, and their report must say what keeps the object
reachable (`wait.reach_path`: a root and a chain of heap blocks, checked
against the process's memory, word by word).

Shared by test_outside.py (issue 13's six patterns), test_layouts.py (the
property test) and the rule-3 leak checks of test_reach.py and
test_cpp_workqueue.py. Diagnostics that only explain a failure (a second
ask, a census of every copy of the object's address in the process) run
after the single ask has already failed, never before it."""
import json
import os
import re
import time

from lwtest import SLOW, TestFailure, addr, brief, check_one_instant, sanitized, thread_by_tid

SETTLE = 1.0     # LEAKWATCH_SETTLE_MS's default, in seconds
CONFIRM = 1.0    # the two-scan rule: a second scan at least this much later
MARGIN = 1.0     # and a margin, scaled under sanitizers (everything is slower there)
ASK_AFTER = SETTLE + CONFIRM + MARGIN * SLOW
STUCK = ("leaked", "deadlocked")
NO_PROOF_NOTES = ("too large to scan", "could not be walked")   # why a sanitized scan proves nothing


class Findings:
    """Failed checks, the first message of each kind, so that one run says
    everything it saw (today's tool fails several ways at once)."""

    def __init__(self, what):
        self.what = what
        self.first = {}

    def check(self, kind, cond, message):
        if not cond and kind not in self.first:
            self.first[kind] = message
        return cond

    def run(self, kind, fn, *args):
        try:
            return fn(*args)
        except TestFailure as e:
            self.first.setdefault(kind, str(e))
            return None

    def kinds(self):
        return sorted(self.first)

    def text(self):
        return "%s: %d problem%s:\n  - %s" % (self.what, len(self.first), "" if len(self.first) == 1 else "s",
                                              "\n  - ".join(self.first.values()))

    def fail_if_any(self, extra=""):
        if self.first:
            raise TestFailure(self.text() + (("\n" + extra) if extra else ""))


def ask(p):
    """One `leakwatch threads PID --json`, parsed (and measured at one instant)."""
    r = p.cli("threads", str(p.pid), "--json", check_rc=0)
    try:
        report = json.loads(r.stdout)
    except ValueError as e:
        raise TestFailure("leakwatch threads --json printed no JSON (%s): %r" % (e, r.stdout[:500]))
    check_one_instant(report)
    return report


def sleep_until(moment):
    delay = moment - time.time()
    if delay > 0:
        time.sleep(delay)


def ask_once_after(p, ready_at):
    """The single ask: ASK_AFTER seconds after READY (later if the machine is slow, never earlier)."""
    sleep_until(ready_at + ASK_AFTER)
    return ask(p)


def tids(ready, key):
    return [int(x) for x in (ready.get(key) or "").split(",") if x and int(x) > 0]


def reach_notes(report):
    return [n for n in report.get("notes") or [] if n.startswith("reachability:")]


def note_explains_no_proof(f, report, what):
    """Under a sanitizer: the report's reachability note says why nothing is proven."""
    notes = reach_notes(report)
    f.check("note", any(x in n for n in notes for x in NO_PROOF_NOTES),
            "%s under a sanitizer: the reachability note should say why nothing can be proven (%s): %r"
            % (what, " or ".join(NO_PROOF_NOTES), notes))


# ---- a leak, proven on the single ask ----

def kept_by(wait):
    """What a reachable wait's reach_path says keeps it (for a failure's text)."""
    rp = wait.get("reach_path")
    return "; kept by reach_path %s" % json.dumps(rp, sort_keys=True) if rp else ""


def check_proven(f, t, obj, size, kind, what):
    """t proven leaked by rule 3: confirmed, the reason, a counterpart naming a
    heap block that holds the object [obj, obj + size) malloc returned."""
    if t is None:
        f.check("missing", False, "%s: the victim is not in the report" % what)
        return False
    w = t.get("wait") or {}
    cp = t.get("counterpart") or {}
    ok = f.check("verdict", t["verdict"] == "leaked", "%s: verdict %r on the single ask, want leaked: %s%s"
                 % (what, t["verdict"], brief(t), kept_by(w)))
    f.check("kind", w.get("kind") == kind and w.get("timeout") is False,
            "%s: wait kind %r (timed %r), want an untimed %s" % (what, w.get("kind"), w.get("timeout"), kind))
    f.check("reach", w.get("reach") == "confirmed", "%s: wait.reach %r on the single ask, want \"confirmed\""
            % (what, w.get("reach")))
    if not ok:
        return False
    f.check("reason", "no live thread can reach" in (t.get("reason") or ""), "%s: reason %r" % (what, t.get("reason")))
    f.check("unreachable", cp.get("unreachable") is True, "%s: counterpart %r" % (what, cp))
    block, bsize = addr(cp.get("block")), cp.get("block_size")
    if f.check("block", block is not None and isinstance(bsize, int) and bsize > 0,
               "%s: the counterpart names no heap block: %r" % (what, cp)):
        f.check("holds", block <= obj and obj + size <= block + bsize,
                "%s: the reported heap block [%#x, %#x) does not hold the object the program allocated, "
                "[%#x, %#x) (%+d bytes from the block)" % (what, block, block + bsize, obj, obj + size, obj - block))
        wobj = addr(w.get("object"))
        f.check("inside", wobj is not None and obj <= wobj < obj + size,
                "%s: the waited object %r is not inside the object [%#x, %#x)"
                % (what, w.get("object"), obj, obj + size))
    f.check("path_null", w.get("reach_path") is None, "%s: a proven wait has a reach_path: %r"
            % (what, w.get("reach_path")))
    return True


def check_chained(f, t, target, what):
    """t leaked by rule 1's chain: it joins `target`, which is leaked."""
    if t is None:
        f.check("missing", False, "%s: not in the report" % what)
        return
    cp = t.get("counterpart") or {}
    f.check("chain_verdict", t["verdict"] == "leaked", "%s: verdict %r, want leaked (it joins tid %d, which is "
            "leaked): %s" % (what, t["verdict"], target, brief(t)))
    if t["verdict"] == "leaked":
        f.check("chain_reason", str(target) in (t.get("reason") or "") and "which is leaked" in t["reason"],
                "%s: the reason should name tid %d and say it is leaked: %r" % (what, target, t.get("reason")))
        f.check("chain_target", cp.get("target") == target, "%s: counterpart %r, want target %d"
                % (what, cp, target))


def check_waiting_sanitized(f, ts, report, what):
    """Under a sanitizer rule 3 proves nothing: waiting, unconfirmed, and the note says why."""
    for t in ts:
        if t is None:
            f.check("missing", False, "%s: a victim is not in the report" % what)
            continue
        f.check("asan_verdict", t["verdict"] not in STUCK, "%s under a sanitizer: %s" % (what, brief(t)))
        f.check("asan_reach", (t.get("wait") or {}).get("reach") != "confirmed", "%s under a sanitizer: confirmed: %s"
                % (what, brief(t)))
    note_explains_no_proof(f, report, what)


def no_other_stuck(f, report, allowed, what):
    bad = [brief(t) for t in report["threads"] if t["verdict"] in STUCK and t["tid"] not in allowed]
    f.check("others", not bad, "%s: threads that should not be stuck are: %r" % (what, bad[:3]))


# ---- diagnostics, run only after the single ask failed ----

def second_ask(p, victim_tids, pause=1.5):
    """Ask again (diagnostic only): does a second ask prove what the first did not?"""
    time.sleep(pause)
    try:
        r = ask(p)
    except TestFailure as e:
        return "a second ask %.1fs later failed: %s" % (pause, e)
    counts, paths = {}, ""
    for tid in victim_tids:
        t = thread_by_tid(r, tid)
        key = (t["verdict"], (t.get("wait") or {}).get("reach")) if t else ("gone", None)
        counts[key] = counts.get(key, 0) + 1
        if t and not paths:
            paths = kept_by(t.get("wait") or {})
    return "diagnostic only: a second ask %.1fs later says %s; notes %r%s" % (
        pause, ", ".join("%d %s (reach %s)" % (n, v, r_) for (v, r_), n in sorted(counts.items(), key=str)),
        reach_notes(r), paths)


def _maps(pid):
    out = []
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            parts = line.split(None, 5)
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            out.append((lo, hi, parts[1], parts[5].strip() if len(parts) > 5 else ""))
    return out


def _stack_owners(pid, maps):
    """mapping index -> [(tid, sp)], for each thread whose stack pointer lies
    in it (a thread that is running has none: /proc says "running")."""
    owners = {}
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return owners
    for tid in tasks:
        try:
            with open("/proc/%d/task/%s/syscall" % (pid, tid)) as f:
                words = f.read().split()
            sp = int(words[-2], 16) if len(words) >= 3 else None
        except (OSError, ValueError):
            continue
        for i, (lo, hi, _, _) in enumerate(maps):
            if sp is not None and lo <= sp < hi:
                owners.setdefault(i, []).append((int(tid), sp))
    return owners


def _walk_chunks(data, is_main_heap):
    """glibc's chunks in a heap's bytes, as [(offset, size, in_use)]: the
    main arena's [heap] from its start, a thread arena's heap from the
    first offset after its heap_info (and malloc_state) from which the walk
    validates to the end. [] if no walk validates."""
    import struct
    n = len(data) // 8 * 8

    def word(off):
        return struct.unpack_from("<Q", data, off)[0] if 0 <= off <= n - 8 else None

    def walk(start):
        chunks, c = [], start
        while c + 16 <= n:
            size = word(c + 8) & ~7
            if size < 32 or size % 16 or c + size > n:
                return None
            chunks.append([c, size, True])
            if c + size == n:
                break
            c += size
        if not chunks or chunks[-1][0] + chunks[-1][1] != n:
            return None
        for k in range(len(chunks) - 1):
            chunks[k][2] = bool(word(chunks[k + 1][0] + 8) & 1)   # the next chunk's PREV_INUSE
        chunks[-1][2] = False                                      # top
        return chunks

    for start in ([0, 16] if is_main_heap else range(0x30, 0x1000, 8)):
        chunks = walk(start)
        if chunks:
            return chunks
    return []


def _classify(data, mlo, is_main_heap, addresses):
    """What kind of chunk each address lies in: free (binned), top, tcache
    (its key word, user + 8, is the value most chunks that look in use
    share), or in use (which includes fastbins: glibc keeps their in-use
    bit set)."""
    import bisect
    import struct
    chunks = _walk_chunks(data, is_main_heap)
    if not chunks:
        return {}
    keys = {}
    for c, size, used in chunks:
        if used and c + 32 <= len(data):
            k = struct.unpack_from("<Q", data, c + 24)[0]
            keys[k] = keys.get(k, 0) + 1
    key = max(keys, key=keys.get) if keys else None
    key = key if key is not None and keys[key] >= 2 and key > (1 << 47) else None
    starts = [c for c, _, _ in chunks]
    out = {}
    for a in addresses:
        k = bisect.bisect_right(starts, a - mlo - 16) - 1
        if k < 0:
            out[a] = "heap header"
            continue
        c, size, used = chunks[k]
        if k == len(chunks) - 1:
            kind = "top"
        elif not used:
            kind = "free chunk (binned)"
        elif key is not None and struct.unpack_from("<Q", data, c + 24)[0] == key:
            kind = "tcache chunk"
        else:
            kind = "chunk in use or in a fastbin, %#x+%d" % (mlo + c + 16, size - 8)
        out[a] = kind
    return out


def census(pid, lo, hi, victims=(), max_mapping=64 << 20, max_total=768 << 20):
    """Every 8-byte-aligned word of the process's readable memory whose value
    lies in [lo, hi): where copies of the object's address are (a person's
    "full scan of the process"), counted by mapping, with the first two of
    each. A mapping holding a thread's stack pointer is named by its tid
    (the victims' own stacks are expected to hold it); one aligned to
    64 MiB is probably a thread arena. When lo is a glibc block, the range
    runs to its chunk's end (malloc_usable_size's reach), and words equal to
    the next chunk's header address (what glibc's bins and top point at,
    also lo's last usable word) are counted apart. Mappings larger than
    max_mapping are skipped, and said so."""
    import struct
    try:
        maps = _maps(pid)
        mem = open("/proc/%d/mem" % pid, "rb", buffering=0)
    except OSError as e:
        return "census impossible: %s" % e
    header_next = None
    size_word = read_word(pid, lo - 8)
    if size_word and not size_word & 2 and 32 <= (size_word & ~7) < (1 << 32):
        header_next = lo - 16 + (size_word & ~7)
        hi = max(hi, header_next + 8)
    owners = _stack_owners(pid, maps)
    per_mapping, skipped, total, count = [], [], 0, 0
    with mem:
        for i, (mlo, mhi, perms, name) in enumerate(maps):
            if perms[0] != "r" or name in ("[vvar]", "[vsyscall]", "[vdso]"):
                continue
            if mhi - mlo > max_mapping or total + (mhi - mlo) > max_total:
                skipped.append("%s %#x+%d" % (name or "anon", mlo, mhi - mlo))
                continue
            total += mhi - mlo
            found, whole = [], []
            pos = mlo
            while pos < mhi:
                n = min(1 << 20, mhi - pos)
                try:
                    mem.seek(pos)
                    data = mem.read(n)
                except OSError:
                    data = b""
                whole.append(data)
                for k, (v,) in enumerate(struct.iter_unpack("<Q", data[:len(data) // 8 * 8])):
                    if lo <= v < hi:
                        found.append((pos + 8 * k, v))
                pos += n
            if not found:
                continue
            heapish = name == "[heap]" or (not name and mlo % (64 << 20) == 0)
            kinds = _classify(b"".join(whole), mlo, name == "[heap]", [a for a, _ in found]) if heapish else {}
            count += len(found)
            label = name or "anon"
            if i in owners:
                who = [tid for tid, _ in owners[i]]
                sp = min(sp for _, sp in owners[i])
                live = sum(a >= sp - 128 for a, _ in found)
                label = "stack of tid %s%s: %d above its stack pointer (live frames), %d below (dead)" % (
                    ",".join(map(str, who)), " (a victim: expected)" if set(who) & set(victims) else "",
                    live, len(found) - live)
            elif not name and mlo % (64 << 20) == 0:
                label = "anon, 64 MiB-aligned (a thread arena?)"
            headers = sum(v == header_next for _, v in found)
            if headers:
                label += " [%d equal to the next chunk's header %#x]" % (headers, header_next)
            by_kind = {}
            for a, _ in found:
                kind = kinds.get(a, "")
                by_kind[kind.split(",")[0]] = by_kind.get(kind.split(",")[0], []) + [kind]
            detail = ""
            if kinds:
                detail = " (%s)" % ", ".join("%d in a %s%s" % (len(v), k, (": " + "; ".join(
                    x.split(", ", 1)[1] for x in sorted(set(v))[:3])) if "," in v[0] else "")
                    for k, v in sorted(by_kind.items()))
            per_mapping.append("%d in %s %s %#x-%#x%s, e.g. %s" % (
                len(found), perms, label, mlo, mhi, detail,
                ", ".join("+%#x -> %#x" % (a - mlo, v) for a, v in found[:2])))
    text = "%d word%s pointing into [%#x, %#x)" % (count, "" if count == 1 else "s", lo, hi)
    if per_mapping:
        text += ": " + "; ".join(per_mapping)
    if skipped:
        text += " (not searched: %d large mapping%s, e.g. %s)" % (len(skipped), "" if len(skipped) == 1 else "s",
                                                                  skipped[0])
    return text


# ---- healthy twins: what keeps the object reachable ----

def random_moments(rng, after=ASK_AFTER):
    """When to ask a twin (seconds after READY): three random moments up to
    the one at which a leak would be asked, and one after it."""
    return sorted(rng.uniform(0.05, after) for _ in range(3)) + [after + rng.uniform(0.3, 1.0) * SLOW]


def read_word(pid, address):
    import struct
    try:
        with open("/proc/%d/mem" % pid, "rb", buffering=0) as mem:
            mem.seek(address)
            data = mem.read(8)
    except (OSError, ValueError, OverflowError):
        return None
    return struct.unpack("<Q", data)[0] if len(data) == 8 else None


def module_of(pid, address):
    """The file mapped at address; for an anonymous mapping right after a
    file's writable mapping (its .bss), that file; else the mapping's name."""
    maps = _maps(pid)
    for i, (lo, hi, perms, name) in enumerate(maps):
        if lo <= address < hi:
            if not name and i and maps[i - 1][1] == lo and maps[i - 1][3].startswith("/"):
                return maps[i - 1][3]
            return name
    return None


def check_reach_path(f, t, want, pid, obj, size, what):
    """t is a settled, reachable candidate wait: wait.reach_path must explain
    it. want: kind ("data", "stack", "tls"); tid (stack, tls); module (the
    fixture's file name) and symbol (a regular expression) for data;
    function (stack: the holder's frame, checked when the report names one);
    via: [(block, offset)], the heap blocks between the root and the
    object, if any. The path is checked against the process's memory: the
    root's word points into the first block, each block's word at its
    offset into the next, and the last block holds the object."""
    w = t.get("wait") or {}
    rp = w.get("reach_path")
    if not f.check("reach_path", isinstance(rp, dict),
                   "%s: wait.reach_path is %s, want a path from a %s root (reach %r)"
                   % (what, "absent" if "reach_path" not in w else repr(rp), want["kind"], w.get("reach"))):
        return
    root, chain = rp.get("root") or {}, rp.get("chain")
    f.check("root_kind", root.get("kind") == want["kind"], "%s: reach_path.root.kind %r, want %r: %r"
            % (what, root.get("kind"), want["kind"], root))
    raddr = addr(root.get("address"))
    f.check("root_address", raddr is not None, "%s: reach_path.root.address %r" % (what, root.get("address")))
    if want["kind"] in ("stack", "tls", "registers"):
        f.check("root_tid", root.get("tid") == want["tid"], "%s: reach_path.root.tid %r, want %r (the holder)"
                % (what, root.get("tid"), want["tid"]))
    if want["kind"] == "data" and root.get("kind") == "data":
        module = root.get("module") or ""
        f.check("root_module", os.path.basename(module) == want["module"], "%s: reach_path.root.module %r, want the "
                "fixture %r" % (what, module, want["module"]))
        f.check("root_symbol", re.match(want["symbol"], root.get("symbol") or "") is not None,
                "%s: reach_path.root.symbol %r, want %s" % (what, root.get("symbol"), want["symbol"]))
        if raddr is not None:
            name = module_of(pid, raddr)
            f.check("root_mapping", name and os.path.basename(name) == want["module"],
                    "%s: the root %#x lies in %r, not in the module %r" % (what, raddr, name, want["module"]))
    if want["kind"] == "stack" and root.get("kind") == "stack" and want.get("function") and root.get("function"):
        f.check("root_function", root["function"].startswith(want["function"]), "%s: reach_path.root.function %r, "
                "want the holder's %r" % (what, root["function"], want["function"]))
    if not f.check("chain", isinstance(chain, list) and chain and all(
            isinstance(c, dict) and addr(c.get("block")) and isinstance(c.get("size"), int) and
            isinstance(c.get("offset"), int) and 0 <= c["offset"] < c["size"] + 8 for c in chain),
            "%s: reach_path.chain %r is not a list of {block, size, offset}" % (what, chain)):
        return
    via = want.get("via") or []
    f.check("chain_length", len(chain) == len(via) + 1, "%s: reach_path.chain has %d blocks, want %d: %r"
            % (what, len(chain), len(via) + 1, chain))
    for k, (vblock, voff) in enumerate(via[:len(chain) - 1]):
        c = chain[k]
        f.check("chain_via", addr(c["block"]) == vblock and c["offset"] == voff,
                "%s: reach_path.chain[%d] is %r, want block %#x offset %d" % (what, k, c, vblock, voff))
    last = chain[-1]
    block, bsize = addr(last["block"]), last["size"]
    f.check("chain_holds", block <= obj and obj + size <= block + bsize,
            "%s: the chain's last block [%#x, %#x) does not hold the object [%#x, %#x)"
            % (what, block, block + bsize, obj, obj + size))
    wobj = addr(w.get("object"))
    f.check("chain_offset", wobj is not None and block + last["offset"] == wobj,
            "%s: the chain's last offset %d + block %#x is not the waited object %r"
            % (what, last["offset"], block, w.get("object")))
    # The path is real: each word points where the path says.
    if raddr is not None:
        word = read_word(pid, raddr)
        first = addr(chain[0]["block"])
        f.check("root_word", word is not None and first <= word < first + chain[0]["size"] + 8,
                "%s: the root's word at %#x is %s, not a pointer into the first block %#x (+%d)"
                % (what, raddr, "unreadable" if word is None else "%#x" % word, first, chain[0]["size"]))
    for k in range(len(chain) - 1):
        here, nxt = chain[k], chain[k + 1]
        word = read_word(pid, addr(here["block"]) + here["offset"])
        nb = addr(nxt["block"])
        f.check("chain_word", word is not None and nb <= word < nb + nxt["size"] + 8,
                "%s: the word at chain[%d] %s+%d is %s, not a pointer into chain[%d] %#x"
                % (what, k, here["block"], here["offset"], "unreadable" if word is None else "%#x" % word, k + 1, nb))


def check_twin_report(f, r, victims, want, pid, obj, size, what, allowed_kinds=("cond",)):
    """Every report of a healthy twin: nothing stuck; each victim waiting; once
    settled, reachable, and (not under a sanitizer) its reach_path explains
    why. True when a victim was settled in this report."""
    bad = [brief(t) for t in r["threads"] if t["verdict"] in STUCK]
    f.check("stuck", not bad, "%s: a healthy twin judged stuck: %r" % (what, bad[:3]))
    settled = False
    with_path = set(victims[:5] + victims[-3:])   # the path is the same for a pool's 500: check a few
    for tid in victims:
        t = thread_by_tid(r, tid)
        if not f.check("missing", t is not None, "%s: victim %d not in the report" % (what, tid)):
            continue
        w = t.get("wait") or {}
        f.check("waiting", t["verdict"] == "waiting" and w.get("kind") in allowed_kinds,
                "%s: %s" % (what, brief(t)))
        if not isinstance(w.get("seconds"), (int, float)) or w["seconds"] < SETTLE + 0.1:
            continue
        settled = True
        if sanitized():
            f.check("asan_reach", w.get("reach") != "confirmed", "%s under a sanitizer: %s" % (what, brief(t)))
            continue
        f.check("reach", w.get("reach") == "reachable", "%s: settled, wait.reach %r, want \"reachable\": %s"
                % (what, w.get("reach"), brief(t)))
        if want is not None and tid in with_path:
            check_reach_path(f, t, want, pid, obj, size, what)
    return settled


def watch_twin(f, p, ready_at, victims, want, obj, size, what, rng, allowed_kinds=("cond",), extra=None):
    """Ask a healthy twin at random moments (one after a leak would have
    been proven); every report checked. The reports, with their moments."""
    reports = []
    settled = 0
    for m in random_moments(rng):
        sleep_until(ready_at + m)
        r = ask(p)
        reports.append((round(time.time() - ready_at, 2), r))
        settled += bool(check_twin_report(f, r, victims, want, p.pid, obj, size, what, allowed_kinds))
        if extra:
            extra(r)
    f.check("settled", settled >= 1, "%s: no report found the victims' waits settled (asked at %r s after READY)"
            % (what, [m for m, _ in reports]))
    if sanitized():
        note_explains_no_proof(f, reports[-1][1], what)
    return reports
