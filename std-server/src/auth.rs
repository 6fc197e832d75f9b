//! Who may log in: the authentication policy, and the small thread pool that
//! runs slow Argon2 verifications off the event loops.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Instant;

use msglog_core::{AcceptAny, Authenticator, LegacyParity};

use crate::backoff::Backoff;
use crate::mailbox::{Decision, Mailbox, Verdict};
use crate::users::{Users, UsersError};

/// How passwords are checked.
#[derive(Debug, Clone)]
pub enum Policy {
    /// Any non-empty password (no `--users`).
    AcceptAny,
    /// The original server's rule (`--auth legacy-parity`).
    LegacyParity,
    /// Argon2 hashes from `--users`, verified on the pool.
    Users(VerifierPool),
}

impl Policy {
    /// The verdict, when it is cheap enough to give on the event loop.
    pub fn verify_inline(&self, name: &str, password: &[u8]) -> Option<bool> {
        match self {
            Policy::AcceptAny => Some(AcceptAny.verify(name, password)),
            Policy::LegacyParity => Some(LegacyParity.verify(name, password)),
            Policy::Users(_) => None,
        }
    }

    /// Short description for the start-up line.
    pub fn describe(&self) -> String {
        match self {
            Policy::AcceptAny => "any-password".into(),
            Policy::LegacyParity => "legacy-parity".into(),
            Policy::Users(pool) => format!("argon2 ({} users)", pool.current().len()),
        }
    }
}

/// A verification request; the verdict goes to `mailbox`.
pub struct Job {
    pub ip: IpAddr,
    pub name: String,
    pub password: Vec<u8>,
    pub mailbox: Arc<Mailbox>,
    pub slot: usize,
    pub connection: u64,
}

/// The users table in force; SIGHUP swaps in a new one.
type CurrentUsers = Arc<RwLock<Arc<Users>>>;

/// Threads that verify passwords against the users file.
#[derive(Debug, Clone)]
pub struct VerifierPool {
    path: PathBuf,
    users: CurrentUsers,
    jobs: Sender<Job>,
}

impl VerifierPool {
    /// Start `threads` verifier threads for the users read from `path`,
    /// applying `backoff` to every check. They end when the last pool handle
    /// is dropped.
    pub fn start(
        path: &Path,
        users: Users,
        backoff: &Arc<Mutex<Backoff>>,
        threads: usize,
    ) -> std::io::Result<VerifierPool> {
        let users = Arc::new(RwLock::new(Arc::new(users)));
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads.max(1) {
            let users = Arc::clone(&users);
            let backoff = Arc::clone(backoff);
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("verifier-{i}"))
                .spawn(move || verify_jobs(&users, &backoff, &queue))?;
        }
        Ok(VerifierPool {
            path: path.to_owned(),
            users,
            jobs,
        })
    }

    /// Queue a verification. Returns the job if the pool is gone.
    pub fn submit(&self, job: Job) -> Result<(), Job> {
        self.jobs.send(job).map_err(|e| e.0)
    }

    /// The users file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Read the users file again and use it for the verifications that
    /// start from now on. On error the table in force stays.
    pub fn reload(&self) -> Result<usize, UsersError> {
        let users = Arc::new(Users::load(&self.path)?);
        let count = users.len();
        *self.users.write().unwrap_or_else(PoisonError::into_inner) = users;
        Ok(count)
    }

    fn current(&self) -> Arc<Users> {
        current(&self.users)
    }
}

fn current(users: &CurrentUsers) -> Arc<Users> {
    Arc::clone(&users.read().unwrap_or_else(PoisonError::into_inner))
}

/// Verify queued passwords. The back-off is applied here, when a job's turn
/// comes, not when it was queued: a burst of attempts from one address,
/// queued before its first failure, costs one or two Argon2 checks, not one
/// each; and failures count even when the client has already hung up.
fn verify_jobs(users: &CurrentUsers, backoff: &Mutex<Backoff>, queue: &Mutex<Receiver<Job>>) {
    let backoff = || backoff.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        let job = {
            let queue = queue.lock().unwrap_or_else(PoisonError::into_inner);
            match queue.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        let Job {
            ip,
            name,
            mut password,
            mailbox,
            slot,
            connection,
        } = job;
        let wait = backoff().wait(ip, Instant::now());
        let decision = if wait.is_zero() {
            let accepted = current(users).verify(&name, &password);
            backoff().record(ip, accepted, Instant::now());
            // Best effort: do not leave the password in freed memory.
            password.fill(0);
            std::hint::black_box(&password);
            Decision::Verified(accepted)
        } else {
            Decision::Deferred {
                wait,
                password: password.into_boxed_slice(),
            }
        };
        mailbox.verdict(Verdict {
            slot,
            connection,
            decision,
        });
    }
}
