//! `msglog-server hash-password NAME`: a users-file line for a password read
//! from stdin, without echo on a terminal.

use std::io::{self, IsTerminal, Write};

use argon2::Params;

use crate::cli::HashPasswordArgs;
use crate::error::Failure;
use crate::users::hash_password;

/// The longest password the wire carries (the std server's PASSWORD limit).
const MAX_PASSWORD: usize = 255;

pub fn run(args: &HashPasswordArgs) -> Result<(), Failure> {
    if args.name.len() > 255 || msglog_core::valid_name(args.name.as_bytes()).is_none() {
        return Err(Failure::Password(format!(
            "`{}` is not a valid user name (1..=255 bytes of UTF-8, no brackets and no control, invisible or bidi characters)",
            args.name.escape_debug()
        )));
    }
    let params = Params::new(args.m_cost, args.t_cost, args.p_cost, None)
        .map_err(|e| Failure::Password(format!("invalid Argon2 parameters: {e}")))?;
    let password =
        read_password().map_err(|e| Failure::Password(format!("cannot read the password: {e}")))?;
    if password.is_empty() {
        return Err(Failure::Password("the password is empty".into()));
    }
    if password.len() > MAX_PASSWORD {
        return Err(Failure::Password(format!(
            "the password is longer than {MAX_PASSWORD} bytes, the longest a client can send"
        )));
    }
    let hash = hash_password(password.as_bytes(), params)
        .map_err(|e| Failure::Password(format!("cannot hash: {e}")))?;
    writeln!(io::stdout(), "{}:{hash}", args.name).map_err(Failure::Stdout)
}

fn read_password() -> io::Result<String> {
    if io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Password (again): ")?;
        if first != again {
            return Err(io::Error::other("the passwords differ"));
        }
        Ok(first)
    } else {
        // One line from a pipe or file (a trailing CR/LF is not part of it).
        let config = rpassword::ConfigBuilder::new()
            .input_reader(io::stdin())
            .output_discard()
            .build();
        rpassword::read_password_with_config(config)
    }
}
