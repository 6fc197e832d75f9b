#!/usr/bin/env bash
# End to end on Windows, under wine: msglog-server.exe (cross-built for
# x86_64-pc-windows-gnu) on a loopback port, driven from Linux by the
# original protocol's byte sequences and the Linux msglog-client.
#
#   framed: the original Python client's exchange (legacy parity), a
#           refused even password, lines from msglog-client, messages.log
#           checked byte for byte, read while the server has it open;
#           `msglog-server.exe reload` (the named event) after the log was
#           moved aside; Ctrl-C (wine turns SIGINT into CTRL_C_EVENT)
#           drains an open session, which still gets its statuses, and the
#           server exits 0.
#   raw:    a binary file (every byte value, about half a MiB) through msglog-client,
#           byte-exact on the server's stdout.
#   Windows programs: msglog-client.exe (framed; raw with that binary file
#           on its stdin, which must be read untranslated) and
#           msglog-bench.exe (800 messages, every one acknowledged and logged).
#
# Every wait is bounded; a server left running is killed (wineserver -k).
# Usage: scripts/wine/e2e.sh   (builds what it needs)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$repo_root"

TARGET=x86_64-pc-windows-gnu
cargo build --target "$TARGET" -p msglog-server -p msglog-client-cli -p msglog-bench --bins
cargo build -p msglog-client-cli --bin msglog-client
server_exe="$target_dir/$TARGET/debug/msglog-server.exe"
client_exe="$target_dir/$TARGET/debug/msglog-client.exe"
bench_exe="$target_dir/$TARGET/debug/msglog-bench.exe"
client="$target_dir/debug/msglog-client"
put_shim_beside "$server_exe"

work="$(mktemp -d)"
server_pid=
cleanup() {
    if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -KILL "$server_pid" 2>/dev/null || true
    fi
    "$WINESERVER" -k 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

fail() {
    echo "e2e FAILED: $*" >&2
    for log in "$work"/*.err; do
        [[ -f $log ]] && { echo "--- $log" >&2; cat "$log" >&2; }
    done
    exit 1
}

# wait_for WHAT SECONDS COMMAND...: poll COMMAND every 0.1 s.
wait_for() {
    local what="$1" limit="$2"
    shift 2
    local deadline=$((SECONDS + limit))
    until "$@"; do
        ((SECONDS < deadline)) || fail "timed out after ${limit}s waiting until $what"
        sleep 0.1
    done
}

# start_server NAME ARGS...: msglog-server.exe ARGS under wine, stdout to
# $work/NAME.out, stderr to $work/NAME.err; sets server_pid and port.
start_server() {
    local name="$1"
    shift
    "$WINE" "$server_exe" "$@" >"$work/$name.out" 2>"$work/$name.err" &
    server_pid=$!
    wait_for "the server listens" 60 grep -qs 'listening on' "$work/$name.err"
    port="$(sed -n 's/.*listening on [^ ]*:\([0-9]*\) .*/\1/p' "$work/$name.err" | head -n 1)"
    [[ -n $port ]] || fail "no port in the start-up line"
    echo "-- $name: msglog-server.exe (wine PID $server_pid) on 127.0.0.1:$port"
}

# stop_server: Ctrl-C (SIGINT, which wine delivers as CTRL_C_EVENT); the
# server must exit 0 within the bound.
stop_server() {
    kill -INT "$server_pid"
    local deadline=$((SECONDS + 30))
    while kill -0 "$server_pid" 2>/dev/null; do
        ((SECONDS < deadline)) || fail "the server did not stop within 30 s of Ctrl-C"
        sleep 0.1
    done
    local status=0
    wait "$server_pid" || status=$?
    server_pid=
    ((status == 0)) || fail "the server exited $status after Ctrl-C"
}

# ------------------------------------------------------------ framed mode

logs="$work/logs"
start_server framed 0 --bind 127.0.0.1 --dir "$logs" --auth legacy-parity --grace 20s

# The original Python client: one transaction at a time, a status after each.
python3 - "$port" <<'PY' || fail "the original client's exchange"
import socket, sys

port = int(sys.argv[1])
s = socket.create_connection(("127.0.0.1", port), timeout=20)

def exchange(data):
    s.sendall(data)
    status = s.recv(1)
    assert len(status) == 1, f"no status for {data!r}"
    return status[0]

assert exchange(b"\x01\x06\x00MyUser") == 0x00
# The original server accepts a password whose first byte is odd ('s').
assert exchange(b"\x02\x06\x00secret") == 0x00
assert exchange(b"\x03\x0b\x00Hello world") == 0x00
assert exchange(b"\x03\x0f\x00Second message!") == 0x00
assert exchange(b"\x04") == 0x00
assert s.recv(1) == b"", "the server closes after CLOSE"
s.close()

# An even first byte is refused, as by the original.
s = socket.create_connection(("127.0.0.1", port), timeout=20)
s.sendall(b"\x01\x06\x00MyUser\x02\x08\x00password")
answer = b""
while True:
    chunk = s.recv(16)
    if not chunk:
        break
    answer += chunk
assert answer == b"\x00\xff", answer
print("original client bytes: ok")
PY

printf 'first line\nzweite Zeile \xc3\xa4\xc3\xb6\xc3\xbc\n\ttabbed\n' |
    MSGLOG_PASSWORD=secret timeout 60 "$client" --user alice 127.0.0.1 "$port" 2>"$work/client.err" ||
    fail "msglog-client (framed) exited $?"

expected="$work/expected.log"
printf '[MyUser]: Hello world\r\n[MyUser]: Second message!\r\n' >"$expected"
# A TAB is escaped as `\t` (PROTOCOL.md, "The server's logs").
printf '[alice]: first line\r\n[alice]: zweite Zeile \xc3\xa4\xc3\xb6\xc3\xbc\r\n[alice]: \\ttabbed\r\n' >>"$expected"
# Read while the server has it open (Windows share modes permit it).
cmp "$expected" "$logs/messages.log" || fail "messages.log differs from the expected bytes"
echo "messages.log: byte for byte as expected, read while the server runs"

# Reload, the Windows way: move the log aside, then the named event.
mv "$logs/messages.log" "$logs/messages.log.1"
timeout 60 "$WINE" "$server_exe" reload --dir "$logs" 2>"$work/reload.err" ||
    fail "msglog-server.exe reload exited $?"
wait_for "the server reopens its logs" 30 grep -q 'reload: reopened messages.log' "$work/framed.err"
MSGLOG_PASSWORD=secret timeout 60 "$client" --user alice -m 'after reload' 127.0.0.1 "$port" 2>>"$work/client.err" ||
    fail "msglog-client after the reload exited $?"
printf '[alice]: after reload\r\n' | cmp - "$logs/messages.log" || fail "the reopened messages.log differs"
cmp "$expected" "$logs/messages.log.1" || fail "the moved-aside log changed"
echo "reload: the logs were reopened"

# Ctrl-C in the middle of a transaction: it is finished within the grace.
python3 - "$port" "$server_pid" <<'PY' || fail "the transaction in progress during Ctrl-C"
import os, signal, socket, sys, time

port, pid = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port), timeout=20)
s.sendall(b"\x01\x05\x00drain\x02\x01\x00s")
login = s.recv(1) + s.recv(1)
assert login == b"\x00\x00", login
# Half a MESSAGE frame: a transaction in progress.
s.sendall(b"\x03\x0b\x00during")
time.sleep(0.2)
os.kill(pid, signal.SIGINT)
# New connections are refused once the stop has begun.
deadline = time.monotonic() + 20
while time.monotonic() < deadline:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        time.sleep(0.1)
    except OSError:
        break
else:
    sys.exit("the listener stayed open after Ctrl-C")
s.sendall(b" stop")
assert s.recv(1) == b"\x00", "the status of the transaction finished during the grace"
assert s.recv(1) == b"", "then the server closes the connection"
print("Ctrl-C: the transaction in progress finished within the grace")
PY
deadline=$((SECONDS + 30))
while kill -0 "$server_pid" 2>/dev/null; do
    ((SECONDS < deadline)) || fail "the server did not stop after Ctrl-C"
    sleep 0.1
done
status=0
wait "$server_pid" || status=$?
server_pid=
((status == 0)) || fail "the server exited $status after Ctrl-C"
grep -q 'stopping: .* get up to 20.0 s to finish' "$work/framed.err" || fail "no stopping line"
grep -q '^msglog-server: stopped after' "$work/framed.err" || fail "no summary line"
printf '[alice]: after reload\r\n[drain]: during stop\r\n' | cmp - "$logs/messages.log" ||
    fail "messages.log after the stop differs"
echo "framed: ok"

# --------------------------------------------------------------- raw mode

input="$work/input.bin"
python3 -c 'import os, sys; sys.stdout.buffer.write(bytes(range(256)) * 2048 + os.urandom(4093))' >"$input"
start_server raw --raw 0 --bind 127.0.0.1
timeout 60 "$client" 127.0.0.1 "$port" "$input" 2>"$work/client-raw.err" ||
    fail "msglog-client (raw) exited $?"
stop_server
cmp "$input" "$work/raw.out" || fail "the raw server's stdout differs from the input"
echo "raw: $(stat -c %s "$input") bytes, byte-exact on the server's stdout"

# ------------------------------------------- the Windows client and bench

start_server windows-programs 0 --bind 127.0.0.1 --dir "$work/logs2"
printf 'from windows\n\\ back\\slash\n' |
    MSGLOG_PASSWORD=secret timeout 60 "$WINE" "$client_exe" --user win 127.0.0.1 "$port" 2>"$work/client-exe.err" ||
    fail "msglog-client.exe (framed) exited $?"
printf '[win]: from windows\r\n[win]: \\\\ back\\\\slash\r\n' | cmp - "$work/logs2/messages.log" ||
    fail "msglog-client.exe's messages differ"
timeout 120 "$WINE" "$bench_exe" -p "$port" -c 4 -n 200 -w 8 >"$work/bench.out" 2>&1 ||
    fail "msglog-bench.exe exited $?: $(cat "$work/bench.out")"
grep -q 'acknowledged    800 of 800' "$work/bench.out" || fail "msglog-bench.exe: $(cat "$work/bench.out")"
stop_server
[[ $(grep -c '^\[bench\]: ' "$work/logs2/messages.log") == 800 ]] || fail "the bench's 800 messages are not all logged"
echo "msglog-client.exe (framed) and msglog-bench.exe (800 messages): ok"

# Raw from Windows: stdin is read in binary (no CR/LF or Ctrl-Z translation).
start_server raw-from-windows --raw 0 --bind 127.0.0.1
timeout 60 "$WINE" "$client_exe" 127.0.0.1 "$port" <"$input" 2>"$work/client-exe-raw.err" ||
    fail "msglog-client.exe (raw) exited $?"
stop_server
cmp "$input" "$work/raw-from-windows.out" || fail "msglog-client.exe's raw bytes differ"
echo "msglog-client.exe (raw, binary stdin): byte-exact"

echo "e2e under wine: ok"
