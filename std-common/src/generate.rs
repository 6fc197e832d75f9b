//! `--generate KIND` of every msglog program: shell completions
//! (`clap_complete`) and a man page (`clap_mangen`), written from the
//! program's own clap definition so that they cannot drift from it.

use std::io::{self, Write};

use clap::ValueEnum;
use clap_complete::Shell;

/// What `--generate` writes to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Generate {
    /// bash completions (for /usr/share/bash-completion/completions/PROGRAM)
    CompleteBash,
    /// zsh completions (for a directory of $fpath, as _PROGRAM)
    CompleteZsh,
    /// fish completions (for ~/.config/fish/completions/PROGRAM.fish)
    CompleteFish,
    /// elvish completions
    CompleteElvish,
    /// PowerShell completions
    CompletePowershell,
    /// The man page, roff (for /usr/local/share/man/man1/PROGRAM.1)
    Man,
}

impl Generate {
    /// Write it for `command` (the program's `clap::Command`, whose name
    /// is the program's) to `out`.
    pub fn write(self, mut command: clap::Command, out: &mut dyn Write) -> io::Result<()> {
        let shell = match self {
            Generate::CompleteBash => Shell::Bash,
            Generate::CompleteZsh => Shell::Zsh,
            Generate::CompleteFish => Shell::Fish,
            Generate::CompleteElvish => Shell::Elvish,
            Generate::CompletePowershell => Shell::PowerShell,
            Generate::Man => return clap_mangen::Man::new(command).render(out),
        };
        let name = command.get_name().to_owned();
        clap_complete::generate(shell, &mut command, name, out);
        Ok(())
    }

    /// `Some` when the command line is exactly `PROGRAM --generate KIND`:
    /// asked before the program's own parsing, which would otherwise
    /// insist on its required arguments (`msglog-client HOST PORT`). The
    /// program also declares `--generate` (exclusive), so that its help,
    /// completions and man page show it.
    pub fn requested() -> Option<Generate> {
        Generate::requested_from(std::env::args_os())
    }

    fn requested_from<I, T>(args: I) -> Option<Generate>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let only_generate = clap::Command::new("program")
            .disable_help_flag(true)
            .disable_version_flag(true)
            .arg(
                clap::Arg::new("generate")
                    .long("generate")
                    .required(true)
                    .value_parser(clap::builder::EnumValueParser::<Generate>::new()),
            );
        only_generate
            .try_get_matches_from(args)
            .ok()?
            .get_one::<Generate>("generate")
            .copied()
    }

    /// Write it to stdout; the exit code to end with: 0, or 7 when stdout
    /// failed, as `msglog-server` exits when it cannot write to stdout.
    pub fn print(self, command: clap::Command) -> std::process::ExitCode {
        let mut stdout = io::stdout().lock();
        match self
            .write(command, &mut stdout)
            .and_then(|()| stdout.flush())
        {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                let name = std::env::args()
                    .next()
                    .and_then(|arg0| {
                        std::path::Path::new(&arg0)
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                    })
                    .unwrap_or_else(|| "msglog".to_owned());
                eprintln!("{name}: writing to stdout failed: {e}");
                std::process::ExitCode::from(7)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command() -> clap::Command {
        clap::Command::new("demo")
            .about("A demo program")
            .arg(clap::Arg::new("port").long("port").help("The port"))
    }

    #[test]
    fn only_a_lone_generate_is_a_request() {
        let asked = |args: &[&str]| Generate::requested_from(args);
        assert_eq!(asked(&["p", "--generate", "man"]), Some(Generate::Man));
        assert_eq!(
            asked(&["p", "--generate=complete-bash"]),
            Some(Generate::CompleteBash)
        );
        assert_eq!(asked(&["p", "--generate", "nonsense"]), None);
        assert_eq!(asked(&["p", "--generate", "man", "host"]), None);
        assert_eq!(asked(&["p", "host", "5555"]), None);
        assert_eq!(asked(&["p", "--help"]), None);
        assert_eq!(asked(&["p"]), None);
    }

    #[test]
    fn every_kind_names_the_program_and_its_flags() {
        for kind in Generate::value_variants() {
            let mut out = Vec::new();
            kind.write(command(), &mut out).unwrap();
            let text = String::from_utf8(out).unwrap();
            assert!(text.contains("demo"), "{kind:?}: {text}");
            assert!(text.contains("port"), "{kind:?}: {text}");
        }
    }
}
