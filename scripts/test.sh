#!/usr/bin/env bash
# The README's test command: installs the test broker (nisshi) when it is
# missing, then runs every test of the workspace. The Kafka tests start and
# stop their own brokers on free ports through scripts/broker.sh; with
# RISKSTREAM_REQUIRE_BROKER=1 a missing broker fails them instead of
# skipping them.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/broker.sh install
export RISKSTREAM_REQUIRE_BROKER=1
exec cargo test --workspace --locked "$@"
