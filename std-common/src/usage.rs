//! Command-line errors as msglog's programs print them: one line, the
//! program's name first, `try --help` once at the end.

/// `error` (a clap error other than `--help` or `--version`) as the line
/// `program` prints on stderr: clap's message without its `error:`
/// prefix, its tips, its usage block or its own pointer to `--help`,
/// folded onto one line.
///
/// ```text
/// msglog-client: invalid value '0' for '[PORT]': 0 is not in 1..=65535 (try --help)
/// ```
pub fn usage_error(program: &str, error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    // The message is the first paragraph; tips, usage and the pointer to
    // --help follow after blank lines.
    let message: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .take_while(|line| !line.is_empty())
        .collect();
    let message = message.join(" ");
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    let message = if message.is_empty() {
        "invalid command line"
    } else {
        message
    };
    format!("{program}: {message} (try --help)")
}

/// The exit code of a usage error, in every msglog program.
pub const USAGE_EXIT_CODE: u8 = 2;

/// The exit code of a command line clap refused: `--help` and `--version`
/// are printed as clap prints them (success); any other error is
/// [`usage_error`]'s one line on stderr and [`USAGE_EXIT_CODE`], in every
/// program.
pub fn exit_for_command_line(program: &str, error: &clap::Error) -> std::process::ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        let _ = error.print();
        return std::process::ExitCode::SUCCESS;
    }
    eprintln!("{}", usage_error(program, error));
    std::process::ExitCode::from(USAGE_EXIT_CODE)
}

#[cfg(test)]
mod tests {
    use clap::{Arg, Command};

    use super::*;

    fn command() -> Command {
        Command::new("prog")
            .arg(Arg::new("host").required(true))
            .arg(Arg::new("port").required(true))
            .arg(
                Arg::new("count")
                    .long("count")
                    .value_parser(clap::value_parser!(u16).range(1..)),
            )
    }

    fn line(argv: &[&str]) -> String {
        usage_error("prog", &command().try_get_matches_from(argv).unwrap_err())
    }

    #[test]
    fn one_line_that_says_try_help_once() {
        for (argv, expected) in [
            (
                &["prog", "h", "p", "--bogus"][..],
                "prog: unexpected argument '--bogus' found (try --help)",
            ),
            (
                &["prog"],
                "prog: the following required arguments were not provided: <host> <port> (try --help)",
            ),
            (
                &["prog", "h", "p", "--count", "0"],
                "prog: invalid value '0' for '--count <count>': 0 is not in 1..=65535 (try --help)",
            ),
        ] {
            let line = line(argv);
            assert_eq!(line, expected);
            assert_eq!(line.matches("help").count(), 1, "{line}");
        }
    }
}
