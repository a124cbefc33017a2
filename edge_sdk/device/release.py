"""`release OP`: stage, verify, switch, roll back and prune releases (stdlib only).

Why one device command instead of many small shell commands: every step that must be atomic or consistent (hash a
file list, move a verified release into place, swap the `current` symlink, rewrite releases.json, prune) happens
inside one process under one lock, and all user-supplied values (paths, ids) arrive as JSON on stdin — never
through a shell. The host runs `python3 -m edge_device release OP` and reads one JSON line back — or, for a deploy,
`release hold` (deploylock.py), which holds the target's deploy lock and serves these operations until it is done.

Layout under WORKDIR:
    releases/<id>/                  one release per bundle content (id = release_id(manifest files))
    releases/.incoming-<id>-<tok>/  an upload in progress (never read by anything else)
    current -> releases/<id>        switched atomically (symlink to a temp name, then rename over `current`)
    releases.json                   deploy/rollback history (stack of activated ids, activation times, events)
"""

import json
import os
import shutil
import sys
import time

from .deploylock import OpLock as _Lock, workdir_path as _workdir
from .errors import EXIT_INTEGRITY, DeviceError
from .integrity import content_id, sha256_of as sha256_file

MANIFEST_NAME = "manifest.json"
HISTORY_NAME = "releases.json"
INCOMING_PREFIX = ".incoming-"
STALE_INCOMING_S = 24 * 3600


# ---- shared with the deploying side (imported from edge_sdk.device.release) ----

def check_relpath(rel):
    """A manifest path must stay inside the release: relative, POSIX, no '..', no empty or control parts."""
    if not isinstance(rel, str) or not rel or rel.startswith("/") or "\\" in rel:
        raise DeviceError("unsafe path in file list: %r (expected a relative POSIX path)" % (rel,))
    if any(ord(c) < 32 or ord(c) == 127 for c in rel):
        raise DeviceError("unsafe path in file list: %r (control characters)" % (rel,))
    parts = rel.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise DeviceError("unsafe path in file list: %r (empty, '.' or '..' component)" % (rel,))
    return rel


def release_id(files):
    """The release's name: the bundle's content id (integrity.content_id; edge_sdk.bundle.bundle_id on the host)."""
    return content_id(files)


# ---- helpers ----

def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _hash_or_none(path, cache):
    if path not in cache:
        try:
            cache[path] = sha256_file(path) if os.path.isfile(path) else None
        except (IOError, OSError):
            cache[path] = None
    return cache[path]


def _current_id(wd):
    link = os.path.join(wd, "current")
    if not os.path.islink(link):
        return None
    return os.path.basename(os.path.normpath(os.readlink(link)))


def _release_dirs(wd):
    rd = os.path.join(wd, "releases")
    if not os.path.isdir(rd):
        return []
    return sorted(n for n in os.listdir(rd) if not n.startswith(".") and os.path.isdir(os.path.join(rd, n)))


def _load_history(wd):
    """releases.json, or a history inferred from directory mtimes when it is missing or unreadable."""
    try:
        with open(os.path.join(wd, HISTORY_NAME)) as f:
            h = json.load(f)
        if isinstance(h, dict) and isinstance(h.get("stack"), list) and isinstance(h.get("activated"), dict):
            h.setdefault("events", [])
            return h
    except (IOError, OSError, ValueError):
        pass
    rd = os.path.join(wd, "releases")
    names = sorted(_release_dirs(wd), key=lambda n: os.path.getmtime(os.path.join(rd, n)))
    cur = _current_id(wd)
    if cur in names:
        names.remove(cur)
        names.append(cur)
    activated = dict((n, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(os.path.getmtime(os.path.join(rd, n)))))
                     for n in names)
    return {"schema_version": 1, "stack": names, "activated": activated, "events": [], "inferred": True}


def _save_history(wd, h):
    h.pop("inferred", None)
    h["events"] = h["events"][-200:]
    path = os.path.join(wd, HISTORY_NAME)
    tmp = path + ".tmp-%d" % os.getpid()
    with open(tmp, "w") as f:
        json.dump(h, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _switch_current(wd, rid, token):
    """Point WORKDIR/current at releases/<rid> atomically: symlink under a temp name, rename over `current`."""
    link = os.path.join(wd, "current")
    if os.path.lexists(link) and not os.path.islink(link):
        raise DeviceError("%s exists and is not a symlink; refusing to replace it" % link)
    tmp = os.path.join(wd, "current.tmp-%s" % token)
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(os.path.join("releases", rid), tmp)
    os.replace(tmp, link)
    dfd = os.open(wd, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _prune(wd, h, keep):
    """Keep the `keep` most recently activated releases; never the current or the previous one."""
    names = _release_dirs(wd)
    rd = os.path.join(wd, "releases")
    cur = _current_id(wd)
    stack = [s for s in h["stack"] if s in names]
    protected = set([cur] + stack[-2:])

    def last_active(n):
        return h["activated"].get(n) or time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                      time.gmtime(os.path.getmtime(os.path.join(rd, n))))

    # activation times have 1 s resolution: among releases activated in the same second, the later in the stack wins
    ranked = sorted(names, key=lambda n: (last_active(n), stack.index(n) if n in stack else -1), reverse=True)
    keep_set = set(ranked[:keep]) | protected
    pruned = []
    for n in names:
        if n not in keep_set:
            shutil.rmtree(os.path.join(rd, n), ignore_errors=True)
            pruned.append(n)
            h["activated"].pop(n, None)
    h["stack"] = [s for s in h["stack"] if s not in pruned]
    return pruned


def _clean_incoming(wd, rid, keep_path=None):
    """Remove stale uploads: any for this release (it is complete now) and any other older than a day."""
    rd = os.path.join(wd, "releases")
    removed = []
    for n in os.listdir(rd):
        p = os.path.join(rd, n)
        if not n.startswith(INCOMING_PREFIX) or p == keep_path:
            continue
        if n.startswith(INCOMING_PREFIX + rid + "-") or time.time() - os.path.getmtime(p) > STALE_INCOMING_S:
            shutil.rmtree(p, ignore_errors=True)
            removed.append(n)
    return removed


def _verify_dir(d, files, only=None):
    """Names of files under d whose sha256 differs from `files` ({rel: [sha, size]}) or that are missing."""
    bad = []
    for rel in (only if only is not None else sorted(files)):
        p = os.path.join(d, rel)
        try:
            ok = os.path.isfile(p) and sha256_file(p) == files[rel][0]
        except (IOError, OSError):
            ok = False
        if not ok:
            bad.append(rel)
    return bad


# ---- operations (one JSON object in, one out) ----

def op_hash(a):
    cache = {}
    base = os.path.expanduser("~")
    return {"sha256": dict((p, _hash_or_none(os.path.join(base, os.path.expanduser(p)), cache)) for p in a["paths"])}


def _release_args(a):
    """(workdir, release id, files, releases dir) from a request, every file path checked first."""
    files = a["files"]
    for rel in files:
        check_relpath(rel)
    wd = _workdir(a["workdir"])
    return wd, a["release"], files, os.path.join(wd, "releases")


def op_prepare(a):
    """Which files does the device already have? Link reusable ones into a fresh incoming dir; report the rest."""
    wd, rid, files, rd = _release_args(a)
    if not os.path.isdir(rd):
        os.makedirs(rd)
    with _Lock(wd):
        final = os.path.join(rd, rid)
        exists = os.path.isdir(final)
        cache = {}
        status = {}
        for rel, (sha, size) in files.items():
            status[rel] = "present" if exists and _hash_or_none(os.path.join(final, rel), cache) == sha else "missing"
        incoming = None
        todo = [rel for rel in files if status[rel] == "missing"]
        if todo:
            incoming = os.path.join(rd, "%s%s-%s" % (INCOMING_PREFIX, rid, a["token"]))
            os.makedirs(incoming)
            cur = _current_id(wd)
            others = [os.path.join(rd, n) for n in os.listdir(rd)
                      if os.path.isdir(os.path.join(rd, n)) and n != rid and os.path.join(rd, n) != incoming]
            others.sort(key=lambda p: (os.path.basename(p) != cur, -os.path.getmtime(p)))
            for rel in todo:
                dest = os.path.join(incoming, rel)
                if not os.path.isdir(os.path.dirname(dest)):
                    os.makedirs(os.path.dirname(dest))
                sha, size = files[rel]
                for d in others:
                    src = os.path.join(d, rel)
                    if (os.path.isfile(src) and not os.path.islink(src) and os.path.getsize(src) == size
                            and _hash_or_none(src, cache) == sha):
                        try:
                            os.link(src, dest)  # releases are immutable, so sharing inodes is safe
                        except OSError:
                            shutil.copy2(src, dest)
                        status[rel] = "linked"
                        break
            _check_space(rd, incoming, sum(files[rel][1] for rel in todo if status[rel] == "missing"))
    return {"workdir": wd, "release_dir": final, "exists": exists, "incoming": incoming, "status": status,
            "current": _current_id(wd), "free_bytes": _free_bytes(rd)}


def _free_bytes(d):
    st = os.statvfs(d)
    return st.f_bavail * st.f_frsize


def _check_space(rd, incoming, need):
    """Refuse an upload that cannot fit before any byte is sent (a full disk would fail it half-way)."""
    free = _free_bytes(rd)
    if need > free:
        shutil.rmtree(incoming, ignore_errors=True)
        raise DeviceError("not enough disk space on the device: the upload needs %.1f MB in %s, %.1f MB are free"
                          % (need / 1e6, rd, free / 1e6))


def op_activate(a):
    """Verify what was staged, move it into releases/<id>, switch `current`, record history, prune."""
    wd, rid, files, rd = _release_args(a)
    final = os.path.join(rd, rid)
    incoming = a.get("incoming")
    if incoming is not None and os.path.dirname(os.path.normpath(incoming)) != rd:
        raise DeviceError("incoming dir %r is not inside %s" % (incoming, rd))
    with _Lock(wd):
        verified = 0
        if incoming is not None:
            if not os.path.isdir(incoming):
                raise DeviceError("staged upload %s has disappeared" % incoming)
            staged = sorted(rel for rel in files if os.path.lexists(os.path.join(incoming, rel)))
            os.sync()  # data on disk before it becomes visible as a release (power cuts on boards are common)
            if not os.path.isdir(final):
                bad = _verify_dir(incoming, files)
                verified = len(files)
                if bad:
                    shutil.rmtree(incoming, ignore_errors=True)
                    raise DeviceError("sha256 mismatch on the device after upload: %s" % ", ".join(bad[:5]))
                os.rename(incoming, final)
            else:
                bad = _verify_dir(incoming, files, staged)
                verified = len(staged)
                if bad:
                    shutil.rmtree(incoming, ignore_errors=True)
                    raise DeviceError("sha256 mismatch on the device after upload: %s" % ", ".join(bad[:5]))
                for rel in staged:  # repair a damaged release file by file; each replacement is atomic
                    dest = os.path.join(final, rel)
                    if not os.path.isdir(os.path.dirname(dest)):
                        os.makedirs(os.path.dirname(dest))
                    os.replace(os.path.join(incoming, rel), dest)
                shutil.rmtree(incoming, ignore_errors=True)
        elif not os.path.isdir(final):
            raise DeviceError("release %s is not on the device" % rid)
        if a.get("verify_all"):
            bad = _verify_dir(final, files)
            verified = len(files)
            if bad:
                raise DeviceError("release %s on the device does not match its files: %s" % (rid, ", ".join(bad[:5])))
        previous = _current_id(wd)
        h = _load_history(wd)
        switched = previous != rid
        if switched:
            _switch_current(wd, rid, a["token"])
        if rid in h["stack"]:
            h["stack"].remove(rid)
        h["stack"].append(rid)
        h["activated"][rid] = _now()
        h["events"].append({"at": _now(), "action": "deploy", "release": rid, "previous": previous,
                            "meta": a.get("meta") or {}})
        pruned = _prune(wd, h, int(a["keep"]))
        _save_history(wd, h)
        cleaned = _clean_incoming(wd, rid)
    return {"workdir": wd, "release_dir": final, "previous": previous, "switched": switched, "pruned": pruned,
            "verified": verified, "cleaned": cleaned}


def op_rollback(a):
    """Switch `current` to the release deployed before it (or to `to`), and forget the rolled-back one as 'last'."""
    wd = _workdir(a["workdir"])
    if not os.path.isdir(wd):
        raise DeviceError("nothing deployed: %s does not exist" % wd)
    with _Lock(wd):
        names = _release_dirs(wd)
        cur = _current_id(wd)
        h = _load_history(wd)
        stack = [s for s in h["stack"] if s in names]
        if a.get("to"):
            dest = a["to"]
            if dest not in names:
                raise DeviceError("release %s is not on the device (have: %s)" % (dest, ", ".join(names) or "none"))
        else:
            if stack and stack[-1] == cur:
                stack.pop()
            stack = [s for s in stack if s != cur]
            if not stack:
                raise DeviceError("no previous release to roll back to (current: %s; releases: %s)"
                                  % (cur, ", ".join(names) or "none"))
            dest = stack[-1]
        v = op_verify({"workdir": wd, "release": dest})
        if not v["ok"]:
            raise DeviceError("release %s is damaged on the device (%s); not switching to it"
                              % (dest, ", ".join((v["mismatched"] + v["missing"])[:5]) or "release id mismatch"))
        _switch_current(wd, dest, a["token"])
        if a.get("to"):
            h["stack"] = [s for s in h["stack"] if s != dest] + [dest]
        else:
            h["stack"] = [s for s in h["stack"] if s != cur]
            if dest not in h["stack"]:
                h["stack"].append(dest)
        h["activated"][dest] = _now()
        h["events"].append({"at": _now(), "action": "rollback", "release": dest, "previous": cur})
        _save_history(wd, h)
    return {"workdir": wd, "previous": cur, "current": dest, "release_dir": os.path.join(wd, "releases", dest)}


def op_verify(a):
    """Re-hash a release (default: current) against its own manifest.json; the release id must match too."""
    wd = _workdir(a["workdir"])
    rid = a.get("release") or _current_id(wd)
    if rid is None:
        raise DeviceError("no current release in %s" % wd)
    d = os.path.join(wd, "releases", rid)
    mpath = os.path.join(d, MANIFEST_NAME)
    try:
        with open(mpath) as f:
            m = json.load(f)
        files = dict((check_relpath(rel), [e["sha256"], e["size_bytes"]]) for rel, e in m["files"].items())
    except (IOError, OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return {"workdir": wd, "release": rid, "release_dir": d, "ok": False, "mismatched": [], "missing": [],
                "extra": [], "id_matches": False, "error": "cannot read %s: %s" % (mpath, exc)}
    ids = dict((rel, v[0]) for rel, v in files.items())
    bad = _verify_dir(d, files)
    missing = [rel for rel in bad if not os.path.isfile(os.path.join(d, rel))]
    mismatched = [rel for rel in bad if rel not in missing]
    have = set()
    for root, _dirs, fnames in os.walk(d):
        for fn in fnames:
            have.add(os.path.relpath(os.path.join(root, fn), d).replace(os.sep, "/"))
    extra = sorted(have - set(files) - set([MANIFEST_NAME]))
    id_ok = release_id(ids) == rid
    return {"workdir": wd, "release": rid, "release_dir": d, "ok": not bad and id_ok, "mismatched": mismatched,
            "missing": missing, "extra": extra, "id_matches": id_ok, "files": len(files) + 1}


def op_status(a):
    wd = _workdir(a["workdir"])
    h = _load_history(wd) if os.path.isdir(wd) else {"stack": [], "activated": {}, "events": []}
    return {"workdir": wd, "current": _current_id(wd) if os.path.isdir(wd) else None,
            "releases": _release_dirs(wd), "stack": h["stack"], "activated": h["activated"],
            "events": h["events"][-20:]}


def op_memory(a):
    """The memory a model loaded now may use (probe.memory): a decoder's deploy checks it before uploading."""
    from .probe import memory

    return memory()


OPS = {"hash": op_hash, "prepare": op_prepare, "activate": op_activate, "rollback": op_rollback,
       "verify": op_verify, "status": op_status, "memory": op_memory}


def run(op, stdin=None):
    """Run release operation `op` on the JSON object read from stdin; print one JSON line; return the exit code.
    `hold`: take the deploy lock and serve operations line by line (deploylock.hold)."""
    if op == "hold":
        from .deploylock import hold

        return hold(OPS)
    try:
        out = OPS[op](json.loads((stdin if stdin is not None else sys.stdin).read() or "{}"))
    except DeviceError as exc:
        sys.stdout.write(json.dumps({"error": str(exc)}) + "\n")
        return EXIT_INTEGRITY
    except (IOError, OSError) as exc:
        sys.stdout.write(json.dumps({"error": "%s: %s" % (getattr(exc, "filename", "") or "", exc)}) + "\n")
        return EXIT_INTEGRITY
    sys.stdout.write(json.dumps(out) + "\n")
    return 0
