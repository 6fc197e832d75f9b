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
//! | `args` | the command line |
//! | `framed` | framed mode: the event loops, each connection's socket and `ClientSession`, latencies; `Plan`, `RunTotals` |
//! | `raw` | raw mode: the same for a byte stream |
//! | `threads` | running one worker per thread; `SetupError` |
//! | `socket` | the non-blocking socket steps both modes share |
//! | `failure` | how a connection failed (`FailureKind`) and the tally (`FailureCounts`) |
//! | `fd_limit` | raising the descriptor limit |
//! | `render` | a run's human table and JSON object |
//! | `tls` | `--tls`: a rustls session per connection, the handshake counts |

mod args;
mod failure;
mod fd_limit;
mod framed;
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
// 2 is clap's exit code for a usage error.
/// Exit code: the benchmark could not start (address, event loop, threads).
const EXIT_SETUP: u8 = 3;

fn main() -> ExitCode {
    let args = Args::from_command_line();
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
    let threads = args.threads.unwrap_or_else(args::default_threads);
    // Ten thousand connections need ten thousand descriptors.
    let descriptors = fd_limit::raise_nofile_limit();
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
        } else {
            print!("{}", render::raw_table(&plan, &totals));
        }
        return Ok(totals.is_clean(&plan));
    }

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
        password: args.password.clone().into_bytes(),
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
    } else {
        print!("{}", render::framed_table(&plan, &totals));
    }
    Ok(totals.is_clean())
}

fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    let mut addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?;
    addrs.next().ok_or_else(|| format!("{host} has no address"))
}
