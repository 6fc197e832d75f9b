//! Who may log in: the authentication policy, and the small thread pool that
//! runs slow Argon2 verifications off the event loops.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};

use msglog_core::{AcceptAny, Authenticator, LegacyParity};

use crate::mailbox::{Mailbox, Verdict};
use crate::users::Users;

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
            Policy::Users(pool) => format!("argon2 ({} users)", pool.users.len()),
        }
    }
}

/// A verification request; the verdict goes to `mailbox`.
pub struct Job {
    pub name: String,
    pub password: Vec<u8>,
    pub mailbox: Arc<Mailbox>,
    pub slot: usize,
    pub connection: u64,
}

/// Threads that verify passwords against the users file.
#[derive(Debug, Clone)]
pub struct VerifierPool {
    users: Arc<Users>,
    jobs: Sender<Job>,
}

impl VerifierPool {
    /// Start `threads` verifier threads. They end when the last pool handle is dropped.
    pub fn start(users: Users, threads: usize) -> std::io::Result<VerifierPool> {
        let users = Arc::new(users);
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads.max(1) {
            let users = Arc::clone(&users);
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("verifier-{i}"))
                .spawn(move || verify_jobs(&users, &queue))?;
        }
        Ok(VerifierPool { users, jobs })
    }

    /// Queue a verification. Returns the job if the pool is gone.
    pub fn submit(&self, job: Job) -> Result<(), Job> {
        self.jobs.send(job).map_err(|e| e.0)
    }
}

fn verify_jobs(users: &Users, queue: &Mutex<Receiver<Job>>) {
    loop {
        let job = {
            let queue = queue.lock().unwrap_or_else(PoisonError::into_inner);
            match queue.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        let Job {
            name,
            mut password,
            mailbox,
            slot,
            connection,
        } = job;
        let accepted = users.verify(&name, &password);
        // Best effort: do not leave the password in freed memory.
        password.fill(0);
        std::hint::black_box(&password);
        mailbox.verdict(Verdict {
            slot,
            connection,
            accepted,
        });
    }
}
