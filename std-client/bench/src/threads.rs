//! What both modes share: how many event-loop threads, running them, and
//! why a run could not start.

use std::io;

use msglog_core::EncodeError;

/// Why the benchmark could not start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// `epoll_create` failed.
    #[error("cannot create an event loop: {0}")]
    Poll(io::Error),
    /// A worker thread could not be spawned.
    #[error("cannot start a thread: {0}")]
    Thread(io::Error),
    /// A worker thread panicked (a bug).
    #[error("a worker thread panicked")]
    Panicked,
    /// The NAME, PASSWORD or MESSAGE cannot be encoded.
    #[error("cannot encode the {what}: {error}")]
    Encode {
        /// Which transaction.
        what: &'static str,
        /// Why.
        error: EncodeError,
    },
    /// The timestamp rings do not fit in memory.
    #[error("connections x window is too large to track")]
    TooLarge,
    /// The latency histogram could not be created.
    #[error("cannot create the latency histogram: {0}")]
    Histogram(String),
}

/// Threads actually used: never more than connections, at least one.
pub fn threads_used(threads: usize, connections: usize) -> usize {
    threads.clamp(1, connections.max(1))
}

/// Run each worker on its own thread, named `{name}-{index}`; their results
/// in order.
pub fn run_all<W, T>(
    name: &str,
    workers: Vec<W>,
    run: impl Fn(W) -> T + Sync,
) -> Result<Vec<T>, SetupError>
where
    W: Send,
    T: Send,
{
    let run = &run;
    std::thread::scope(|scope| {
        let mut handles = Vec::with_capacity(workers.len());
        for (index, worker) in workers.into_iter().enumerate() {
            let handle = std::thread::Builder::new()
                .name(format!("{name}-{index}"))
                .spawn_scoped(scope, move || run(worker))
                .map_err(SetupError::Thread)?;
            handles.push(handle);
        }
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| SetupError::Panicked))
            .collect()
    })
}
