//! Diagnostics: `defmt` frames when the `defmt` feature is on, nothing otherwise.

#[cfg(feature = "defmt")]
macro_rules! info {
    ($($arg:tt)*) => { defmt::info!($($arg)*) };
}

#[cfg(feature = "defmt")]
macro_rules! warn {
    ($($arg:tt)*) => { defmt::warn!($($arg)*) };
}

/// Without `defmt` the arguments are only borrowed, so nothing is formatted or kept.
#[cfg(not(feature = "defmt"))]
macro_rules! info {
    ($format:literal $(, $arg:expr)* $(,)?) => {{ $( let _ = &$arg; )* }};
}

#[cfg(not(feature = "defmt"))]
macro_rules! warn {
    ($format:literal $(, $arg:expr)* $(,)?) => {{ $( let _ = &$arg; )* }};
}
