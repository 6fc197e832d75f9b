//! `msglog-bench`: a load generator for msglog-server, in the spirit of
//! redis-benchmark.
//!
//! Framed mode opens `-c` connections spread over `--threads` event loops
//! (non-blocking sockets on `mio`, never a thread per connection); every
//! connection authenticates, then keeps up to `-w` MESSAGE transactions in
//! flight until it has sent `-n` messages (or `--duration` elapsed), and
//! ends with CLOSE. Every status byte is verified and every message's status
//! latency recorded. Raw mode (`--raw --bytes N`) streams N bytes to
//! `msglog-server --raw` and reports the transfer rate.
//!
//! | module | owns |
//! |---|---|
//! | `args` | the command line, the password |
//! | `preflight` | one connection (and login) before the run: a closed port or a refused login ends it at once |
//! | `framed` | framed mode: the event loops, each connection's socket and `ClientSession`, latencies; `Plan`, `RunTotals` |
//! | `raw` | raw mode: the same for a byte stream |
//! | `threads` | running one worker per thread; `SetupError` |
//! | `socket` | the non-blocking socket steps both modes share |
//! | `failure` | how a connection failed (`FailureKind`) and the tally (`FailureCounts`) |
//! | `render` | a run's human table, one-line summary (`-q`) and JSON object |
//! | `tls` | `--tls`: a rustls session per connection, the handshake counts |
//! | `latency` | the latency distribution as `.hgrm` text and as an SVG plot |

#![forbid(unsafe_code)]

mod args;
mod failure;
mod framed;
mod latency;
mod preflight;
mod raw;
mod render;
mod socket;
mod threads;
mod tls;

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;

use args::Args;

/// Exit codes: the run finished but a message was not acknowledged or an error happened.
const EXIT_FAILED_RUN: u8 = 1;
// Exit code 2, a usage error, is msglog_std::USAGE_EXIT_CODE.
/// Exit code: the benchmark could not start (address, login, event loop, threads).
const EXIT_SETUP: u8 = 3;

fn main() -> ExitCode {
    if let Some(kind) = msglog_std::Generate::requested() {
        return kind.print(<Args as clap::CommandFactory>::command());
    }
    let args = match Args::from_command_line() {
        Ok(args) => args,
        Err(error) => return msglog_std::exit_for_command_line("msglog-bench", &error),
    };
    if let Some(kind) = args.generate {
        return kind.print(<Args as clap::CommandFactory>::command());
    }
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(EXIT_FAILED_RUN),
        Err(message) => {
            eprintln!("msglog-bench: {message}");
            ExitCode::from(EXIT_SETUP)
        }
    }
}

/// Run the benchmark the arguments describe and print its report; `Ok(true)` if it was clean.
fn run(args: &Args) -> Result<bool, String> {
    let addr = resolve(&args.host, args.port)?;
    let password = args.password()?;
    let threads = args.threads.unwrap_or_else(args::default_threads);
    // Ten thousand connections need ten thousand descriptors.
    let descriptors = msglog_std::raise_fd_limit().ok();
    let needed = u64::try_from(args.connections).unwrap_or(u64::MAX) + 64;
    if descriptors.is_some_and(|limit| limit < needed) {
        eprintln!(
            "msglog-bench: warning: the descriptor limit ({}) is below the {} connections asked for",
            descriptors.unwrap_or(0),
            args.connections
        );
    }

    let tls = args.tls.settings(&args.host)?;
    if args.raw {
        preflight::connect(addr, args.timeout, tls.as_ref())?;
        let plan = raw::Plan {
            addr,
            connections: args.connections,
            bytes: args.bytes.unwrap_or(args::DEFAULT_RAW_BYTES),
            threads,
            stall_timeout: args.timeout,
            tls,
        };
        let totals = raw::run(&plan).map_err(|e| e.to_string())?;
        if args.json {
            println!("{}", render::raw_json(&plan, &totals));
        } else if args.quiet {
            println!("{}", render::raw_line(&plan, &totals));
        } else {
            print!("{}", render::raw_table(&plan, &totals));
        }
        return Ok(totals.is_clean(&plan));
    }

    preflight::login(addr, &args.user, &password, args.timeout, tls.as_ref())?;
    let plan = framed::Plan {
        addr,
        connections: args.connections,
        until: match args.duration {
            Some(duration) => framed::Until::After(duration),
            None => framed::Until::Count(args.messages),
        },
        size: args.size,
        window: args.window,
        threads,
        user: args.user.clone(),
        password,
        stall_timeout: args.timeout,
        connect_batch: args.connect_batch,
        tls,
    };
    if args.tls.tls_resume {
        // Session tickets for the reported run: two per connection.
        let warm_up = framed::Plan {
            until: framed::Until::Count(0),
            ..plan.clone()
        };
        let totals = framed::run(&warm_up).map_err(|e| e.to_string())?;
        if !totals.is_clean() {
            return Err("the warm-up run for --tls-resume failed".into());
        }
    }
    let totals = framed::run(&plan).map_err(|e| e.to_string())?;
    if args.json {
        println!("{}", render::framed_json(&plan, &totals));
    } else if args.quiet {
        println!("{}", render::framed_line(&plan, &totals));
    } else {
        print!("{}", render::framed_table(&plan, &totals));
    }
    if let Some(path) = &args.histogram {
        latency::write_hgrm(&totals.latency_us, path)?;
    }
    if let Some(path) = &args.plot {
        let title = format!(
            "{}: {}",
            render::plot_title(&plan),
            render::throughput(&totals)
        );
        latency::write_plot(&totals.latency_us, &title, path)?;
    }
    Ok(totals.is_clean())
}

/// The first address of `host` (an IPv6 address may be in brackets).
fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let mut addrs = (bare, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?;
    addrs.next().ok_or_else(|| format!("{host} has no address"))
}
