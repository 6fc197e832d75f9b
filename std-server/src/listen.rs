//! Binding the listening socket: `[::]` dual-stack by default, falling back
//! to `0.0.0.0` where IPv6 is unavailable, or one chosen address.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

/// Why no listening socket could be made. A privileged port refused for
/// want of permission names the ways to get it.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}{}", privileged_port_hint(*.addr, .source))]
pub struct BindError {
    /// The address asked for.
    pub addr: SocketAddr,
    /// What the system said.
    #[source]
    pub source: io::Error,
}

/// The first port an unprivileged process may bind (Linux's
/// `net.ipv4.ip_unprivileged_port_start`, 1024 unless changed).
pub(crate) fn unprivileged_port_start() -> u16 {
    crate::platform::unprivileged_port_start()
}

/// What to do about a port below the unprivileged range refused with EACCES.
fn privileged_port_hint(addr: SocketAddr, source: &io::Error) -> String {
    let start = unprivileged_port_start();
    if source.kind() != io::ErrorKind::PermissionDenied || addr.port() >= start {
        return String::new();
    }
    format!(
        " (ports below {start} need root, the CAP_NET_BIND_SERVICE capability \
         (`setcap cap_net_bind_service=+ep`, or AmbientCapabilities= in a systemd unit), \
         or socket activation: see dist/msglog-server.socket)"
    )
}

/// A bound, listening socket and what it listens on.
#[derive(Debug)]
pub(crate) struct Listening {
    pub listener: TcpListener,
    /// The bound address, with the real port when port 0 was asked for.
    pub addr: SocketAddr,
    /// Whether IPv4 clients reach this IPv6 socket too.
    pub dual_stack: bool,
}

/// Listen on `bind:port`, or on `[::]:port` dual-stack (falling back to
/// `0.0.0.0:port` when the host has no IPv6) when `bind` is `None`.
pub(crate) fn listen(
    bind: Option<IpAddr>,
    port: u16,
    backlog: i32,
) -> Result<Listening, BindError> {
    if let Some(ip) = bind {
        return listen_on(SocketAddr::new(ip, port), backlog, false);
    }
    let any6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port);
    match listen_on(any6, backlog, true) {
        Ok(listening) => Ok(listening),
        Err(e) if ipv6_unavailable(&e.source) => listen_on(
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
            backlog,
            false,
        ),
        Err(e) => Err(e),
    }
}

fn ipv6_unavailable(error: &io::Error) -> bool {
    crate::platform::ipv6_unavailable(error)
}

fn listen_on(addr: SocketAddr, backlog: i32, dual_stack: bool) -> Result<Listening, BindError> {
    let fail = |source| BindError { addr, source };
    let socket =
        Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).map_err(fail)?;
    if dual_stack {
        socket.set_only_v6(false).map_err(fail)?;
    }
    crate::platform::prepare_listener(&socket).map_err(fail)?;
    socket.bind(&addr.into()).map_err(fail)?;
    socket.listen(backlog).map_err(fail)?;
    let listener = TcpListener::from(socket);
    let addr = listener.local_addr().map_err(fail)?;
    Ok(Listening {
        listener,
        addr,
        dual_stack,
    })
}

/// A peer address as people write it: IPv4 clients of a dual-stack socket
/// appear as `::ffff:a.b.c.d`, shown here as `a.b.c.d`.
pub(crate) fn canonical_peer(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}
