#!/usr/bin/env bash
# The msglog firmware on an emulated Cortex-M3, end to end.
#
# Builds embedded/ (msglog-core's server on QEMU's lm3s6965evb) and
# msglog-client, boots the firmware in QEMU with UART0 on a TCP port of
# 127.0.0.1, logs in and sends messages with msglog-client (and a few raw
# byte sequences a well-behaved client never sends), checks the exact bytes
# of the records the firmware wrote to messages.log through semihosting,
# reports flash and RAM, and stops QEMU whatever happens.
#
# Usage: scripts/qemu-demo.sh     (installs qemu-system-arm with apt-get if missing)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d)
qemu_pid=""
passed=0

cleanup() {
    if [[ -n $qemu_pid ]]; then
        kill "$qemu_pid" 2>/dev/null || true
        wait "$qemu_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n==> %s\n' "$*"; }
ok() {
    passed=$((passed + 1))
    printf 'ok: %s\n' "$*"
}
fail() {
    printf 'qemu-demo: FAIL: %s\n' "$*" >&2
    if [[ -s $work/qemu.out || -s $work/qemu.err ]]; then
        printf -- '--- QEMU output ---\n' >&2
        cat "$work/qemu.out" "$work/qemu.err" >&2 || true
    fi
    printf 'qemu-demo: %d passed, 1 failed\n' "$passed" >&2
    exit 1
}

# apt_install PACKAGE...: another apt-get may hold the dpkg lock (e.g. a provisioning job): wait for it.
apt_install() {
    apt-get -o DPkg::Lock::Timeout=600 update
    apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "$@"
}

step "Tools"
rustup target add thumbv7m-none-eabi
command -v qemu-system-arm >/dev/null || apt_install qemu-system-arm
qemu-system-arm --version | head -n 1
# llvm-size and llvm-nm from rustup's llvm-tools, else GNU binutils for ARM.
llvm_bin="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin"
if rustup component add llvm-tools && [[ -x $llvm_bin/llvm-size ]]; then
    size_tool=$llvm_bin/llvm-size
    nm_tool=$llvm_bin/llvm-nm
else
    command -v arm-none-eabi-size >/dev/null || apt_install binutils-arm-none-eabi
    size_tool=arm-none-eabi-size
    nm_tool=arm-none-eabi-nm
fi

step "Build"
# The defmt build only has to link; the plain build (last, same path) is the one booted.
(cd "$root/embedded" && cargo build --release --features defmt)
ok "firmware links with --features defmt"
(cd "$root/embedded" && cargo build --release)
(cd "$root" && cargo build --bin msglog-client)
firmware="${CARGO_TARGET_DIR:-$root/embedded/target}/thumbv7m-none-eabi/release/msglog-firmware"
client="${CARGO_TARGET_DIR:-$root/target}/debug/msglog-client"
[[ -f $firmware ]] || fail "no firmware at $firmware"
[[ -x $client ]] || fail "no client at $client"

step "Size"
"$size_tool" -A "$firmware" | grep -E '^(section|\.vector_table|\.text|\.rodata|\.data|\.bss|\.uninit) '
read -r text data bss < <("$size_tool" "$firmware" | awk 'NR == 2 { print $1, $2, $3 }')
flash=$((text + data))
ram=$((data + bss))
awk -v flash="$flash" -v ram="$ram" \
    'BEGIN { printf "flash %d bytes (%.1f KiB), static RAM %d bytes\n", flash, flash / 1024, ram }'
((flash <= 32 * 1024)) || fail "firmware is $flash bytes of flash, over the 32 KiB goal"
ok "firmware fits in 32 KiB of flash"

step "Boot QEMU"
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# Wait until QEMU accepts on $port; a probe connection sends no byte to the UART.
port_accepts() {
    local deadline=$((SECONDS + 20))
    while ((SECONDS < deadline)); do
        kill -0 "$qemu_pid" 2>/dev/null || return 1
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.05
    done
    return 1
}
for attempt in 1 2 3 4 5; do
    port=$(free_port)
    (
        cd "$work"
        exec qemu-system-arm -machine lm3s6965evb -nographic \
            -monitor "unix:$work/monitor.sock,server,nowait" \
            -semihosting-config enable=on,target=native \
            -serial "tcp:127.0.0.1:$port,server,nowait" \
            -kernel "$firmware" >"$work/qemu.out" 2>"$work/qemu.err"
    ) &
    qemu_pid=$!
    if port_accepts; then
        break
    fi
    # Someone took the port between our probe and QEMU's bind: try another.
    wait "$qemu_pid" 2>/dev/null || true
    qemu_pid=""
    ((attempt < 5)) || fail "QEMU did not start listening"
done
deadline=$((SECONDS + 20))
until grep -q '^msglog-firmware: serving UART0' "$work/qemu.out"; do
    ((SECONDS < deadline)) || fail "no boot banner from the firmware"
    sleep 0.05
done
printf 'QEMU (pid %d) serves UART0 on 127.0.0.1:%d\n' "$qemu_pid" "$port"
cat "$work/qemu.out"
grep -q 'Session<32, 32, 256> is [0-9]* bytes' "$work/qemu.out" || fail "banner lacks the session size"
ok "firmware booted"

# run_client EXPECTED_STATUS PASSWORD ARGS...: msglog-client, its exit status checked.
run_client() {
    local expected=$1 password=$2 status=0
    shift 2
    printf '$ MSGLOG_PASSWORD=%s msglog-client' "$password"
    printf ' %q' "$@"
    printf ' 127.0.0.1 %d\n' "$port"
    MSGLOG_PASSWORD=$password "$client" --timeout 20 "$@" 127.0.0.1 "$port" || status=$?
    ((status == expected)) || fail "msglog-client $* exited $status, expected $expected"
}

step "Sessions with msglog-client"
long=$(printf 'L%.0s' {1..200})
printf 'hello from the host\n%s\ntab\there, a backslash \\ and UTF-8: h\xc3\xa9\n' "$long" |
    run_client 0 wonderland --user alice
ok "alice: three lines of stdin, one of 200 bytes (longer than the 16-byte UART FIFO)"

run_client 0 builder --user bob --window 1 --message "one at a time" --message "second"
ok "bob: two messages, one in flight at a time"

run_client 8 wrong-password --user alice --message "must not be logged"
ok "a wrong password is rejected (exit 8) and nothing is logged"

run_client 0 wonderland --user alice --message "served after a rejection"
ok "the next connection after a rejection is served"

too_long=$(printf 'z%.0s' {1..300})
run_client 9 builder --user bob --message "before the long one" --message "$too_long" --message "after the long one"
ok "a 300-byte message is rejected (exit 9); what was pipelined after it is ignored"

run_client 0 builder --user bob --message "served after the leftovers"
ok "the next connection after those leftovers is served"

step "Raw bytes: split transactions, bytes after CLOSE, a stalled client"
python3 - "$port" <<'EOF' || fail "raw-byte checks"
import socket, struct, sys, time

port = int(sys.argv[1])

def frame(tag, payload):
    return bytes([tag]) + struct.pack("<H", len(payload)) + payload

def statuses(sock, count):
    got = b""
    while len(got) < count:
        chunk = sock.recv(count - len(got))
        if not chunk:
            break
        got += chunk
    return got

def check(what, got, expected):
    if got != expected:
        sys.exit(f"{what}: got {got.hex() or 'nothing'}, expected {expected.hex()}")

# A message in two TCP writes, split inside its header, 300 ms apart.
with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
    s.sendall(frame(1, b"bob") + frame(2, b"builder"))
    check("login", statuses(s, 2), b"\0\0")
    message = frame(3, b"sent in two writes, 300 ms apart")
    s.sendall(message[:2])
    time.sleep(0.3)
    s.sendall(message[2:])
    check("split message", statuses(s, 1), b"\0")
    s.sendall(b"\x04")
    check("close", statuses(s, 1), b"\0")
print("ok: a MESSAGE split inside its header across two writes, 300 ms apart, is logged")

# A MESSAGE pipelined after CLOSE belongs to no session: never logged.
with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
    s.sendall(frame(1, b"bob") + frame(2, b"builder") + b"\x04" + frame(3, b"after CLOSE"))
    check("session before CLOSE", statuses(s, 3), b"\0\0\0")
print("ok: a MESSAGE pipelined after CLOSE is ignored: not logged, not answered")

# A client that stops mid-transaction is answered 0xFF after the silence timeout.
with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
    s.sendall(frame(1, b"bob") + frame(2, b"builder"))
    check("login", statuses(s, 2), b"\0\0")
    started = time.monotonic()
    s.sendall(frame(3, b"never finished")[:8])
    check("stalled message", statuses(s, 1), b"\xff")
    waited = time.monotonic() - started
    if not 4.5 <= waited <= 10:
        sys.exit(f"stalled client answered after {waited:.1f} s, expected the 5 s silence timeout")
print(f"ok: a client that stalls mid-transaction gets 0xFF after {waited:.1f} s of silence")
EOF
passed=$((passed + 3))

run_client 0 builder --user bob --message "served after a stalled client"
ok "the next connection after a stalled one is served"

step "A client that vanishes without CLOSE"
python3 - "$port" <<'EOF' || fail "vanishing client"
import socket, struct, sys
frame = lambda tag, payload: bytes([tag]) + struct.pack("<H", len(payload)) + payload
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10) as s:
    s.sendall(frame(1, b"bob") + frame(2, b"builder"))
    got = b""
    while len(got) < 2 and (chunk := s.recv(2 - len(got))):
        got += chunk
    if got != b"\0\0":
        sys.exit(f"bob's login got {got.hex() or 'nothing'}, expected 0000")
EOF
# Within the silence timeout the firmware is still in bob's session: the
# next NAME is an unexpected tag there, so alice is refused, not logged as bob.
run_client 8 wonderland --user alice --message "arrives while bob's session is open"
ok "a client arriving while a vanished client's session is open is refused (exit 8)"
run_client 0 wonderland --user alice --message "served after a vanished client"
ok "the connection after that is served"

step "Records"
expected="$work/expected.log"
{
    printf '[alice]: hello from the host\r\n'
    printf '[alice]: %s\r\n' "$long"
    printf '[alice]: tab\\there, a backslash \\\\ and UTF-8: h\xc3\xa9\r\n'
    printf '[bob]: one at a time\r\n'
    printf '[bob]: second\r\n'
    printf '[alice]: served after a rejection\r\n'
    printf '[bob]: before the long one\r\n'
    printf '[bob]: served after the leftovers\r\n'
    printf '[bob]: sent in two writes, 300 ms apart\r\n'
    printf '[bob]: served after a stalled client\r\n'
    printf '[alice]: served after a vanished client\r\n'
} >"$expected"
printf -- '--- messages.log (written by the firmware through semihosting) ---\n'
cat -A "$work/messages.log" | cut -c 1-100
if ! cmp "$expected" "$work/messages.log"; then
    diff <(cat -A "$expected") <(cat -A "$work/messages.log") >&2 || true
    fail "messages.log differs from the expected records"
fi
ok "messages.log holds exactly the expected records"

step "Stack"
# QEMU starts with RAM zeroed: the lowest non-zero byte between the end of
# the static data and the top of RAM is how deep the stack has ever been.
stack_end=$("$nm_tool" "$firmware" | awk '$3 == "_stack_end" { print $1 }')
[[ -n $stack_end ]] || fail "no _stack_end symbol in the firmware"
python3 - "$work/monitor.sock" "$work/ram.bin" "$stack_end" <<'EOF' || fail "stack measurement"
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
ram = open(dump, "rb").read()
if len(ram) != RAM_SIZE:
    sys.exit(f"RAM dump has {len(ram)} bytes")
deepest = next((i for i in range(stack_end - RAM, RAM_SIZE) if ram[i]), RAM_SIZE)
print(f"stack high-water mark: {RAM_SIZE - deepest} bytes (static RAM ends at {stack_end:#x})")
EOF

printf '\nqemu-demo: %d passed, 0 failed\n' "$passed"
