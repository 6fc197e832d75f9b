//! Ready-made authenticators.

use subtle::ConstantTimeEq;

use crate::session::Authenticator;

/// Accepts every name with any non-empty password (the wire never carries an
/// empty one). For trusted networks and tests only.
#[derive(Debug, Clone, Copy, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AcceptAny;

impl Authenticator for AcceptAny {
    fn verify(&mut self, _name: &str, password: &[u8]) -> bool {
        !password.is_empty()
    }
}

/// The original C server's rule, for drop-in compatibility: the password is
/// accepted when its first byte is odd.
#[derive(Debug, Clone, Copy, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LegacyParity;

impl Authenticator for LegacyParity {
    fn verify(&mut self, _name: &str, password: &[u8]) -> bool {
        password.first().is_some_and(|b| b % 2 == 1)
    }
}

/// A fixed table of `(name, password)` pairs, e.g. in a firmware image.
/// Every entry is compared, in time independent of where the bytes differ,
/// so a wrong password for a known name costs the same as an unknown name.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct StaticUsers<'a> {
    users: &'a [(&'a str, &'a [u8])],
}

impl<'a> StaticUsers<'a> {
    /// A table of `(name, password)` pairs.
    pub const fn new(users: &'a [(&'a str, &'a [u8])]) -> Self {
        StaticUsers { users }
    }
}

impl Authenticator for StaticUsers<'_> {
    fn verify(&mut self, name: &str, password: &[u8]) -> bool {
        let mut matched = subtle::Choice::from(0);
        for (user, secret) in self.users {
            matched |= user.as_bytes().ct_eq(name.as_bytes()) & secret.ct_eq(password);
        }
        matched.into()
    }
}

/// Compare two byte strings in time that depends only on their lengths
/// (`subtle`'s constant-time comparison).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    bool::from(a.ct_eq(b))
}
