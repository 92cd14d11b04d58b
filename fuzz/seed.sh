#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ from real files in testdata/ (made by real etcd).
# Usage: fuzz/seed.sh   then   cd fuzz && cargo +nightly fuzz run <target> corpus/<target>
set -euo pipefail
cd "$(dirname "$0")"
td=../testdata
mkdir -p corpus/bolt_open_check corpus/snapshot_pages corpus/raft_decode corpus/cluster_parse \
  corpus/etcd_records corpus/k8s_values corpus/repo_open corpus/bolt_load corpus/repo_deltas

# bbolt files: the small raw member dbs (the fuzzer keeps inputs small), the synced-freelist
# fixture's body, and the body of every variant of the corruption corpus
# (tests/support/corrupt.rs: freed pages in use, etcd records, metas, cycles...).
for f in "$td"/snapshots/{small,auth}-v3{4,5}.member.db; do cp "$f" corpus/bolt_open_check/; done
head -c -32 "$td"/snapshots/synced-v35.db > corpus/bolt_open_check/synced-v35.body
(cd .. && FUZZ_SEEDS="$PWD/fuzz/corpus/bolt_open_check" \
  cargo test -q --test it corruption::write_fuzz_seeds -- --ignored >/dev/null)

# Mutation programs: the unmodified small and k8s fixtures, and a few edits.
printf '\x00' > corpus/snapshot_pages/small-unmodified
printf '\x1f' > corpus/snapshot_pages/k8s-unmodified
printf '\x00\x04\x00\x0a\x00\x02\x07' > corpus/snapshot_pages/small-root-count
printf '\x1f\x37\x03\x20\x00\x02\x0b' > corpus/snapshot_pages/k8s-branch-elem
printf '\x1e' > corpus/snapshot_pages/synced-unmodified
printf '\x1d' > corpus/snapshot_pages/auth-unmodified

# etcd records: `sel klen vlen_lo vlen_hi key value` programs (fuzz/common/targets.rs), each
# one value etcd decodes: auth/authRevision 3 bytes, an alarm key, a user, a role, a lease,
# cluster/downgrade, meta/confState, meta/scheduledCompactRev, a members record, a key.
printf '\x81\x00\x03\x00\x01\x02\x03' > corpus/etcd_records/auth-revision-short
printf '\x00\x02\x00\x00\x08\x80' > corpus/etcd_records/alarm-key
printf '\x03\x05\x05\x00alice\x0a\x05alice' > corpus/etcd_records/user
printf '\x02\x04\x0c\x00root\x0a\x04root\x12\x04\x08\x02\x12\x00' > corpus/etcd_records/role
printf '\x06\x08\x04\x00\x00\x00\x00\x00\x00\x00\x00\x05\x08\x05\x10\x3c' > corpus/etcd_records/lease
printf '\x84\x09\x20\x00{"target-version":"3.4","enabled":true}' > corpus/etcd_records/downgrade
printf '\x89\x04\x10\x00{"voters":[1,2]}' > corpus/etcd_records/conf-state
printf '\x89\x05\x11\x00\x00\x00\x00\x00\x00\x00\x00\x01_\x00\x00\x00\x00\x00\x00\x00\x00' > corpus/etcd_records/compact-rev
printf '\x07\x01\x09\x00a{"id":10}' > corpus/etcd_records/member
printf '\x85\x0a\x0c\x00\x0a\x01k\x10\x05\x18\x05\x20\x01\x2a\x01v' > corpus/etcd_records/key

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

# Backup repository: each file of the pristine repository unchanged (the target mutates it).
for i in 0 1 2 3 4 5 6 7; do printf "\\x0$i" > "corpus/repo_open/file$i"; done

# Kubernetes values: the regression inputs, and a value of each encoding.
cp "$td"/fuzz-regressions/k8s_values/* corpus/k8s_values/ 2>/dev/null || true
printf 'k8s\x00\x0a\x0b\x0a\x02v1\x12\x03Pod\x12\x08\x0a\x06\x0a\x04name' > corpus/k8s_values/protobuf
printf '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"}}' > corpus/k8s_values/json
printf '\xd9\xd9\xf7\xa1\x44kind\x43Pod' > corpus/k8s_values/cbor
printf 'k8s:enc:aescbc:v1:key1:\x00\x01' > corpus/k8s_values/encrypted

# Bulk loader: the checked-in programs and copies.
cp ../testdata/fuzz-regressions/bolt_load/* corpus/bolt_load/

# Segments of recorded changes: no mutation (the sound sample object), and an empty body
# (first 1, last 0, sealed at 0, no revision, lease or compaction).
printf '' > corpus/repo_deltas/unmodified
printf '\x01\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0' > corpus/repo_deltas/empty-body
