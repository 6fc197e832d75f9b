#!/usr/bin/env bash
# The client firmware on an emulated Cortex-M3, logging to the real server.
#
# Builds embedded/client (msglog's client role under embassy on QEMU's
# lm3s6965evb) and msglog-server, starts the server on a free port of
# 127.0.0.1 with a temporary --dir, and boots QEMU with UART0 connected to
# it as a TCP client (-serial tcp:127.0.0.1:PORT,reconnect=1). The firmware
# logs in, sends a demo sensor's messages and ends with CLOSE; meanwhile:
#
# - the server has room in messages.log for every reading but not for the
#   1,000-byte diagnostic dump (a file-size limit, prlimit --fsize, as a
#   nearly full disk would): it refuses the dump (0xFF, write-failed); the
#   device logs in again, sends it once more, is refused again, drops it
#   and goes on;
# - once the live readings flow, the server is stopped (SIGTERM) and
#   started again on the same port; QEMU reconnects the UART's TCP side by
#   itself and the device, which notices only that its session is gone,
#   logs in again and resends what was not acknowledged.
#
# Then it checks messages.log byte for byte (the records come from
# msglog-core's own record writer, through embedded/sensor-demo), the
# sessions in transactions.log and the firmware's report, and reports flash,
# static RAM and the stack high-water mark (a RAM dump through QEMU's
# monitor: the firmware, started with --wait-for-monitor, sleeps after its
# report until the script has read its RAM and quits QEMU).
#
# Usage: scripts/qemu-client-demo.sh   (installs qemu-system-arm with apt-get if missing)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d)
logs="$work/logs"
server_pid=""
qemu_pid=""
passed=0

# Bounds, in seconds: every wait ends.
BOOT_TIMEOUT=30
RUN_TIMEOUT=180

stop_process() {
    local pid=$1
    [[ -n $pid ]] || return 0
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    stop_process "$qemu_pid"
    stop_process "$server_pid"
    rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n==> %s\n' "$*"; }
ok() {
    passed=$((passed + 1))
    printf 'ok: %s\n' "$*"
}
fail() {
    printf 'qemu-client-demo: FAIL: %s\n' "$*" >&2
    for file in qemu.out qemu.err server-1.err server-2.err logs/transactions.log; do
        if [[ -s $work/$file ]]; then
            printf -- '--- %s ---\n' "$file" >&2
            cut -c 1-200 "$work/$file" >&2 || true
        fi
    done
    printf 'qemu-client-demo: %d passed, 1 failed\n' "$passed" >&2
    exit 1
}

# await SECONDS WHAT COMMAND...: run COMMAND every 50 ms until it succeeds.
await() {
    local seconds=$1 what=$2 deadline
    shift 2
    deadline=$((SECONDS + seconds))
    until "$@"; do
        ((SECONDS < deadline)) || fail "timed out after ${seconds}s waiting for $what"
        sleep 0.05
    done
}

# apt_install PACKAGE...: another apt-get may hold the dpkg lock (e.g. a provisioning job): wait for it.
apt_install() {
    apt-get -o DPkg::Lock::Timeout=600 update
    apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "$@"
}

step "Tools"
rustup target add thumbv7m-none-eabi
command -v qemu-system-arm >/dev/null || apt_install qemu-system-arm
command -v prlimit >/dev/null || apt_install util-linux
qemu_version=$(qemu-system-arm --version | sed -n '1s/.*version \([0-9]*\)\.\([0-9]*\).*/\1 \2/p')
read -r qemu_major qemu_minor <<<"$qemu_version"
qemu-system-arm --version | head -n 1
# QEMU 9.2 renamed the client socket's reconnect=SECONDS to reconnect-ms
# (and 10.0 removed the old name). Either way: try again every second.
if ((qemu_major * 100 + qemu_minor >= 902)); then
    reconnect="reconnect-ms=1000"
else
    reconnect="reconnect=1"
fi
host=$(rustc -vV | sed -n 's/^host: //p')
llvm_bin="$(rustc --print sysroot)/lib/rustlib/$host/bin"
if rustup component add llvm-tools && [[ -x $llvm_bin/llvm-size ]]; then
    size_tool=$llvm_bin/llvm-size
    nm_tool=$llvm_bin/llvm-nm
else
    command -v arm-none-eabi-size >/dev/null || apt_install binutils-arm-none-eabi
    size_tool=arm-none-eabi-size
    nm_tool=arm-none-eabi-nm
fi

step "Build"
(cd "$root/embedded" && cargo build --release -p msglog-client-firmware)
(cd "$root" && cargo build --release -p msglog-server)
# The host side of embedded/sensor-demo: what the server must write.
(cd "$root" && cargo build --release --manifest-path embedded/Cargo.toml --target "$host" \
    -p msglog-sensor-demo --features records --bin sensor-demo-records)
embedded_target="${CARGO_TARGET_DIR:-$root/embedded/target}"
firmware="$embedded_target/thumbv7m-none-eabi/release/msglog-client-firmware"
records_tool="$embedded_target/$host/release/sensor-demo-records"
server="${CARGO_TARGET_DIR:-$root/target}/release/msglog-server"
for file in "$firmware" "$records_tool" "$server"; do
    [[ -f $file ]] || fail "not built: $file"
done

step "Size"
"$size_tool" -A "$firmware" | grep -E '^(section|\.vector_table|\.text|\.rodata|\.data|\.bss|\.uninit) '
read -r text data bss < <("$size_tool" "$firmware" | awk 'NR == 2 { print $1, $2, $3 }')
flash=$((text + data))
static_ram=$((data + bss))
awk -v flash="$flash" -v ram="$static_ram" \
    'BEGIN { printf "flash %d bytes (%.1f KiB), static RAM %d bytes\n", flash, flash / 1024, ram }'
((flash <= 24 * 1024)) || fail "the client firmware is $flash bytes of flash, over the 24 KiB goal"
ok "the client firmware fits in 24 KiB of flash"

step "The plan"
# key=value lines: name, password (demo-only), messages, refused, room.
"$records_tool" plan >"$work/plan" || fail "sensor-demo-records plan"
cat "$work/plan"
plan() { sed -n "s/^$1=//p" "$work/plan"; }
name=$(plan name)
password=$(plan password)
message_count=$(plan messages)
refused=$(plan refused)
room=$(plan room)
"$records_tool" records >"$work/records" || fail "sensor-demo-records records"

# A log directory that has served before: an earlier run's records, so that
# messages.log, not the smaller transactions.log, meets the file-size limit.
mkdir "$logs"
for i in $(seq 1000); do
    printf '[old-sensor]: record %d of an earlier run\r\n' "$i"
done >"$logs/messages.log"
cp "$logs/messages.log" "$work/expected.log"
cat "$work/records" >>"$work/expected.log"
limit=$(($(stat -c %s "$logs/messages.log") + room))
printf 'messages.log starts at %d bytes; the server may write up to %d (room for every reading, not the dump)\n' \
    "$(stat -c %s "$logs/messages.log")" "$limit"

printf '%s' "$password" | "$server" hash-password "$name" >"$work/users" || fail "hash-password"

step "Start msglog-server"
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# start_server PORT N: msglog-server under the file-size limit, its stderr
# in server-N.err; waits for its start-up line.
start_server() {
    local err="$work/server-$2.err"
    prlimit --fsize="$limit" -- "$server" --bind 127.0.0.1 --dir "$logs" --users "$work/users" \
        "$1" 2>"$err" &
    server_pid=$!
    local deadline=$((SECONDS + BOOT_TIMEOUT))
    until grep -q 'listening on' "$err"; do
        kill -0 "$server_pid" 2>/dev/null || return 1
        ((SECONDS < deadline)) || fail "msglog-server did not start"
        sleep 0.05
    done
}
for attempt in 1 2 3 4 5; do
    port=$(free_port)
    if start_server "$port" 1; then
        break
    fi
    # Someone took the port between our probe and the server's bind: try another.
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
    ((attempt < 5)) || fail "msglog-server did not start listening"
done
head -n 1 "$work/server-1.err"
ok "msglog-server listens on 127.0.0.1:$port"

step "Boot QEMU, UART0 connected to 127.0.0.1:$port"
(
    cd "$work"
    exec qemu-system-arm -machine lm3s6965evb -nographic \
        -monitor "unix:$work/monitor.sock,server,nowait" \
        -semihosting-config enable=on,target=native,arg=msglog-client-firmware,arg=--wait-for-monitor \
        -serial "tcp:127.0.0.1:$port,$reconnect" \
        -kernel "$firmware" >"$work/qemu.out" 2>"$work/qemu.err"
) &
qemu_pid=$!
printf 'QEMU (pid %d): -serial tcp:127.0.0.1:%d,%s\n' "$qemu_pid" "$port" "$reconnect"

# while_running CHECK...: CHECK, failing at once if QEMU has exited (the
# firmware exits through semihosting only when it gives up).
while_running() {
    kill -0 "$qemu_pid" 2>/dev/null || fail "QEMU exited before the end of the demo"
    "$@"
}
logged() { grep -qF -- "$1" "$logs/transactions.log" 2>/dev/null; }
recorded() { grep -qF -- "$1" "$logs/messages.log" 2>/dev/null; }
reported() { grep -q '^msglog-client-firmware: done' "$work/qemu.out"; }
until_logged() { await "$RUN_TIMEOUT" "'$1' in transactions.log" while_running logged "$1"; }

until_logged "tag=PASSWORD len=- outcome=ok"
ok "the device logged in"

until_logged "tag=MESSAGE len=1000 outcome=write-failed"
ok "the server refused the diagnostic dump (no room for it in messages.log)"

# The 2nd live reading (the dump's counter + 2) is stored: the device is in
# its live session, with 10 readings, a second apart, still to send. Stop
# the server under it and start it again.
restart_after="reading $((refused + 2)):"
await "$RUN_TIMEOUT" "'$restart_after' in messages.log" while_running recorded "$restart_after"
kill -TERM "$server_pid"
status=0
wait "$server_pid" || status=$?
server_pid=""
((status == 0)) || fail "msglog-server exited $status on SIGTERM"
tail -n 1 "$work/server-1.err"
start_server "$port" 2 || fail "msglog-server did not start again on port $port"
ok "msglog-server restarted on port $port during the live readings"

step "Wait for the device"
await "$RUN_TIMEOUT" "the firmware's report" while_running reported
cat "$work/qemu.out"
grep -qF "done: $((message_count - 1)) messages acknowledged, dropped: Some($refused);" "$work/qemu.out" ||
    fail "the firmware did not report $((message_count - 1)) messages acknowledged and message $refused dropped"
ok "the firmware reports every message acknowledged but the dump, dropped after two refusals"

step "Stack"
# QEMU starts with RAM zeroed: the lowest non-zero byte between the end of
# the static data and the top of RAM is how deep the stack has ever been.
stack_end=$("$nm_tool" "$firmware" | awk '$3 == "_stack_end" { print $1 }')
[[ -n $stack_end ]] || fail "no _stack_end symbol in the firmware"
stack=$(python3 - "$work/monitor.sock" "$work/ram.bin" "$stack_end" <<'EOF'
import socket, sys

monitor, dump, stack_end = sys.argv[1], sys.argv[2], int(sys.argv[3], 16)
RAM, RAM_SIZE = 0x2000_0000, 64 * 1024

def until_prompt(sock):
    seen = b""
    while not seen.endswith(b"(qemu) "):
        chunk = sock.recv(4096)
        if not chunk:
            sys.exit("QEMU monitor closed")
        seen += chunk

with socket.socket(socket.AF_UNIX) as sock:
    sock.settimeout(10)
    sock.connect(monitor)
    until_prompt(sock)
    sock.sendall(f'pmemsave {RAM:#x} {RAM_SIZE} "{dump}"\n'.encode())
    until_prompt(sock)
    # QEMU exits on `quit`: the monitor closes when it has.
    sock.sendall(b"quit\n")
    while sock.recv(4096):
        pass
ram = open(dump, "rb").read()
if len(ram) != RAM_SIZE:
    sys.exit(f"RAM dump has {len(ram)} bytes")
deepest = next((i for i in range(stack_end - RAM, RAM_SIZE) if ram[i]), RAM_SIZE)
print(RAM_SIZE - deepest)
EOF
) || fail "stack measurement"
wait "$qemu_pid" || true
qemu_pid=""
total_ram=$((static_ram + stack))
printf 'stack high-water mark: %d bytes; RAM in use: %d bytes static + %d stack = %d bytes (%.1f KiB)\n' \
    "$stack" "$static_ram" "$stack" "$total_ram" "$(awk -v r="$total_ram" 'BEGIN { print r / 1024 }')"
((total_ram <= 8 * 1024)) || fail "the client firmware uses $total_ram bytes of RAM, over the 8 KiB goal"
ok "the client firmware fits in 8 KiB of RAM, buffers and stack included"

kill -TERM "$server_pid"
wait "$server_pid" || fail "msglog-server did not stop cleanly"
server_pid=""

step "messages.log"
printf -- '--- the records the device added (written by msglog-server) ---\n'
tail -c +"$(($(wc -c <"$work/expected.log") - $(wc -c <"$work/records") + 1))" "$logs/messages.log" |
    cat -A | cut -c 1-110
if ! cmp "$work/expected.log" "$logs/messages.log"; then
    diff <(cat -A "$work/expected.log") <(cat -A "$logs/messages.log") | head -n 40 >&2 || true
    fail "messages.log differs from the expected records"
fi
ok "messages.log holds the earlier records and every message but the dump, once, in order, byte for byte"

step "transactions.log"
python3 - "$logs/transactions.log" "$name" "$message_count" <<'EOF' || fail "transactions.log does not show the expected sessions"
import re, sys

path, name, message_count = sys.argv[1], sys.argv[2], int(sys.argv[3])
line_re = re.compile(r"^\S+ conn=(\d+) peer=(\S+) (.*)$")
connections, order = {}, []
for line in open(path, encoding="utf-8", errors="replace"):
    m = line_re.match(line.rstrip("\n"))
    if not m:
        sys.exit(f"unparsable line: {line!r}")
    key = (m.group(1), m.group(2))  # connection ids restart with the server
    if key not in connections:
        connections[key] = []
        order.append(key)
    connections[key].append(m.group(3))

def short(event):
    return re.sub(r" name=.*", "", event)

stored = refused = closes = shutdowns = resumed = 0
for index, key in enumerate(order):
    events = connections[key]
    print(f"connection {index + 1} ({key[1]}): " + ", ".join(short(e) for e in events[:3])
          + (f", ... ({len(events)} lines)" if len(events) > 3 else ""))
    if events[0] != "event=open" or not events[-1].startswith("event=close reason="):
        sys.exit(f"connection {index + 1} does not open and close: {events[0]!r} ... {events[-1]!r}")
    body, reason = events[1:-1], events[-1].split("reason=")[1]
    if body and body[0].startswith("tag=MESSAGE") and "outcome=unexpected-tag" in body[0]:
        # The device's session ended with the old server; QEMU reconnected to
        # the new one before the device noticed, so its next reading arrived
        # on a connection without a login (refused, then sent again).
        if len(body) != 1 or reason != "rejected":
            sys.exit(f"connection {index + 1}: a refused first MESSAGE must end it")
        resumed += 1
        continue
    expected_login = [f'tag=NAME len={len(name)} outcome=ok name="{name}"', "tag=PASSWORD len=- outcome=ok"]
    if body[:2] != expected_login:
        sys.exit(f"connection {index + 1} does not log in as {name}: {body[:2]}")
    for event in body[2:]:
        if re.fullmatch(r"tag=MESSAGE len=\d+ outcome=ok", event):
            stored += 1
        elif event == "tag=MESSAGE len=1000 outcome=write-failed":
            refused += 1
            if reason != "rejected":
                sys.exit(f"connection {index + 1}: a refused message must close it as rejected")
        elif event == "tag=CLOSE len=- outcome=ok":
            closes += 1
            if index != len(order) - 1 or reason != "close":
                sys.exit(f"connection {index + 1}: CLOSE must end the last session")
        else:
            sys.exit(f"connection {index + 1}: unexpected {event!r}")
    shutdowns += reason == "shutdown"
if stored != message_count - 1:
    sys.exit(f"{stored} messages stored, expected {message_count - 1}")
if refused != 2:
    sys.exit(f"the dump was refused {refused} times, expected 2")
if closes != 1:
    sys.exit(f"{closes} CLOSE lines, expected 1")
if shutdowns != 1:
    sys.exit(f"{shutdowns} sessions ended by the server's shutdown, expected 1 (the restart; "
             "0 if the device finished before the script restarted the server)")
print(f"{len(order)} connections: {stored} messages stored, the dump refused twice, "
      f"one session ended by the restart{', one resumed reading refused and resent' if resumed else ''}, "
      "CLOSE at the end")
EOF
ok "transactions.log: logins, every stored MESSAGE, the dump refused twice, the restart, CLOSE"

printf '\nflash %d bytes, static RAM %d bytes, stack %d bytes: %d of 8192 bytes of RAM\n' \
    "$flash" "$static_ram" "$stack" "$total_ram"
printf 'qemu-client-demo: %d passed, 0 failed\n' "$passed"
