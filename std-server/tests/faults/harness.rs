//! Processes for the fault tests: a msglog-server started however a test
//! needs (under `sh -c 'ulimit ...'`, under strace, on a fixed port to be
//! restarted), killed on every path, and what /proc says about it.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use crate::common::{wait_until, Captured, BIN, PATIENCE};

/// The client binaries are built next to the server (scripts/faults.sh builds both).
pub fn client_bin(name: &str) -> PathBuf {
    let path = Path::new(BIN).with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: run scripts/faults.sh, which builds msglog-client too",
        path.display()
    );
    path
}

/// How to start a server.
#[derive(Debug, Clone)]
pub struct Launch {
    pub args: Vec<String>,
    pub dir: PathBuf,
    /// 0 picks a free port.
    pub port: u16,
    /// Shell commands run before `exec msglog-server` (e.g. `ulimit -f 256`).
    pub shell_prefix: Option<String>,
    /// Run under `strace -f`, writing the trace to this file.
    pub strace: Option<PathBuf>,
    /// Raw stream mode (stdout discarded) instead of framed mode in `dir`.
    pub raw: bool,
}

impl Launch {
    pub fn new(dir: &Path, args: &[&str]) -> Launch {
        Launch {
            args: args.iter().map(|a| a.to_string()).collect(),
            dir: dir.to_owned(),
            port: 0,
            shell_prefix: None,
            strace: None,
            raw: false,
        }
    }

    /// The raw stream server.
    pub fn raw(dir: &Path) -> Launch {
        Launch {
            raw: true,
            ..Launch::new(dir, &[])
        }
    }

    pub fn port(mut self, port: u16) -> Launch {
        self.port = port;
        self
    }

    pub fn shell(mut self, prefix: &str) -> Launch {
        self.shell_prefix = Some(prefix.to_owned());
        self
    }

    pub fn strace(mut self, trace: &Path) -> Launch {
        self.strace = Some(trace.to_owned());
        self
    }

    fn command(&self) -> Command {
        let mut server_args: Vec<String> = vec!["--bind".into(), "127.0.0.1".into()];
        if self.raw {
            server_args.push("--raw".into());
        } else {
            server_args.extend(["--dir".into(), self.dir.display().to_string()]);
        }
        server_args.extend(self.args.iter().cloned());
        server_args.push(self.port.to_string());
        let mut command = if let Some(trace) = &self.strace {
            let mut c = Command::new("strace");
            c.args(["-f", "-qq", "-yy", "-o"])
                .arg(trace)
                .args([
                    "-e",
                    "trace=write,writev,sendto,sendmsg,fdatasync,fsync",
                    "--",
                ])
                .arg(BIN)
                .args(&server_args);
            c
        } else if let Some(prefix) = &self.shell_prefix {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!("{prefix}; exec \"$0\" \"$@\""))
                .arg(BIN)
                .args(&server_args);
            c
        } else {
            let mut c = Command::new(BIN);
            c.args(&server_args);
            c
        };
        command
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        command
    }
}

/// A running msglog-server; SIGKILLed (with its wrapper) on drop.
pub struct Server {
    child: Child,
    /// The msglog-server process itself (differs from `child` under strace).
    pub pid: i32,
    pub addr: SocketAddr,
    pub launch: Launch,
    stderr: Arc<Captured>,
    exited: Option<ExitStatus>,
}

impl Server {
    pub fn start(launch: Launch) -> Server {
        Server::try_start(launch).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Start and wait for the start-up line; Err with stderr if it exits first.
    pub fn try_start(launch: Launch) -> Result<Server, String> {
        let mut child = launch
            .command()
            .spawn()
            .map_err(|e| format!("cannot start the server: {e}"))?;
        let stderr = Captured::spawn(child.stderr.take().expect("stderr is piped"));
        let pid = child.id() as i32;
        let mut server = Server {
            child,
            pid,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            launch,
            stderr,
            exited: None,
        };
        // Stderr closes first if the server exits instead.
        let Some(text) = server
            .stderr
            .wait(PATIENCE * 3, |t| t.contains("listening on "))
        else {
            let mut status = None;
            wait_until(PATIENCE, || {
                status = server.child.try_wait().expect("try_wait");
                status.is_some()
            });
            server.exited = status;
            return Err(match status {
                Some(status) => format!(
                    "server exited with {status} before listening; stderr:\n{}",
                    server.stderr_text()
                ),
                None => format!("no start-up line; stderr:\n{}", server.stderr_text()),
            });
        };
        let start = text.find("listening on ").unwrap_or(0) + "listening on ".len();
        server.addr = text[start..]
            .split_whitespace()
            .next()
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("bad start-up line: {text}"))?;
        if server.launch.strace.is_some() {
            server.pid = only_child(server.child.id() as i32)
                .ok_or_else(|| "no msglog-server under strace".to_string())?;
        }
        Ok(server)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn stderr_text(&self) -> String {
        self.stderr.text()
    }

    /// Wait (bounded) until stderr satisfies `condition`.
    pub fn wait_stderr(&self, within: Duration, condition: impl Fn(&str) -> bool) -> bool {
        self.stderr.wait(within, condition).is_some()
    }

    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr).expect("connect to the server");
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream.set_write_timeout(Some(PATIENCE)).unwrap();
        stream.set_nodelay(true).unwrap();
        stream
    }

    pub fn is_running(&mut self) -> bool {
        if self.exited.is_some() {
            return false;
        }
        match self.child.try_wait() {
            Ok(None) => true,
            Ok(Some(status)) => {
                self.exited = Some(status);
                false
            }
            Err(_) => false,
        }
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on a process we started and have not reaped.
        unsafe { libc::kill(self.pid, signal) };
    }

    /// SIGKILL, as a crash: nothing is flushed, nothing cleaned up.
    pub fn kill9(mut self) {
        self.signal(libc::SIGKILL);
        let _ = self.child.kill();
        self.exited = self.child.wait().ok();
    }

    /// SIGTERM and wait for a clean exit; returns stderr.
    pub fn stop(mut self) -> String {
        self.signal(libc::SIGTERM);
        let mut status = None;
        wait_until(PATIENCE * 2, || {
            status = self.child.try_wait().expect("try_wait");
            status.is_some()
        });
        let status = status
            .unwrap_or_else(|| panic!("server did not stop; stderr:\n{}", self.stderr_text()));
        self.exited = Some(status);
        self.wait_stderr(Duration::from_secs(2), |t| t.contains("stopped after"));
        let text = self.stderr_text();
        assert!(status.success(), "exit status {status}; stderr:\n{text}");
        text
    }

    pub fn peak_rss_kib(&self) -> u64 {
        status_field(self.pid, "VmHWM:").unwrap_or(0)
    }

    pub fn rss_kib(&self) -> u64 {
        status_field(self.pid, "VmRSS:").unwrap_or(0)
    }

    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds(self.pid)
    }

    /// Open descriptors of the server process.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid)).map_or(0, |d| d.count())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.exited.is_none() {
            self.signal(libc::SIGKILL);
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The one child of `pid` (the traced server under strace).
fn only_child(pid: i32) -> Option<i32> {
    let mut found = None;
    wait_until(PATIENCE, || {
        found = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .ok()
            .and_then(|text| text.split_whitespace().next().and_then(|p| p.parse().ok()));
        found.is_some()
    });
    found
}

/// A `kB` field of /proc/PID/status.
pub fn status_field(pid: i32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    line[field.len()..].split_whitespace().next()?.parse().ok()
}

/// utime + stime of a process (all its threads), in seconds.
pub fn cpu_seconds(pid: i32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let Some(close) = stat.rfind(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
    // utime and stime are fields 14 and 15 of proc(5); the state is field 3.
    let ticks: u64 =
        fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    ticks as f64 / per_second
}

/// Raise this process's open-file limit to its hard limit; returns it.
pub fn raise_own_fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only access the struct we pass.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
    }
    limit.rlim_cur
}

/// A tmpfs mounted for one test, unmounted on drop.
pub struct Tmpfs {
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mount a tmpfs of `size` (e.g. `1m`) with extra `options`; Err (with
    /// the reason) where this sandbox forbids mounting.
    pub fn mount(size: &str, options: &str) -> Result<Tmpfs, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().to_owned();
        let mut opts = format!("size={size}");
        if !options.is_empty() {
            opts.push(',');
            opts.push_str(options);
        }
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &opts, "tmpfs"])
            .arg(&path)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(Tmpfs { path, _dir: dir })
    }

    /// Bytes still free.
    pub fn available(&self) -> u64 {
        let c_path = std::ffi::CString::new(self.path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: statvfs writes only into the struct we pass.
        unsafe {
            let mut stat: libc::statvfs = std::mem::zeroed();
            if libc::statvfs(c_path.as_ptr(), &mut stat) != 0 {
                return 0;
            }
            stat.f_bavail * stat.f_frsize
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Median, 10th and 90th percentile of `samples`, in the same unit.
pub fn percentiles(samples: &[f64]) -> (f64, f64, f64) {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.1), at(0.9))
}
