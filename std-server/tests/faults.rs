//! The fault suite of issue 7: crashes, write failures, resource
//! exhaustion, hostile bytes, authentication attacks and client recovery,
//! against the real release binaries. Long-running, so every test is
//! ignored by a plain `cargo test`; run them with `scripts/faults.sh`, which
//! builds the binaries and runs
//! `cargo test --release -p msglog-server --test faults -- --ignored --test-threads=1 --nocapture`.
//! Each test prints the figures it proves.

// These tests drive the server process with signals (stop, SIGHUP), umasks
// and resource limits: Unix only. What runs on Windows (under wine in CI)
// is the library's and the binary's unit tests; scripts/wine/ says why.
#![cfg(unix)]

mod common;

mod faults {
    pub mod harness;
    pub mod load;
    pub mod records;

    mod auth;
    mod client;
    mod crash;
    mod exhaustion;
    mod hostile;
    mod write_failures;
}
