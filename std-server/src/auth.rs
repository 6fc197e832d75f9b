//! Who may log in: the authentication policy, and the small thread pool that
//! runs slow Argon2 verifications off the event loops, fed by the bounded
//! fair queue of `verify_queue`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Instant;

use msglog_core::{AcceptAny, Authenticator, LegacyParity};

use crate::backoff::Backoff;
use crate::connection::{Answer, Verification, Verifier, VerifyRequest};
use crate::mailbox::{Decision, Mailbox, Verdict};
use crate::users::{Users, UsersError};
use crate::verify_queue::{Class, Pushed, VerifyQueue, CAPACITY};

/// How passwords are checked.
#[derive(Debug, Clone)]
pub(crate) enum Policy {
    /// Any non-empty password (no `--users`).
    AcceptAny,
    /// The original server's rule (`--auth legacy-parity`).
    LegacyParity,
    /// Argon2 hashes from `--users`, verified on the pool.
    Users(VerifierPool),
}

impl Policy {
    /// The verdict, when it is cheap enough to give on the event loop.
    pub(crate) fn verify_inline(&self, name: &str, password: &[u8]) -> Option<bool> {
        match self {
            Policy::AcceptAny => Some(AcceptAny.verify(name, password)),
            Policy::LegacyParity => Some(LegacyParity.verify(name, password)),
            Policy::Users(_) => None,
        }
    }

    /// Short description for the start-up line.
    pub(crate) fn describe(&self) -> String {
        match self {
            Policy::AcceptAny => "any-password".into(),
            Policy::LegacyParity => "legacy-parity".into(),
            Policy::Users(pool) => format!(
                "argon2 ({})",
                crate::text::plural(pool.current().len() as u64, "user")
            ),
        }
    }
}

/// How an event loop checks its connections' passwords: at once where the
/// policy is cheap and the address's back-off has passed, else on the
/// verifier pool (which applies the back-off itself), the decision coming
/// back to `mailbox`.
pub(crate) struct PasswordCheck<'a> {
    pub(crate) policy: &'a Policy,
    pub(crate) backoff: &'a Mutex<Backoff>,
    pub(crate) mailbox: &'a Arc<Mailbox>,
}

impl Verifier for PasswordCheck<'_> {
    fn verify(&mut self, request: VerifyRequest<'_>) -> Verification {
        let backoff = || self.backoff.lock().unwrap_or_else(PoisonError::into_inner);
        let Policy::Users(pool) = self.policy else {
            let wait = backoff().wait(request.ip, request.now);
            if !wait.is_zero() {
                return Verification::Delayed {
                    until: request.now + wait,
                };
            }
            let accepted = self
                .policy
                .verify_inline(request.name, request.password)
                .unwrap_or(false);
            backoff().record(request.ip, accepted, request.now);
            return Verification::Answered(if accepted {
                Answer::Accepted
            } else {
                Answer::Refused
            });
        };
        let job = Job {
            ip: request.ip,
            name: request.name.to_owned(),
            password: request.password.to_vec(),
            mailbox: Arc::clone(self.mailbox),
            slot: request.slot,
            connection: request.connection,
        };
        match pool.submit(job) {
            Ok(()) => Verification::Submitted,
            Err(Overloaded) => Verification::Answered(Answer::Overloaded),
        }
    }
}

/// A verification request; the verdict goes to `mailbox`. Its password is
/// overwritten when it is dropped.
pub(crate) struct Job {
    pub ip: IpAddr,
    pub name: String,
    pub password: Vec<u8>,
    pub mailbox: Arc<Mailbox>,
    pub slot: usize,
    pub connection: u64,
}

impl Drop for Job {
    fn drop(&mut self) {
        // Best effort: do not leave the password in freed memory.
        self.password.fill(0);
        std::hint::black_box(&self.password);
    }
}

impl Job {
    fn answer(&self, decision: Decision) {
        self.mailbox.verdict(Verdict {
            slot: self.slot,
            connection: self.connection,
            decision,
        });
    }
}

/// The verification queue was full of checks that rank as high.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Overloaded;

/// The users table in force; SIGHUP swaps in a new one.
type CurrentUsers = Arc<RwLock<Arc<Users>>>;

/// The queue the verifier threads serve.
struct Pending {
    state: Mutex<PendingState>,
    ready: Condvar,
}

struct PendingState {
    queue: VerifyQueue<Job>,
    /// Every pool handle is gone: the threads end.
    closed: bool,
}

impl Pending {
    fn lock(&self) -> MutexGuard<'_, PendingState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Closes the queue when the last pool handle is dropped.
struct Closer(Arc<Pending>);

impl Drop for Closer {
    fn drop(&mut self) {
        self.0.lock().closed = true;
        self.0.ready.notify_all();
    }
}

/// Threads that verify passwords against the users file, fed by a bounded
/// fair queue (see `verify_queue`).
#[derive(Clone)]
pub(crate) struct VerifierPool {
    path: PathBuf,
    users: CurrentUsers,
    backoff: Arc<Mutex<Backoff>>,
    pending: Arc<Pending>,
    _closer: Arc<Closer>,
}

impl std::fmt::Debug for VerifierPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifierPool")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl VerifierPool {
    /// Start `threads` verifier threads for the users read from `path`,
    /// applying `backoff` to every check. They end when the last pool handle
    /// is dropped.
    pub(crate) fn start(
        path: &Path,
        users: Users,
        backoff: &Arc<Mutex<Backoff>>,
        threads: usize,
    ) -> std::io::Result<VerifierPool> {
        let users = Arc::new(RwLock::new(Arc::new(users)));
        let pending = Arc::new(Pending {
            state: Mutex::new(PendingState {
                queue: VerifyQueue::new(CAPACITY),
                closed: false,
            }),
            ready: Condvar::new(),
        });
        for i in 0..threads.max(1) {
            let users = Arc::clone(&users);
            let backoff = Arc::clone(backoff);
            let pending = Arc::clone(&pending);
            std::thread::Builder::new()
                .name(format!("verifier-{i}"))
                .spawn(move || verify_jobs(&users, &backoff, &pending))?;
        }
        Ok(VerifierPool {
            path: path.to_owned(),
            users,
            backoff: Arc::clone(backoff),
            _closer: Arc::new(Closer(Arc::clone(&pending))),
            pending,
        })
    }

    /// Queue a verification, ranked by what the back-off table knows of its
    /// address. A full queue refuses it, or takes it in place of a check
    /// that ranks lower, which is answered `Decision::Overloaded`.
    pub(crate) fn submit(&self, job: Job) -> Result<(), Overloaded> {
        let class = {
            let backoff = self.backoff.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            Class::of(
                backoff.failed_recently(job.ip, now),
                backoff.logged_in_recently(job.ip, now),
            )
        };
        let pushed = {
            let mut state = self.pending.lock();
            if state.closed {
                return Err(Overloaded);
            }
            state.queue.push(job.ip, class, job)
        };
        match pushed {
            Pushed::Queued => {
                self.pending.ready.notify_one();
                Ok(())
            }
            Pushed::Displaced(old) => {
                debug!(
                    "connection {}: its password check gave way in the full verification queue",
                    old.connection
                );
                old.answer(Decision::Overloaded);
                Ok(())
            }
            Pushed::Refused(_) => Err(Overloaded),
        }
    }

    /// Checks waiting now, and the most that ever waited at once.
    pub(crate) fn queue_len_and_peak(&self) -> (usize, usize) {
        let state = self.pending.lock();
        (state.queue.len(), state.queue.peak())
    }

    /// The users file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Read the users file again and use it for the verifications that
    /// start from now on. On error the table in force stays.
    pub(crate) fn reload(&self) -> Result<usize, UsersError> {
        let users = Arc::new(Users::load(&self.path)?);
        let count = users.len();
        *self.users.write().unwrap_or_else(PoisonError::into_inner) = users;
        Ok(count)
    }

    pub(crate) fn current(&self) -> Arc<Users> {
        current(&self.users)
    }
}

fn current(users: &CurrentUsers) -> Arc<Users> {
    Arc::clone(&users.read().unwrap_or_else(PoisonError::into_inner))
}

/// Verify queued passwords. The back-off is applied here, when a job's turn
/// comes, not when it was queued: a burst of attempts from one address,
/// queued before its first failure, costs one or two Argon2 checks, not one
/// each; and failures count even when the client has already hung up. A
/// deferred job goes back to its connection, which queues it again when
/// its wait is over.
fn verify_jobs(users: &CurrentUsers, backoff: &Mutex<Backoff>, pending: &Pending) {
    let backoff = || backoff.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        let mut job = {
            let mut state = pending.lock();
            loop {
                if state.closed {
                    return;
                }
                if let Some(job) = state.queue.pop() {
                    break job;
                }
                state = pending
                    .ready
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        };
        let wait = backoff().wait(job.ip, Instant::now());
        let decision = if wait.is_zero() {
            let checked = current(users).verify(&job.name, &job.password);
            backoff().record(job.ip, checked.accepted, Instant::now());
            Decision::Verified {
                accepted: checked.accepted,
                not_before: checked.not_before,
            }
        } else {
            Decision::Deferred {
                wait,
                password: std::mem::take(&mut job.password).into_boxed_slice(),
            }
        };
        job.answer(decision);
    }
}
