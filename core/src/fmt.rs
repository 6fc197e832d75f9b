//! The core's diagnostics, in the embassy `fmt.rs` pattern: through `defmt`
//! with the `defmt` feature, through the `log` crate with the `log` feature
//! (both, if both are on), and compiled away otherwise.
//!
//! Format strings must suit both back ends: plain `{}` placeholders, whose
//! arguments implement `core::fmt::Display` (for `log`) and `defmt::Format`
//! (for `defmt`). With neither feature the arguments are still
//! type-checked against the format string, so a call that would not build
//! with `log` does not build at all.
#![allow(unused_macros)]

macro_rules! log_at {
    ($defmt:ident, $log:ident, $($arg:tt)+) => {{
        #[cfg(feature = "defmt")]
        ::defmt::$defmt!($($arg)+);
        #[cfg(feature = "log")]
        ::log::$log!($($arg)+);
        #[cfg(not(any(feature = "defmt", feature = "log")))]
        {
            let _ = ::core::format_args!($($arg)+);
        }
    }};
}

macro_rules! trace {
    ($($arg:tt)+) => { log_at!(trace, trace, $($arg)+) };
}

macro_rules! debug {
    ($($arg:tt)+) => { log_at!(debug, debug, $($arg)+) };
}

macro_rules! warn {
    ($($arg:tt)+) => { log_at!(warn, warn, $($arg)+) };
}
