#!/usr/bin/env bash
# The backup repository on a series made from the ~1.4 GB bench snapshot (`benches/compare.sh
# --backup` runs this): bytes stored per push against the full file and zstd of the full file,
# push throughput, peak RSS, and `backup restore` against `snapshot restore` of the plain file.
#
#   series: etcd-1m.db (1,000,000 keys x 1,000 B, made by real etcd 3.5.1), then the same
#   cluster after 1% of the keys were rewritten (etcd-1m-1pct.db), then after another 5%
#   (etcd-1m-5pct.db): examples/make_churn_series.rs, with etcd 3.5.1 on loopback.
#
# Options (or environment): --runs N (RUNS, default 3), ETCDSNAP_BENCH_DATA (default
# <repo>/bench-data), ETCDSNAP_ETCD35_DIR. Each push is timed into a fresh repository that
# holds the earlier snapshots of the series; restores get a fresh absent target (removed and
# synced outside the timing). Medians of RUNS runs, max peak RSS (/usr/bin/time -f %M).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA=${ETCDSNAP_BENCH_DATA:-$ROOT/bench-data}
RUNS=${RUNS:-3}
while [ $# -gt 0 ]; do
    case "$1" in
        --backup) ;;
        --runs) RUNS=$2; shift ;;
        --runs=*) RUNS=${1#--runs=} ;;
        -h|--help) sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "compare_backup.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

die() { echo "compare_backup.sh: $*" >&2; exit 1; }
[ -x /usr/bin/time ] || die "/usr/bin/time is required (apt-get install -y time)"
mkdir -p "$DATA" || die "cannot create $DATA"
DATA=$(cd "$DATA" && pwd)

(cd "$ROOT" && cargo build --release --quiet --bin etcdsnap --example make_bench_snapshot \
    --example make_churn_series) || die "build failed"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
OURS=$TARGET/release/etcdsnap

BASE=$DATA/etcd-1m.db
P1=$DATA/etcd-1m-1pct.db
P5=$DATA/etcd-1m-5pct.db
if [ ! -s "$BASE" ]; then
    echo "making $BASE with etcd 3.5.1 ..." >&2
    "$TARGET/release/examples/make_bench_snapshot" "$BASE" --keys 1000000 --value-size 1000 >&2 \
        || die "make_bench_snapshot failed"
fi
if [ ! -s "$P1" ] || [ ! -s "$P5" ]; then
    echo "making $P1 and $P5 with etcd 3.5.1 ..." >&2
    "$TARGET/release/examples/make_churn_series" "$BASE" "$DATA/etcd-1m" >&2 \
        || die "make_churn_series failed"
fi

WORK=$(mktemp -d "$DATA/.compare-backup.XXXXXX") || die "mktemp failed"
trap 'rm -rf "$WORK"' EXIT

# timed OUTFILE CMD...: runs CMD under /usr/bin/time; prints "wall_seconds rss_kib".
timed() {
    local out=$1 t0 t1 rc
    shift
    t0=$(date +%s%N)
    /usr/bin/time -f '%M' -o "$WORK/time" "$@" >"$out" 2>"$WORK/err"
    rc=$?
    t1=$(date +%s%N)
    [ $rc -eq 0 ] || { echo "FAILED: $* : $(head -3 "$WORK/err")" >&2; return 1; }
    echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.4f", (b - a) / 1e9}') $(tail -1 "$WORK/time")"
}
median() { sort -g | awk '{v[NR] = $1} END { if (NR % 2) printf "%.4f", v[(NR + 1) / 2]; else printf "%.4f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
maxof() { sort -g | tail -1; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.0f MiB", k / 1024 }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f%%", 100 * a / b }'; }
json_field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }

echo "machine: $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), $(nproc) cores, $(df -PT "$DATA" | awk 'NR==2 {print $2}') at $DATA, $(uname -sr)"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg); runs: $RUNS (median wall, max RSS)"
for f in "$BASE" "$P1" "$P5"; do cat "$f" >/dev/null; done

declare -A ZSTD
if command -v zstd >/dev/null; then
    for f in "$BASE" "$P1" "$P5"; do
        ZSTD[$f]=$(zstd -3 -T1 -q -c "$f" | wc -c)
    done
fi

# --------------------------------------------------------------- pushes
declare -A WALL RSS NEW
files=("$BASE" "$P1" "$P5")
names=(base "1% rewritten" "5% more rewritten")
for ((r = 0; r < RUNS; r++)); do
    repo=$WORK/repo
    rm -rf "$repo"
    "$OURS" backup init "$repo" >/dev/null || die "init failed"
    for i in 0 1 2; do
        sync
        res=$(timed "$WORK/push.json" "$OURS" backup push "$repo" "${files[$i]}" -w json) || die "push failed"
        WALL[$i]+="${res% *} "
        RSS[$i]+="${res#* } "
        NEW[$i]=$(json_field "$WORK/push.json" newBytes)
    done
done
repo_bytes=$(du -sb "$WORK/repo" | cut -f1)
index_bytes=$(stat -c %s "$WORK/repo/index.redb")

echo
printf '%-20s %10s %12s %9s %9s %14s %9s %12s %10s\n' push "file" "stored" "of file" "zstd -3" "stored/zstd" wall "MB/s" "peak RSS"
printf '%-20s %10s %12s %9s %9s %14s %9s %12s %10s\n' -------------------- ---------- ------------ --------- --------- -------------- --------- ------------ ----------
for i in 0 1 2; do
    f=${files[$i]}
    size=$(stat -c %s "$f")
    w=$(printf '%s\n' ${WALL[$i]} | median)
    rss=$(printf '%s\n' ${RSS[$i]} | maxof)
    z=${ZSTD[$f]:-0}
    printf '%-20s %10s %12s %9s %9s %14s %9s %12s %10s\n' "${names[$i]}" "$(mb "$size")" "$(mb "${NEW[$i]}")" \
        "$(pct "${NEW[$i]}" "$size")" "$( [ "$z" -gt 0 ] && mb "$z" || echo -)" \
        "$( [ "$z" -gt 0 ] && pct "${NEW[$i]}" "$z" || echo -)" "${w} s" \
        "$(awk -v b="$size" -v s="$w" 'BEGIN {printf "%.0f", b / 1e6 / s}')" "$(mib "$rss")"
done
full=0; zfull=0
for f in "${files[@]}"; do full=$((full + $(stat -c %s "$f"))); zfull=$((zfull + ${ZSTD[$f]:-0})); done
echo
echo "repository after the three pushes: $(mb "$repo_bytes") on disk (index.redb $(mb "$index_bytes")); three full files: $(mb "$full"); three zstd -3 files: $(mb "$zfull")"

# --------------------------------------------------------------- restore
PEER=http://127.0.0.1:2380
args=(--name m1 --initial-cluster "m1=$PEER" --initial-advertise-peer-urls "$PEER" --initial-cluster-token bench)
id=$("$OURS" backup ls "$WORK/repo" -w json | python3 -c 'import json,sys; print(json.load(sys.stdin)[1]["id"])')
declare -A RW RR
# Pauses after the pushes and after each removal: on a file system mounted with `discard`,
# freeing a 1.4 GB file queues TRIMs that stall the next run's writes and fsyncs (medians swung
# between 1.2 and 2.4 s with no pause; keeping every run's output instead fills the page cache
# and evicts the inputs, which is worse).
sync && sleep 10
for ((r = 0; r < RUNS; r++)); do
    for kind in repo file; do
        rm -rf "$WORK/restore" && mkdir -p "$WORK/restore" && sync && sleep 3
        if [ $kind = repo ]; then
            res=$(timed /dev/null "$OURS" backup restore "$WORK/repo" "$id" "${args[@]}" --data-dir "$WORK/restore/m1.etcd") || die "restore failed"
        else
            res=$(timed /dev/null "$OURS" snapshot restore "$P1" "${args[@]}" --data-dir "$WORK/restore/m1.etcd") || die "restore failed"
        fi
        RW[$kind]+="${res% *} "
        RR[$kind]+="${res#* } "
    done
done
rm -rf "$WORK/restore"
res=$(timed /dev/null "$OURS" backup cat "$WORK/repo" "$id") || die "cat failed"
echo
printf '%-46s %10s %10s\n' "restore of the 1% snapshot, 1 member" wall "peak RSS"
for kind in repo file; do
    label="snapshot restore FILE"
    [ $kind = repo ] && label="backup restore REPO ID"
    printf '%-46s %10s %10s\n' "$label" "$(printf '%s\n' ${RW[$kind]} | median) s" "$(mib "$(printf '%s\n' ${RR[$kind]} | maxof)")"
done
echo "ratio (repo / file): $(awk -v a="$(printf '%s\n' ${RW[repo]} | median)" -v b="$(printf '%s\n' ${RW[file]} | median)" 'BEGIN {printf "%.2f", a / b}')"
echo "backup cat REPO ID > /dev/null: ${res% *} s, peak RSS $(mib "${res#* }")"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
