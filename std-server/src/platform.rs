//! What differs between Unix and Windows, in one place: how an operator
//! stops and reloads a running server (signals on Unix; console control
//! events and a named event on Windows), file modes and positioned reads,
//! socket options, and the system's error codes.
//!
//! Compiled out on Windows, where they have no counterpart: the systemd
//! notify protocol and socket activation (no socket is ever passed), the
//! descriptor limit (`msglog_std::raise_fd_limit` does nothing there),
//! SIGXFSZ, and Unix permissions (files get the directory's ACL).

use std::sync::Arc;

pub(crate) use imp::*;

/// What an operator asks of a running server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Request {
    /// SIGINT or SIGTERM; Ctrl-C, Ctrl-Break or the console closing.
    Stop,
    /// SIGHUP; `msglog-server reload --dir DIR` on Windows.
    Reload,
}

/// Whether a read shorter than asked for drains a socket, so that the
/// event loop may wait for the next readiness event instead of reading on
/// to `WouldBlock`. True with epoll and kqueue, which report data that
/// arrives later; mio on Windows reports readiness again only after an
/// operation has returned `WouldBlock`, so there every read goes on to it.
pub(crate) const SHORT_READ_DRAINS: bool = cfg!(unix);

/// What is told of each request, on a thread of the platform's.
pub(crate) type OnRequest = Arc<dyn Fn(Request) + Send + Sync>;

#[cfg(unix)]
mod imp {
    use std::fs::{File, Metadata, OpenOptions};
    use std::io;
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::fs::{DirBuilderExt, FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
    use std::path::Path;
    use std::thread::JoinHandle;

    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    use signal_hook::iterator::{Handle, Signals};
    use socket2::Socket;

    use super::{OnRequest, Request};

    pub(crate) use crate::notify::Notifier;

    /// The device every write to vanishes into.
    pub(crate) const NULL_DEVICE: &str = "/dev/null";

    /// What the operator's lines call a reload request.
    pub(crate) const RELOAD: &str = "SIGHUP";

    /// This host's name, if it has one (the NATS sink's front-end id).
    #[cfg(feature = "nats")]
    pub(crate) fn host_name() -> Option<String> {
        let mut buffer = [0u8; 256];
        // SAFETY: gethostname writes at most `len` bytes into the buffer we own.
        let ok = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) } == 0;
        let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
        let name = String::from_utf8_lossy(&buffer[..end]).into_owned();
        (ok && !name.is_empty()).then_some(name)
    }

    /// Resolves once SIGINT or SIGTERM arrives (`export --follow`'s stop),
    /// on the tokio runtime it is polled on.
    #[cfg(feature = "nats")]
    pub(crate) fn stop_signal() -> io::Result<impl std::future::Future<Output = ()>> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        })
    }

    /// The absolute path of an existing directory, links resolved.
    pub(crate) fn canonical_dir(dir: &Path) -> io::Result<std::path::PathBuf> {
        dir.canonicalize()
    }

    /// Stop and reload requests (SIGINT, SIGTERM; SIGHUP if asked for),
    /// told on a thread of their own until dropped.
    pub(crate) struct Requests {
        handle: Handle,
        thread: Option<JoinHandle<()>>,
    }

    impl Requests {
        /// Catch the stop signals, and SIGHUP if `reload_dir` is given.
        pub(crate) fn start(
            reload_dir: Option<&Path>,
            on_request: OnRequest,
        ) -> io::Result<Requests> {
            let mut wanted = vec![SIGINT, SIGTERM];
            if reload_dir.is_some() {
                wanted.push(SIGHUP);
            }
            let mut signals = Signals::new(wanted)?;
            let handle = signals.handle();
            let thread = std::thread::Builder::new()
                .name("signals".into())
                .spawn(move || {
                    for signal in signals.forever() {
                        on_request(if signal == SIGHUP {
                            Request::Reload
                        } else {
                            Request::Stop
                        });
                    }
                })?;
            Ok(Requests {
                handle,
                thread: Some(thread),
            })
        }
    }

    impl Drop for Requests {
        fn drop(&mut self) {
            self.handle.close();
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
    }

    /// `msglog-server reload --dir DIR`: SIGHUP to the process holding the
    /// directory's lock (its PID is in the lock file).
    pub(crate) fn request_reload(_dir: &Path, holder: Option<u32>) -> io::Result<()> {
        let pid = holder.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "no server holds this log directory",
            )
        })?;
        let pid = libc::pid_t::try_from(pid).map_err(io::Error::other)?;
        // SAFETY: kill(2) has no memory preconditions.
        if unsafe { libc::kill(pid, libc::SIGHUP) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Ignore SIGXFSZ, so that writing past `ulimit -f` fails with EFBIG
    /// (which the server answers with 0xFF) instead of killing the process.
    pub(crate) fn ignore_file_size_signal() -> io::Result<()> {
        // SAFETY: installing SIG_IGN has no preconditions.
        if unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) } == libc::SIG_ERR {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// The descriptors systemd passed (`sd_listen_fds(3)`), each owned once;
    /// the caller makes sure this runs once per process.
    pub(crate) fn passed_sockets() -> io::Result<Vec<(i32, Socket)>> {
        Ok(sd_notify::listen_fds()?
            // SAFETY: LISTEN_PID names this process, so systemd passed these
            // descriptors to it (sd_listen_fds(3)), and the caller takes
            // ownership of them only once.
            .map(|fd| (fd, Socket::from(unsafe { OwnedFd::from_raw_fd(fd) })))
            .collect())
    }

    /// Whether a passed socket listens.
    pub(crate) fn is_listener(socket: &Socket) -> io::Result<bool> {
        use std::os::fd::AsRawFd;
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: an int and its size, for a descriptor the socket owns
        // (socket2 has no SO_ACCEPTCONN on macOS).
        let result = unsafe {
            libc::getsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ACCEPTCONN,
                (&mut value as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        if result != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(value != 0)
    }

    /// Options of a listening socket before `bind`: restarting must not wait
    /// for the previous run's TIME_WAIT connections.
    pub(crate) fn prepare_listener(socket: &Socket) -> io::Result<()> {
        socket.set_reuse_address(true)
    }

    /// The errors of binding `::` on a host without IPv6.
    pub(crate) fn ipv6_unavailable(error: &io::Error) -> bool {
        matches!(
            error.raw_os_error(),
            Some(libc::EAFNOSUPPORT | libc::EADDRNOTAVAIL | libc::EPROTONOSUPPORT)
        )
    }

    /// An accept error of one pending connection (the next may succeed).
    pub(crate) fn accept_error_of_one_connection(error: &io::Error) -> bool {
        error.raw_os_error() == Some(libc::EPROTO)
    }

    /// An accept error that means descriptors or memory ran out.
    pub(crate) fn out_of_descriptors(error: &io::Error) -> bool {
        matches!(
            error.raw_os_error(),
            Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
        )
    }

    /// `ENOTDIR`.
    pub(crate) fn not_a_directory() -> io::Error {
        io::Error::from_raw_os_error(libc::ENOTDIR)
    }

    /// `EACCES`.
    pub(crate) fn permission_denied() -> io::Error {
        io::Error::from_raw_os_error(libc::EACCES)
    }

    /// Create `dir` and its parents, mode 0755 less the umask.
    pub(crate) fn create_dir_all(dir: &Path) -> io::Result<()> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
    }

    /// A file created by `options` gets `mode`, less the umask.
    pub(crate) fn create_mode(options: &mut OpenOptions, mode: u32) -> &mut OpenOptions {
        options.mode(mode)
    }

    /// Give a rewritten file the owner and mode of the one it replaces.
    pub(crate) fn copy_owner_and_mode(file: &File, old: &Metadata) -> io::Result<()> {
        // Its owner first: chown clears set-id bits, chmod restores the mode.
        std::os::unix::fs::fchown(file, Some(old.uid()), Some(old.gid()))?;
        file.set_permissions(std::fs::Permissions::from_mode(old.mode() & 0o7777))
    }

    /// The mode of a file others may read (`None` if they may not).
    pub(crate) fn readable_by_everyone(metadata: &Metadata) -> Option<u32> {
        (metadata.mode() & 0o004 != 0).then_some(metadata.mode() & 0o7777)
    }

    /// A character device (e.g. `/dev/null` as a side file).
    pub(crate) fn is_char_device(metadata: &Metadata) -> bool {
        metadata.file_type().is_char_device()
    }

    /// Read `buffer.len()` bytes at `offset`, leaving the file's position.
    pub(crate) fn read_exact_at(file: &File, buffer: &mut [u8], offset: u64) -> io::Result<()> {
        file.read_exact_at(buffer, offset)
    }

    /// Read up to `buffer.len()` bytes at `offset`, leaving the file's position.
    pub(crate) fn read_at(file: &File, buffer: &mut [u8], offset: u64) -> io::Result<usize> {
        file.read_at(buffer, offset)
    }

    /// Write all of `bytes` at `offset`.
    pub(crate) fn write_all_at(file: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
        file.write_all_at(bytes, offset)
    }

    /// Make a directory's entries (a new file's name) durable.
    pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    /// Whether this process may write (and, for a directory, enter) `path`,
    /// by `faccessat(2)` with the effective ids; a read-only filesystem is EROFS.
    pub(crate) fn may_write(path: &Path) -> io::Result<()> {
        let mode = if path.is_dir() {
            libc::W_OK | libc::X_OK
        } else {
            libc::W_OK
        };
        let path = std::ffi::CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: a NUL-terminated path that outlives the call; no other memory.
        let result =
            unsafe { libc::faccessat(libc::AT_FDCWD, path.as_ptr(), mode, libc::AT_EACCESS) };
        if result == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Whether some process holds a `flock` on `lock`, found in `/proc/locks`
    /// by its device and inode (nothing is locked or opened for writing).
    pub(crate) fn lock_is_held(lock: &Path) -> bool {
        let Ok(metadata) = std::fs::metadata(lock) else {
            return false;
        };
        // `dev_t` is 32 bits on macOS (where there is no /proc/locks anyway).
        #[allow(clippy::useless_conversion, clippy::unnecessary_cast)]
        let dev = metadata.dev() as libc::dev_t;
        let (major, minor) = (libc::major(dev), libc::minor(dev));
        let id = format!("{major:02x}:{minor:02x}:{}", metadata.ino());
        let Ok(locks) = std::fs::read_to_string("/proc/locks") else {
            return false;
        };
        locks.lines().any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.get(1) == Some(&"FLOCK") && fields.get(5) == Some(&id.as_str())
        })
    }

    /// Root, or the CAP_NET_BIND_SERVICE capability in effect.
    pub(crate) fn may_bind_privileged() -> bool {
        const CAP_NET_BIND_SERVICE: u32 = 10;
        let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
            return false;
        };
        status
            .lines()
            .find_map(|line| line.strip_prefix("CapEff:"))
            .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
            .is_some_and(|caps| caps & (1 << CAP_NET_BIND_SERVICE) != 0)
    }

    /// The first port anyone may bind.
    pub(crate) fn unprivileged_port_start() -> u16 {
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(1024)
    }

    /// Clock ticks per second and the page size, for `/proc/self/stat`.
    pub(crate) fn clock_ticks_and_page_size() -> (i64, i64) {
        // SAFETY: sysconf reads a constant of the system.
        unsafe {
            (
                libc::sysconf(libc::_SC_CLK_TCK) as i64,
                libc::sysconf(libc::_SC_PAGESIZE) as i64,
            )
        }
    }

    /// Wake a reader of `socket` only once `bytes` have queued (or the
    /// stream ends): `SO_RCVLOWAT`, on Linux; `Ok(false)` elsewhere, where
    /// the mark also holds back non-blocking reads.
    pub(crate) fn set_receive_low_water(
        socket: &mio::net::TcpStream,
        bytes: usize,
    ) -> io::Result<bool> {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
            // SAFETY: an int and its size, for a descriptor the stream owns.
            let result = unsafe {
                libc::setsockopt(
                    socket.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVLOWAT,
                    (&value as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if result != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(true)
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = (socket, bytes);
            Ok(false)
        }
    }

    /// A mio stream as a blocking std one.
    pub(crate) fn into_std(stream: mio::net::TcpStream) -> std::net::TcpStream {
        std::net::TcpStream::from(OwnedFd::from(stream))
    }

    /// Stdout as a file of its own, unbuffered (one write per chunk).
    pub(crate) fn stdout_file() -> io::Result<File> {
        use std::os::fd::AsFd;
        Ok(File::from(io::stdout().as_fd().try_clone_to_owned()?))
    }
}

#[cfg(windows)]
mod imp {
    use std::fs::{File, Metadata, OpenOptions};
    use std::io;
    use std::os::windows::ffi::OsStrExt;
    use std::os::windows::fs::FileExt;
    use std::os::windows::io::{AsHandle, OwnedSocket};
    use std::path::Path;
    use std::sync::{Condvar, Mutex, Once};
    use std::thread::JoinHandle;
    use std::time::Duration;

    use socket2::Socket;
    use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, WAIT_OBJECT_0};
    use windows_sys::Win32::Networking::WinSock::{
        WSAEADDRNOTAVAIL, WSAEAFNOSUPPORT, WSAEMFILE, WSAENOBUFS, WSAEPROTONOSUPPORT,
    };
    use windows_sys::Win32::System::Console::{
        SetConsoleCtrlHandler, CTRL_BREAK_EVENT, CTRL_CLOSE_EVENT, CTRL_C_EVENT,
        CTRL_SHUTDOWN_EVENT,
    };
    use windows_sys::Win32::System::Threading::{
        CreateEventW, OpenEventW, SetEvent, WaitForMultipleObjects, EVENT_MODIFY_STATE, INFINITE,
    };

    use super::{OnRequest, Request};

    /// This host's name, if it has one (the NATS sink's front-end id).
    #[cfg(feature = "nats")]
    pub(crate) fn host_name() -> Option<String> {
        std::env::var("COMPUTERNAME")
            .ok()
            .filter(|name| !name.is_empty())
    }

    /// Resolves once Ctrl-C, Ctrl-Break or a console close arrives
    /// (`export --follow`'s stop), on the tokio runtime it is polled on.
    #[cfg(feature = "nats")]
    pub(crate) fn stop_signal() -> io::Result<impl std::future::Future<Output = ()>> {
        let mut interrupt = tokio::signal::windows::ctrl_c()?;
        let mut brk = tokio::signal::windows::ctrl_break()?;
        let mut close = tokio::signal::windows::ctrl_close()?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = brk.recv() => {}
                _ = close.recv() => {}
            }
        })
    }

    /// Where a reload of the server logging to `dir` is asked for on Windows:
    /// an event named after the directory (FNV-1a of its canonical path,
    /// case-folded as NTFS compares names), so that servers of different
    /// directories do not reload each other.
    pub(crate) fn reload_event_name(dir: &Path) -> String {
        let canonical = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
        let text = canonical.to_string_lossy().to_lowercase();
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in text.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        format!("msglog-reload-{hash:016x}")
    }

    /// The device every write to vanishes into.
    pub(crate) const NULL_DEVICE: &str = "NUL";

    /// What the operator's lines call a reload request.
    pub(crate) const RELOAD: &str = "reload";

    /// The absolute path of an existing directory, links resolved, as an
    /// operator writes it (`C:\logs`, not the `\\?\C:\logs` that
    /// canonicalize returns, where that names the same directory).
    pub(crate) fn canonical_dir(dir: &Path) -> io::Result<std::path::PathBuf> {
        let canonical = dir.canonicalize()?;
        let plain = canonical
            .to_str()
            .and_then(|text| text.strip_prefix(r"\\?\"))
            .filter(|rest| rest.as_bytes().get(1) == Some(&b':') && rest.len() < 260)
            .map(std::path::PathBuf::from);
        Ok(plain.unwrap_or(canonical))
    }

    /// Windows has no service manager notify protocol: nothing is said.
    #[derive(Debug)]
    pub(crate) struct Notifier;

    impl Notifier {
        pub(crate) fn from_env() -> Notifier {
            Notifier
        }
        pub(crate) fn ready(&self, _status: &str) {}
        pub(crate) fn reloading(&self) {}
        pub(crate) fn stopping(&self, _status: &str) {}
        pub(crate) fn status(&self, _status: &str) {}
    }

    /// Who is told of console control events, and whether the server is
    /// still running (a console's close waits for its stop).
    struct Console {
        on_request: Mutex<Option<OnRequest>>,
        running: Mutex<bool>,
        stopped: Condvar,
    }

    static CONSOLE: Console = Console {
        on_request: Mutex::new(None),
        running: Mutex::new(false),
        stopped: Condvar::new(),
    };

    /// How long a console's close waits for the stop; Windows ends the
    /// process about 5 s after the event in any case.
    const CLOSE_WAIT: Duration = Duration::from_secs(30);

    unsafe extern "system" fn console_handler(event: u32) -> windows_sys::core::BOOL {
        let close = matches!(event, CTRL_CLOSE_EVENT | CTRL_SHUTDOWN_EVENT);
        if !close && !matches!(event, CTRL_C_EVENT | CTRL_BREAK_EVENT) {
            // CTRL_LOGOFF_EVENT: a user logging off is no reason to stop.
            return 0;
        }
        let on_request = CONSOLE.on_request.lock().ok().and_then(|g| g.clone());
        let Some(on_request) = on_request else {
            return 0;
        };
        on_request(Request::Stop);
        if close {
            // The process ends when this returns: let the stop drain first.
            if let Ok(running) = CONSOLE.running.lock() {
                let _ = CONSOLE
                    .stopped
                    .wait_timeout_while(running, CLOSE_WAIT, |running| *running);
            }
        }
        1
    }

    /// An event handle, closed when dropped.
    struct Event(HANDLE);

    // SAFETY: an event handle may be used and closed from any thread.
    unsafe impl Send for Event {}

    impl Drop for Event {
        fn drop(&mut self) {
            // SAFETY: a handle this value owns, closed once.
            unsafe { CloseHandle(self.0) };
        }
    }

    fn wide(text: &str) -> Vec<u16> {
        std::ffi::OsStr::new(text)
            .encode_wide()
            .chain(Some(0))
            .collect()
    }

    /// An auto-reset event: named `name`, or anonymous.
    fn create_event(name: Option<&str>) -> io::Result<Event> {
        let name = name.map(wide);
        let name_ptr = name.as_ref().map_or(std::ptr::null(), |n| n.as_ptr());
        // SAFETY: a NUL-terminated name (or null) that outlives the call.
        let handle = unsafe { CreateEventW(std::ptr::null(), 0, 0, name_ptr) };
        if handle.is_null() {
            return Err(io::Error::last_os_error());
        }
        Ok(Event(handle))
    }

    /// The namespaces tried in order: `Global\` reaches a server running as
    /// a service from an operator's session; creating there needs a
    /// privilege an ordinary user lacks, so `Local\` is the fallback.
    const NAMESPACES: [&str; 2] = ["Global\\", "Local\\"];

    /// Stop requests (Ctrl-C, Ctrl-Break, the console closing) and, if
    /// asked for, reload requests (the named event of `reload_event_name`),
    /// told until dropped.
    pub(crate) struct Requests {
        quit: Option<Event>,
        thread: Option<JoinHandle<()>>,
    }

    impl Requests {
        /// Handle console control events; reload requests for `reload_dir`.
        pub(crate) fn start(
            reload_dir: Option<&Path>,
            on_request: OnRequest,
        ) -> io::Result<Requests> {
            static INSTALL: Once = Once::new();
            let mut installed = Ok(());
            INSTALL.call_once(|| {
                // SAFETY: a handler that lives as long as the process.
                if unsafe { SetConsoleCtrlHandler(Some(console_handler), 1) } == 0 {
                    installed = Err(io::Error::last_os_error());
                }
            });
            installed?;
            *CONSOLE
                .on_request
                .lock()
                .map_err(|_| io::Error::other("poisoned"))? = Some(on_request.clone());
            *CONSOLE
                .running
                .lock()
                .map_err(|_| io::Error::other("poisoned"))? = true;
            let mut requests = Requests {
                quit: None,
                thread: None,
            };
            let Some(dir) = reload_dir else {
                return Ok(requests);
            };
            let name = reload_event_name(dir);
            let reload = NAMESPACES
                .iter()
                .map(|namespace| create_event(Some(&format!("{namespace}{name}"))))
                .reduce(|first, second| first.or(second))
                .expect("two namespaces")?;
            let quit = create_event(None)?;
            let handles = [reload.0 as usize, quit.0 as usize];
            requests.quit = Some(quit);
            requests.thread = Some(
                std::thread::Builder::new()
                    .name("reload-event".into())
                    .spawn(move || {
                        let _reload = reload;
                        let handles = handles.map(|h| h as HANDLE);
                        loop {
                            // SAFETY: two event handles kept open until this thread ends.
                            let woken =
                                unsafe { WaitForMultipleObjects(2, handles.as_ptr(), 0, INFINITE) };
                            if woken != WAIT_OBJECT_0 {
                                return;
                            }
                            on_request(Request::Reload);
                        }
                    })?,
            );
            Ok(requests)
        }
    }

    impl Drop for Requests {
        fn drop(&mut self) {
            if let Some(quit) = &self.quit {
                // SAFETY: an event handle this value owns.
                unsafe { SetEvent(quit.0) };
            }
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
            if let Ok(mut on_request) = CONSOLE.on_request.lock() {
                *on_request = None;
            }
            if let Ok(mut running) = CONSOLE.running.lock() {
                *running = false;
            }
            CONSOLE.stopped.notify_all();
        }
    }

    /// `msglog-server reload --dir DIR`: sets the named event the server
    /// logging to DIR waits on.
    pub(crate) fn request_reload(dir: &Path, _holder: Option<u32>) -> io::Result<()> {
        let name = reload_event_name(dir);
        let mut last = None;
        for namespace in NAMESPACES {
            let name = wide(&format!("{namespace}{name}"));
            // SAFETY: a NUL-terminated name that outlives the call.
            let handle = unsafe { OpenEventW(EVENT_MODIFY_STATE, 0, name.as_ptr()) };
            if handle.is_null() {
                last = Some(io::Error::last_os_error());
                continue;
            }
            let event = Event(handle);
            // SAFETY: an event handle opened above.
            if unsafe { SetEvent(event.0) } == 0 {
                return Err(io::Error::last_os_error());
            }
            return Ok(());
        }
        Err(last.unwrap_or_else(|| io::ErrorKind::NotFound.into()))
    }

    /// No SIGXFSZ on Windows.
    pub(crate) fn ignore_file_size_signal() -> io::Result<()> {
        Ok(())
    }

    /// No socket activation on Windows: nothing is passed.
    pub(crate) fn passed_sockets() -> io::Result<Vec<(i32, Socket)>> {
        Ok(Vec::new())
    }

    /// Never asked: no socket is passed on Windows.
    pub(crate) fn is_listener(_socket: &Socket) -> io::Result<bool> {
        Ok(true)
    }

    /// Nothing before `bind`: SO_REUSEADDR on Windows would let another
    /// process bind the same port, and a listener does not wait for
    /// TIME_WAIT connections there anyway.
    pub(crate) fn prepare_listener(_socket: &Socket) -> io::Result<()> {
        Ok(())
    }

    /// The errors of binding `::` on a host without IPv6.
    pub(crate) fn ipv6_unavailable(error: &io::Error) -> bool {
        matches!(
            error.raw_os_error(),
            Some(WSAEAFNOSUPPORT | WSAEADDRNOTAVAIL | WSAEPROTONOSUPPORT)
        )
    }

    /// Winsock reports a pending connection's failure as a reset or an abort.
    pub(crate) fn accept_error_of_one_connection(_error: &io::Error) -> bool {
        false
    }

    /// An accept error that means sockets or buffers ran out.
    pub(crate) fn out_of_descriptors(error: &io::Error) -> bool {
        matches!(error.raw_os_error(), Some(WSAEMFILE | WSAENOBUFS))
    }

    /// `ERROR_DIRECTORY`.
    pub(crate) fn not_a_directory() -> io::Error {
        io::Error::from_raw_os_error(267)
    }

    /// `ERROR_ACCESS_DENIED`.
    pub(crate) fn permission_denied() -> io::Error {
        io::Error::from_raw_os_error(5)
    }

    /// Create `dir` and its parents; they inherit the parent's ACL.
    pub(crate) fn create_dir_all(dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    /// Files inherit the directory's ACL: no mode.
    pub(crate) fn create_mode(options: &mut OpenOptions, _mode: u32) -> &mut OpenOptions {
        options
    }

    /// A rewritten file keeps the read-only attribute of the one it replaces
    /// (its ACL is the directory's).
    pub(crate) fn copy_owner_and_mode(file: &File, old: &Metadata) -> io::Result<()> {
        file.set_permissions(old.permissions())
    }

    /// ACLs are not read: `None`.
    pub(crate) fn readable_by_everyone(_metadata: &Metadata) -> Option<u32> {
        None
    }

    /// `NUL` is not a file.
    pub(crate) fn is_char_device(metadata: &Metadata) -> bool {
        !metadata.is_file() && !metadata.is_dir()
    }

    /// Read `buffer.len()` bytes at `offset` (this moves the file's position:
    /// the logs are opened for appending, which ignores it).
    pub(crate) fn read_exact_at(
        file: &File,
        mut buffer: &mut [u8],
        mut offset: u64,
    ) -> io::Result<()> {
        while !buffer.is_empty() {
            match file.seek_read(buffer, offset) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    buffer = &mut buffer[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Read up to `buffer.len()` bytes at `offset`.
    pub(crate) fn read_at(file: &File, buffer: &mut [u8], offset: u64) -> io::Result<usize> {
        match file.seek_read(buffer, offset) {
            // Past the end, Windows reports EOF as an error.
            Err(e) if e.raw_os_error() == Some(38) => Ok(0),
            other => other,
        }
    }

    /// Write all of `bytes` at `offset`.
    pub(crate) fn write_all_at(file: &File, mut bytes: &[u8], mut offset: u64) -> io::Result<()> {
        while !bytes.is_empty() {
            match file.seek_write(bytes, offset) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    bytes = &bytes[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// NTFS journals its directory entries; a directory cannot be flushed.
    pub(crate) fn sync_dir(_dir: &Path) -> io::Result<()> {
        Ok(())
    }

    /// Whether `path` may be written: the read-only attribute (ACLs are
    /// left to the open itself).
    pub(crate) fn may_write(path: &Path) -> io::Result<()> {
        let metadata = std::fs::metadata(path)?;
        if metadata.is_file() && metadata.permissions().readonly() {
            return Err(permission_denied());
        }
        Ok(())
    }

    /// Not known without opening the file: `false`.
    pub(crate) fn lock_is_held(_lock: &Path) -> bool {
        false
    }

    /// Any user may bind any port on Windows.
    pub(crate) fn may_bind_privileged() -> bool {
        true
    }

    /// Any user may bind any port on Windows.
    pub(crate) fn unprivileged_port_start() -> u16 {
        0
    }

    /// No `/proc` on Windows: the process metrics are left out.
    pub(crate) fn clock_ticks_and_page_size() -> (i64, i64) {
        (0, 0)
    }

    /// No `SO_RCVLOWAT` for reads on Windows: nothing to do.
    pub(crate) fn set_receive_low_water(
        _socket: &mio::net::TcpStream,
        _bytes: usize,
    ) -> io::Result<bool> {
        Ok(false)
    }

    /// A mio stream as a blocking std one.
    pub(crate) fn into_std(stream: mio::net::TcpStream) -> std::net::TcpStream {
        std::net::TcpStream::from(OwnedSocket::from(stream))
    }

    /// Stdout as a file of its own, unbuffered (one write per chunk).
    pub(crate) fn stdout_file() -> io::Result<File> {
        Ok(File::from(io::stdout().as_handle().try_clone_to_owned()?))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    /// What `msglog-server reload --dir DIR` does reaches the server of DIR
    /// (SIGHUP to the lock holder on Unix, the named event on Windows), and
    /// only once asked.
    #[test]
    fn a_reload_request_reaches_the_server_of_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let _lock = crate::dir_lock::lock(dir.path()).unwrap();
        let (told, requests) = mpsc::channel();
        let told = std::sync::Mutex::new(told);
        let _requests = Requests::start(
            Some(dir.path()),
            Arc::new(move |request| {
                let _ = told.lock().unwrap().send(request);
            }),
        )
        .unwrap();
        assert!(requests.try_recv().is_err());
        crate::request_reload(dir.path()).unwrap();
        assert_eq!(
            requests.recv_timeout(Duration::from_secs(30)),
            Ok(Request::Reload)
        );
    }

    /// Nobody serves this directory: the request says so.
    #[test]
    fn a_reload_request_without_a_server_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(crate::dir_lock::LOCK_FILE), b"").unwrap();
        let error = crate::request_reload(dir.path()).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::NotFound, "{error}");
    }
}
