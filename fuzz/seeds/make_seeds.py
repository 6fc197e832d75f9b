#!/usr/bin/env python3
"""Write the curated seed corpus of the fuzz targets (run from anywhere).

Each seed is a named, hand-made input; see the layout of each target's input
at the top of fuzz_targets/<target>.rs. Regenerate after changing a layout:
    python3 fuzz/seeds/make_seeds.py
"""
import pathlib

HERE = pathlib.Path(__file__).resolve().parent


def frame(tag, payload):
    return bytes([tag]) + len(payload).to_bytes(2, "little") + payload


NAME = frame(1, b"MyUser")  # the original Python client's NAME bytes
PASSWORD_ODD = frame(2, b"a")  # accepted by LegacyParity ('a' is odd)
PASSWORD_EVEN = frame(2, b"b")  # refused by LegacyParity
SECRET = frame(2, b"secret")  # StaticUsers' password
CLOSE = b"\x04"  # the original client's bare CLOSE
HELLO = frame(3, b"hello")
SESSION = NAME + PASSWORD_ODD + HELLO + CLOSE

# Protocol byte streams, shared by `decode` (after a limits selector) and
# `session` (after a setup header).
STREAMS = {
    "python_client_name": NAME,
    "bare_close": CLOSE,
    "python_client_session": SESSION,
    "static_user_session": NAME + SECRET + HELLO + HELLO + CLOSE,
    "pipelined_messages": NAME + PASSWORD_ODD + b"".join(frame(3, bytes([0x41 + i]) * (i + 1)) for i in range(20)),
    "escapes": NAME + PASSWORD_ODD + frame(3, b"a\\b\r\nc\td\x00\x7f\xc2\x80\xe2\x80\xa8\xff[x]: y") + CLOSE,
    "auth_refused": NAME + PASSWORD_EVEN + HELLO,
    "unknown_tag": b"\x05\x01\x00x",
    "zero_length": b"\x01\x00\x00",
    "too_long_name": b"\x01\x00\x01" + b"n" * 256,
    "wrong_tag": frame(3, b"early") + NAME,
    "invalid_name": frame(1, b"[a]") + PASSWORD_ODD,
    "partial_payload": NAME + PASSWORD_ODD + b"\x03\x10\x00hel",
    "partial_header": NAME + b"\x02\x01",
    "message_4k": NAME + PASSWORD_ODD + frame(3, bytes(range(256)) * 16),
    # PROTOCOL.md decisions 1 and 7: names that pass for another, text that rewrites a terminal.
    "name_zero_width_space": frame(1, "ad\u200bmin".encode()) + PASSWORD_ODD + HELLO,
    "name_right_to_left_override": frame(1, "user\u202enimda".encode()) + PASSWORD_ODD + HELLO,
    "name_line_separator": frame(1, "one\u2028two".encode()) + PASSWORD_ODD + HELLO,
    "name_private_use_tag_bom": frame(1, "p\ue000\U000e0041\ufeff".encode()) + PASSWORD_ODD + HELLO,
    "name_neighbours_accepted": frame(1, "\u00a0\u061b\u2027\u202f\u206a".encode()) + PASSWORD_ODD + HELLO + CLOSE,
    "display_controls": NAME + PASSWORD_ODD
    + frame(3, "\x9b31m\x9d0;t\x07 \x85 one\u2028[admin]: x\u2029 \u202eab\u2066c\u2069\u061c\u200e\u200f".encode())
    + frame(3, "\u2027\u202f\u00a0\u061b\u200b\u200d\u201c\u2026 \u00c2\u0600".encode())
    + CLOSE,
}

# decode: first byte selects the limits (0 WIRE, 1 STD, 2 <32,32,512>, 3 <1,2,3>, 4 zero).
DECODE = {f"{name}": bytes([1]) + stream for name, stream in STREAMS.items()}
DECODE["embedded_limits_too_long"] = bytes([2]) + frame(3, b"m" * 513)
DECODE["tiny_limits"] = bytes([3]) + frame(2, b"pw")

# session: setup byte, read-size count, read sizes, stream.
# setup 0x02: <32,32,512>, AcceptAny, sink never fails, EOF, whole writes.
SESSION_SEEDS = {}
for name, stream in STREAMS.items():
    SESSION_SEEDS[name] = bytes([0x02, 0]) + stream
    one_byte_reads = stream[:255]
    SESSION_SEEDS[name + "_byte_by_byte"] = bytes([0x02, len(one_byte_reads)]) + b"\x01" * len(one_byte_reads) + stream
SESSION_SEEDS["legacy_parity"] = bytes([0x06, 0]) + SESSION  # LegacyParity
SESSION_SEEDS["legacy_parity_refused"] = bytes([0x06, 0]) + NAME + PASSWORD_EVEN + HELLO
SESSION_SEEDS["static_users"] = bytes([0x0A, 0]) + NAME + SECRET + HELLO + CLOSE
SESSION_SEEDS["sink_fails_second"] = bytes([0x22, 0]) + NAME + PASSWORD_ODD + HELLO + HELLO + HELLO
SESSION_SEEDS["timeout_mid_frame"] = bytes([0x42, 0]) + NAME + b"\x02\x05\x00ab"
SESSION_SEEDS["short_writes_tiny"] = bytes([0x80, 3, 2, 5, 1]) + frame(1, b"ab") + frame(2, b"c") + frame(3, b"12345678") + CLOSE
SESSION_SEEDS["std_capacities_split"] = bytes([0x03, 4, 1, 2, 3, 200]) + STREAMS["message_4k"] + CLOSE

# roundtrip: `arbitrary` input, any bytes are valid; a few plain streams give it material.
ROUNDTRIP = {name: STREAMS[name] for name in ["python_client_session", "escapes", "pipelined_messages"]}

# client: setup byte, fault_at (u16 LE), reply count, replies, ops.
# setup: bits 0-2 window index (1 2 3 4 8 16 64 1), bit 3 reset at the end,
# bit 4 short writes, bits 5-6 write fault (1 error, 2 zero bytes), bit 7 one-byte reads.
LOGIN = 0x00 | (5 << 3) | (2 << 6)  # name "abcde", password "pw"
SEND = lambda length: bytes([0x01, length])  # noqa: E731
WAIT, CLOSE_OP, POLL = b"\x02", b"\x03", b"\x04"


def client_seed(setup, replies, ops, fault_at=0):
    return bytes([setup]) + fault_at.to_bytes(2, "little") + bytes([len(replies)]) + bytes(replies) + ops


SESSION_OPS = bytes([LOGIN]) + SEND(10) + SEND(200) + SEND(1) + POLL + WAIT + CLOSE_OP
CLIENT = {
    "session_window_2": client_seed(0x01, [0] * 6, SESSION_OPS),
    "session_window_1_one_byte_reads": client_seed(0x80, [0] * 6, SESSION_OPS),
    "session_window_64_short_writes": client_seed(0x16, [0] * 6, SESSION_OPS),
    "message_rejected": client_seed(0x03, [0, 0, 0, 0xFF], SESSION_OPS),
    "password_rejected": client_seed(0x00, [0, 0xFF], SESSION_OPS),
    "not_a_status": client_seed(0x03, [0, 0, 0x07], SESSION_OPS),
    "reset_after_login": client_seed(0x08 | 0x03, [0, 0], SESSION_OPS),
    "closed_after_login": client_seed(0x03, [0, 0], SESSION_OPS),
    "write_error_mid_message": client_seed(0x20 | 0x03, [0] * 6, SESSION_OPS, fault_at=20),
    "write_zero_mid_message": client_seed(0x40 | 0x03, [0] * 6, SESSION_OPS, fault_at=20),
    "close_before_login": client_seed(0x00, [], CLOSE_OP + bytes([LOGIN]) + SEND(3)),
    "send_before_login": client_seed(0x00, [0, 0, 0, 0], SEND(3) + bytes([LOGIN]) + SEND(3) + CLOSE_OP),
    "message_too_long": client_seed(0x03, [0] * 4, bytes([LOGIN, 0xF9]) + SEND(0) + CLOSE_OP),
}

for target, seeds in [
    ("decode", DECODE),
    ("session", SESSION_SEEDS),
    ("roundtrip", ROUNDTRIP),
    ("client", CLIENT),
]:
    directory = HERE / target
    directory.mkdir(exist_ok=True)
    for old in directory.iterdir():
        old.unlink()
    for name, data in seeds.items():
        (directory / name).write_bytes(data)
