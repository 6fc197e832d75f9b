//! `msglog-server hash-password NAME`: a users-file line for a password read
//! from stdin, without echo on a terminal.

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

use msglog_server::NewUser;

use crate::cli::HashPasswordArgs;
use crate::stderr_log;

/// Print the line. Exit codes: 6 no usable name, cost or password, 7
/// stdout failed.
pub fn run(args: &HashPasswordArgs) -> ExitCode {
    let (code, message) = match users_line(args) {
        Ok(line) => match writeln!(io::stdout(), "{line}") {
            Ok(()) => return ExitCode::SUCCESS,
            Err(e) => (7, format!("writing to stdout failed: {e}")),
        },
        Err(message) => (6, message),
    };
    stderr_log::error(format_args!("{message}"));
    ExitCode::from(code)
}

/// The line, or what is wrong; the name and cost are checked before the
/// password is asked for.
fn users_line(args: &HashPasswordArgs) -> Result<String, String> {
    let user = NewUser::new(&args.name, args.cost.cost()).map_err(|e| e.to_string())?;
    let password = read_password().map_err(|e| format!("cannot read the password: {e}"))?;
    user.line(password.as_bytes()).map_err(|e| e.to_string())
}

/// A password: asked twice without echo on a terminal, or one line from a
/// pipe or file (without its line end).
pub fn read_password() -> io::Result<String> {
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
