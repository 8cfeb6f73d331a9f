#!/usr/bin/env bash
# Screenshots of a sweep's per-workload report pages (DIR/workloads/*.html,
# written by `baton sweep`) into DIR/images/WORKLOAD.png with headless
# Chromium (installed by scripts/install-deps.sh), for Markdown write-ups.
#   bash scripts/report-images.sh docs/results/pd-vs-agg
set -euo pipefail
dir=${1:?usage: report-images.sh SWEEP_OUT_DIR}
chromium=${CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] || { echo "no Chromium at $chromium (scripts/install-deps.sh installs it)" >&2; exit 1; }
[ -d "$dir/workloads" ] || { echo "no $dir/workloads: run baton sweep --report-only first" >&2; exit 1; }
mkdir -p "$dir/images"
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
for page in "$dir"/workloads/*.html; do
  name=$(basename "$page" .html)
  # The charts animate on load: give the page 3 s of virtual time before the shot.
  timeout 120 "$chromium" --headless --no-sandbox --disable-gpu --no-first-run --disable-sync \
    --disable-background-networking --disable-component-update --hide-scrollbars \
    --user-data-dir="$profile" --virtual-time-budget=3000 --window-size=1400,1750 \
    --screenshot="$PWD/$dir/images/$name.png" "file://$(realpath "$page")" > /dev/null 2>&1
  echo "$dir/images/$name.png"
done
