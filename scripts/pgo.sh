#!/usr/bin/env bash
# A profile-guided build of `riskstream` (LLVM PGO, the way rustc and
# Firefox build their releases), for the figures in BENCHMARKS.md:
#
#   scripts/pgo.sh            builds target/pgo/release/riskstream
#                             ($CARGO_TARGET_DIR/pgo/... when that is set)
#
# 1. builds an instrumented binary (-Cprofile-generate) in target/pgo-gen;
# 2. trains it on a generated world of another seed than the benchmarks'
#    (seed 7; the benchmarks use seed 1): replay of the whole world and
#    `riskstream demo` (the Kafka path on librdkafka's mock cluster);
# 3. merges the profiles with rustup's llvm-profdata (the llvm-tools
#    component, added when missing) and builds with -Cprofile-use.
#
# The output is the same program: only code layout, inlining and branch
# order follow the profile, which each run makes afresh from the code it
# builds. Costs two release builds (about 25 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."

SYSROOT="$(rustc --print sysroot)"
HOST="$(rustc -vV | sed -n 's/^host: //p')"
PROFDATA="$SYSROOT/lib/rustlib/$HOST/bin/llvm-profdata"
if [ ! -x "$PROFDATA" ]; then
    rustup component add llvm-tools
fi

TARGET="${CARGO_TARGET_DIR:-$(pwd)/target}"
WORK="$TARGET/pgo-data"
rm -rf "$WORK"
mkdir -p "$WORK/raw"

echo "pgo: instrumented build" >&2
RUSTFLAGS="-Cprofile-generate=$WORK/raw" \
    cargo build --release --locked -p riskstream --target-dir "$TARGET/pgo-gen"
GEN="$TARGET/pgo-gen/release/riskstream"

echo "pgo: training" >&2
"$GEN" fixtures generate --seed 7 --out "$WORK/world.jsonl" >/dev/null
"$GEN" replay --input "$WORK/world.jsonl" --output /dev/null >/dev/null
"$GEN" demo >/dev/null

"$PROFDATA" merge -o "$WORK/riskstream.profdata" "$WORK"/raw/*.profraw
rm -rf "$WORK/raw" "$WORK/world.jsonl"

echo "pgo: optimised build" >&2
RUSTFLAGS="-Cprofile-use=$WORK/riskstream.profdata" \
    cargo build --release --locked -p riskstream --target-dir "$TARGET/pgo"
echo "pgo: $TARGET/pgo/release/riskstream" >&2
