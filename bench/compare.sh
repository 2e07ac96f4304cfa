#!/usr/bin/env bash
# Side by side: two builds of the node, alternating rounds on the same machine
# in the same minutes (this machine is shared and noisy: a single run says
# little). Signed single events at c=64 and signed batches of 100 at c=16,
# each through `nexus bench` (durability checked every run); medians at the end.
#
#   git worktree add /tmp/before <commit> && ln -s "$PWD/node_modules" /tmp/before/
#   (cd /tmp/before && node scripts/build-wasm.mjs && node scripts/build-bundle.mjs)
#   npm run build:bundle
#   bench/compare.sh /tmp/before/dist/nexus.mjs dist/nexus.mjs [rounds=3]
set -euo pipefail
A=$(realpath "$1"); B=$(realpath "$2"); ROUNDS=${3:-3}
out=$(mktemp -d)
for round in $(seq 1 "$ROUNDS"); do
  for v in A B; do
    bundle=$A; [ "$v" = B ] && bundle=$B
    echo "round $round/$ROUNDS, $v: single, then batches" >&2
    (cd "$out" && node "$bundle" bench --events 20000 --concurrency 64 --report "$out/$v-single-$round.json" >/dev/null 2>&1)
    (cd "$out" && node "$bundle" bench --events 150000 --batch 100 --concurrency 16 --report "$out/$v-batch-$round.json" >/dev/null 2>&1)
  done
done
node - "$out" "$ROUNDS" <<'JS'
const fs = require('fs');
const [dir, rounds] = [process.argv[2], Number(process.argv[3])];
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (const kind of ['single', 'batch']) {
  const m = {};
  for (const v of ['A', 'B']) {
    const rs = Array.from({ length: rounds }, (_, i) => JSON.parse(fs.readFileSync(`${dir}/${v}-${kind}-${i + 1}.json`, 'utf8')));
    const eps = rs.map((r) => Math.round(r.eventsPerSecond));
    m[v] = median(eps);
    console.log(`${kind.padEnd(6)} ${v}  events/s ${eps.join(' ')} (median ${m[v]})  p99 ms ${rs.map((r) => r.latencyMs.p99.toFixed(0)).join(' ')}  peak RSS MB ${rs.map((r) => Math.round(r.node.peakRssMb)).join(' ')}  lost/doubled ${rs.map((r) => `${r.lost}/${r.doubled}`).join(' ')}`);
  }
  console.log(`${kind.padEnd(6)} B ÷ A ${(m.B / m.A).toFixed(2)}`);
}
JS
rm -rf "$out"
