//! Put the board's linker script fragments on the linker's search path:
//! `memory.x` (flash and RAM) and, with the `async` feature, `device.x`
//! (cortex-m-rt's `device` feature includes it; the vector table itself is
//! `src/vectors.rs`).

use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::write(out.join("memory.x"), include_bytes!("memory.x")).expect("OUT_DIR is writable");
    if env::var_os("CARGO_FEATURE_ASYNC").is_some() {
        fs::write(
            out.join("device.x"),
            "/* The interrupt vectors are `__INTERRUPTS` in msglog-board's src/vectors.rs. */\n",
        )
        .expect("OUT_DIR is writable");
    }
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-changed=build.rs");
}
