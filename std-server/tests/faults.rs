//! The fault suite of issue 7: crashes, write failures, resource
//! exhaustion, hostile bytes, authentication attacks, client recovery,
//! TLS under load (issue 13) and, group `nats`, the NATS sink of issue 18
//! losing nodes and itself, against the real release binaries. Long-running, so every test is
//! ignored by a plain `cargo test`; run them with `scripts/faults.sh`, which
//! builds the binaries and runs
//! `cargo test --release -p msglog-server --test faults -- --ignored --test-threads=1 --nocapture`.
//! Each test prints the figures it proves.

// These tests drive the server process with signals (stop, SIGHUP), umasks
// and resource limits: Unix only. What runs on Windows (under wine in CI)
// is the library's and the binary's unit tests; scripts/wine/ says why.
#![cfg(unix)]

#[path = "common/certs.rs"]
mod certs;
mod common;
#[path = "nats/harness.rs"]
mod nats_harness;

mod faults {
    pub mod harness;
    pub mod load;
    pub mod records;

    mod auth;
    mod client;
    mod crash;
    mod exhaustion;
    mod hostile;
    mod nats;
    mod tls;
    mod write_failures;
}
