#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ from real files in testdata/ (made by real etcd).
# Usage: fuzz/seed.sh   then   cd fuzz && cargo +nightly fuzz run <target> corpus/<target>
set -euo pipefail
cd "$(dirname "$0")"
td=../testdata
mkdir -p corpus/bolt_open_check corpus/snapshot_pages corpus/raft_decode corpus/cluster_parse corpus/k8s_values

# bbolt files: the small raw member dbs (the fuzzer keeps inputs small).
for f in "$td"/snapshots/{small,auth}-v3{4,5}.member.db; do cp "$f" corpus/bolt_open_check/; done

# Mutation programs: the unmodified small and k8s fixtures, and a few edits.
printf '\x00' > corpus/snapshot_pages/small-unmodified
printf '\x1f' > corpus/snapshot_pages/k8s-unmodified
printf '\x00\x04\x00\x0a\x00\x02\x07' > corpus/snapshot_pages/small-root-count
printf '\x1f\x37\x03\x20\x00\x02\x0b' > corpus/snapshot_pages/k8s-branch-elem

# WAL segments and .snap files written by etcdctl 3.4.23 / etcdutl 3.5.1.
for d in "$td"/golden/*/; do
  n=$(basename "$d")
  cp "$d"/*.wal.prefix "corpus/raft_decode/$n.wal"
  cp "$d"/*.snap "corpus/raft_decode/$n.snap"
done

# Membership flags: the golden cases' --initial-cluster, advertise URLs, name, token.
python3 - "$td" <<'PY'
import json, os, sys
td = sys.argv[1]
out = "corpus/cluster_parse"
cases = json.load(open(os.path.join(td, "cluster", "golden.json")))["cases"]
for i, c in enumerate(cases):
    flags = c.get("flags", {})
    seed = "\0".join([
        flags.get("--initial-cluster", "default=http://localhost:2380"),
        flags.get("--initial-advertise-peer-urls", "http://localhost:2380"),
        flags.get("--name", "default"),
        flags.get("--initial-cluster-token", "etcd-cluster"),
    ])
    open(os.path.join(out, f"golden-{i:03d}"), "w").write(seed)
PY
ls corpus/* | head -3 >/dev/null
for t in corpus/*; do echo "$t: $(ls "$t" | wc -l) seeds"; done

# Kubernetes values: the regression inputs, and a value of each encoding.
cp "$td"/fuzz-regressions/k8s_values/* corpus/k8s_values/ 2>/dev/null || true
printf 'k8s\x00\x0a\x0b\x0a\x02v1\x12\x03Pod\x12\x08\x0a\x06\x0a\x04name' > corpus/k8s_values/protobuf
printf '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"}}' > corpus/k8s_values/json
printf '\xd9\xd9\xf7\xa1\x44kind\x43Pod' > corpus/k8s_values/cbor
printf 'k8s:enc:aescbc:v1:key1:\x00\x01' > corpus/k8s_values/encrypted
