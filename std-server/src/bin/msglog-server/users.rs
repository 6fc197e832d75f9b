//! `msglog-server users add|remove|verify|list FILE [NAME]`, in the manner
//! of `htpasswd`. Passwords are read as `hash-password` reads them.

use std::io::{self, Write};
use std::process::ExitCode;

use msglog_server::{NewUser, UserChange, UsersFile};

use crate::cli::UsersAction;
use crate::hash_password::read_password;
use crate::stderr_log;

/// Exit codes besides 0 and 2: 5 the file cannot be read or is invalid, 6
/// no usable password, 7 stdout failed, 10 the file cannot be written, 11
/// no such user, 12 wrong password.
pub fn run(action: &UsersAction) -> ExitCode {
    match act(action) {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, message)) => {
            stderr_log::error(format_args!("{message}"));
            ExitCode::from(code)
        }
    }
}

fn act(action: &UsersAction) -> Result<(), (u8, String)> {
    let open = |file, missing_ok| UsersFile::open(file, missing_ok).map_err(|e| (5, e.to_string()));
    let save = |users: &UsersFile| users.save().map_err(|e| (10, e.to_string()));
    match action {
        UsersAction::Add { file, name, cost } => {
            // Name, cost and file first: no password is asked for in vain.
            let user = NewUser::new(name, cost.cost()).map_err(|e| (6, e.to_string()))?;
            let mut users = open(file, true)?;
            let password =
                read_password().map_err(|e| (6, format!("cannot read the password: {e}")))?;
            let line = user
                .line(password.as_bytes())
                .map_err(|e| (6, e.to_string()))?;
            let set = users.set(&line).map_err(|e| (5, e.to_string()))?;
            save(&users)?;
            let done = match set {
                UserChange::Added => "added",
                UserChange::Replaced => "changed the password of",
            };
            let preposition = match set {
                UserChange::Added => "to",
                UserChange::Replaced => "in",
            };
            say(format_args!(
                "{done} {name} {preposition} {} ({} users); a running server uses it after SIGHUP",
                file.display(),
                users.len()
            ));
            Ok(())
        }
        UsersAction::Remove { file, name } => {
            let mut users = open(file, false)?;
            if !users.remove(name) {
                return Err((11, no_such_user(name, file)));
            }
            save(&users)?;
            say(format_args!(
                "removed {name} from {} ({} users left); a running server uses it after SIGHUP",
                file.display(),
                users.len()
            ));
            Ok(())
        }
        UsersAction::Verify { file, name } => {
            let users = open(file, false)?;
            if users.names().all(|user| user != name) {
                return Err((11, no_such_user(name, file)));
            }
            let password =
                read_password().map_err(|e| (6, format!("cannot read the password: {e}")))?;
            match users.verify(name, password.as_bytes()) {
                Some(true) => {
                    say(format_args!("the password of {name} is correct"));
                    Ok(())
                }
                _ => Err((12, format!("wrong password for {name}"))),
            }
        }
        UsersAction::List { file } => {
            let users = open(file, false)?;
            let mut text = String::new();
            for name in users.names() {
                text.push_str(name);
                text.push('\n');
            }
            io::stdout()
                .write_all(text.as_bytes())
                .map_err(|e| (7, format!("writing to stdout failed: {e}")))
        }
    }
}

fn no_such_user(name: &str, file: &std::path::Path) -> String {
    format!("no user {name} in {}", file.display())
}

/// A line for the operator on stderr.
fn say(args: std::fmt::Arguments<'_>) {
    eprintln!("msglog-server: {args}");
}
