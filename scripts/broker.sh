#!/usr/bin/env bash
# The Kafka-compatible broker for tests and local runs: nisshi (formerly
# tansu, https://crates.io/crates/nisshi), on 127.0.0.1 with in-memory
# storage.
#
#   scripts/broker.sh install        install nisshi unless it is on PATH
#   scripts/broker.sh start [PORT]   start it in the background (default 9092)
#   scripts/broker.sh stop  [PORT]   stop the one started on PORT
#   scripts/broker.sh path           print the nisshi binary to use
#
# nisshi 0.8.1 needs rustc 1.96 or newer; when the default toolchain is
# older, the install falls back to the nightly toolchain if one is present.
set -euo pipefail

NISSHI_VERSION=0.8.1
STATE_DIR="${RISKSTREAM_BROKER_DIR:-${TMPDIR:-/tmp}/riskstream-broker}"

nisshi_path() {
    if command -v nisshi >/dev/null 2>&1; then
        command -v nisshi
    elif [ -x "${CARGO_HOME:-$HOME/.cargo}/bin/nisshi" ]; then
        echo "${CARGO_HOME:-$HOME/.cargo}/bin/nisshi"
    else
        return 1
    fi
}

rustc_minor() {
    rustc ${1:+"+$1"} --version 2>/dev/null | sed -E 's/^rustc 1\.([0-9]+).*/\1/'
}

install() {
    if p=$(nisshi_path); then
        echo "nisshi already installed: $p" >&2
        return 0
    fi
    local toolchain=""
    if [ "$(rustc_minor)" -lt 96 ]; then
        if [ -n "$(rustc_minor nightly)" ] && [ "$(rustc_minor nightly)" -ge 96 ]; then
            toolchain="+nightly"
        else
            echo "nisshi $NISSHI_VERSION needs rustc >= 1.96; found $(rustc --version)" >&2
            exit 1
        fi
    fi
    echo "installing nisshi $NISSHI_VERSION (about 20 minutes on 2 cores)..." >&2
    cargo $toolchain install --locked "nisshi@$NISSHI_VERSION" \
        --no-default-features --features dynostore >&2
    nisshi_path >/dev/null
}

wait_port() {
    local port=$1
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "nisshi did not listen on 127.0.0.1:$port within 10 s; see $STATE_DIR/nisshi-$port.log" >&2
    return 1
}

start() {
    local port=${1:-9092}
    local bin
    bin=$(nisshi_path) || { echo "nisshi is not installed: run $0 install" >&2; exit 1; }
    mkdir -p "$STATE_DIR"
    if [ -f "$STATE_DIR/nisshi-$port.pid" ] && kill -0 "$(cat "$STATE_DIR/nisshi-$port.pid")" 2>/dev/null; then
        echo "nisshi already running on 127.0.0.1:$port" >&2
        return 0
    fi
    # Advertise 127.0.0.1, not localhost: clients would try ::1 first.
    nohup "$bin" broker \
        --listener-url "tcp://127.0.0.1:$port" \
        --advertised-listener-url "tcp://127.0.0.1:$port" \
        --storage-engine "memory://nisshi-$port/" \
        >"$STATE_DIR/nisshi-$port.log" 2>&1 &
    echo $! >"$STATE_DIR/nisshi-$port.pid"
    wait_port "$port"
    echo "nisshi listening on 127.0.0.1:$port (pid $(cat "$STATE_DIR/nisshi-$port.pid"))" >&2
}

stop() {
    local port=${1:-9092}
    local pidfile="$STATE_DIR/nisshi-$port.pid"
    if [ -f "$pidfile" ]; then
        local pid
        pid=$(cat "$pidfile")
        kill "$pid" 2>/dev/null || true
        # Wait for it to let go of the port, so that a start right after
        # cannot find the old broker still listening.
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
        rm -f "$pidfile"
        echo "nisshi on 127.0.0.1:$port stopped" >&2
    fi
}

case "${1:-}" in
    install) install ;;
    start) start "${2:-}" ;;
    stop) stop "${2:-}" ;;
    path) nisshi_path ;;
    *) sed -n '2,12p' "$0" >&2; exit 2 ;;
esac
