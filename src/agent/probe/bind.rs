//! Binding sockets to one interface (SO_BINDTODEVICE) for the probe kinds whose
//! crates do not do it themselves.
//!
//! This module owns the interface-name check every probe makes before it opens
//! a socket (an empty name would *unbind* the socket and let the probe leave
//! through any link), the bound TCP and UDP socket constructors used by the
//! TCP probe and by the DNS runtime provider, and the mapping of OS errors
//! (`io::Error`, also deep inside another crate's error chain) to
//! [`ProbeFailure`].

use super::ProbeFailure;
use socket2::{Domain, Protocol, Socket, Type};
use std::error::Error as StdError;
use std::io;
use std::net::SocketAddr;

/// Longest interface name Linux accepts (IFNAMSIZ - 1).
pub const MAX_IFACE_NAME: usize = 15;

/// What an `EPERM`/`EACCES` while binding a socket to an interface means.
pub const BIND_PERMISSION_HINT: &str =
    "binding a socket to an interface (SO_BINDTODEVICE) needs CAP_NET_RAW";

/// Check an interface name before any socket is bound to it.
///
/// An empty name is refused above all: `SO_BINDTODEVICE` with an empty name
/// removes the binding, so the probe would leave through whatever link the
/// routing table picks. Names longer than the kernel limit would be truncated
/// by the kernel and could name another interface.
pub fn check_iface(iface: &str) -> Result<(), ProbeFailure> {
    let bad = iface.is_empty()
        || iface.len() > MAX_IFACE_NAME
        || iface == "."
        || iface == ".."
        || iface
            .chars()
            .any(|c| c == '/' || c == '\0' || c.is_whitespace());
    if bad {
        Err(ProbeFailure::NoSuchInterface)
    } else {
        Ok(())
    }
}

/// Bind `socket` to `iface` (SO_BINDTODEVICE). Refuses names that
/// [`check_iface`] refuses, with `ENODEV`.
pub fn bind_device(socket: &Socket, iface: &str) -> io::Result<()> {
    if check_iface(iface).is_err() {
        return Err(io::Error::from_raw_os_error(libc::ENODEV));
    }
    socket.bind_device(Some(iface.as_bytes()))
}

/// A non-blocking TCP socket for `remote`'s address family, bound to `iface`,
/// not yet connected. Must be called inside a Tokio runtime.
pub fn tcp_socket(iface: &str, remote: &SocketAddr) -> io::Result<tokio::net::TcpSocket> {
    let socket = Socket::new(
        Domain::for_address(*remote),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    bind_device(&socket, iface)?;
    socket.set_nonblocking(true)?;
    let std_stream: std::net::TcpStream = socket.into();
    Ok(tokio::net::TcpSocket::from_std_stream(std_stream))
}

/// Connect to `remote` through `iface`, giving up after `timeout`
/// (`io::ErrorKind::TimedOut`).
pub async fn connect_tcp(
    iface: &str,
    remote: SocketAddr,
    timeout: std::time::Duration,
) -> io::Result<tokio::net::TcpStream> {
    let socket = tcp_socket(iface, &remote)?;
    socket.set_nodelay(true)?;
    match tokio::time::timeout(timeout, socket.connect(remote)).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "TCP connect timed out",
        )),
    }
}

/// A non-blocking UDP socket bound to `iface` and to `local` (usually the
/// unspecified address, port 0). Must be called inside a Tokio runtime.
pub fn udp_socket(iface: &str, local: SocketAddr) -> io::Result<tokio::net::UdpSocket> {
    let socket = Socket::new(Domain::for_address(local), Type::DGRAM, Some(Protocol::UDP))?;
    bind_device(&socket, iface)?;
    socket.set_nonblocking(true)?;
    socket.bind(&local.into())?;
    tokio::net::UdpSocket::from_std(socket.into())
}

/// Check that a socket can be bound to `iface` right now, without sending
/// anything: for probes whose library hides the socket error (hickory reports
/// only "no connections").
pub fn check_device(iface: &str) -> Result<(), ProbeFailure> {
    check_iface(iface)?;
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
        .or_else(|_| Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP)))
        .map_err(|e| io_failure(&e, BIND_PERMISSION_HINT))?;
    bind_device(&socket, iface).map_err(|e| io_failure(&e, BIND_PERMISSION_HINT))
}

/// True when the error says the interface is not there (ENODEV, ENXIO, or the
/// kernel's "No such device" text carried without an errno).
pub fn is_no_such_device(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::ENODEV) | Some(libc::ENXIO))
        || err.to_string().contains("No such device")
}

/// True for EPERM/EACCES.
pub fn is_permission(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES))
        || err.kind() == io::ErrorKind::PermissionDenied
}

/// Map an OS error to the failure IT staff see. `permission_hint` says what is
/// missing when the OS refuses (EPERM/EACCES).
pub fn io_failure(err: &io::Error, permission_hint: &str) -> ProbeFailure {
    if is_no_such_device(err) {
        return ProbeFailure::NoSuchInterface;
    }
    if is_permission(err) {
        return ProbeFailure::Permission(permission_hint.to_string());
    }
    match err.kind() {
        io::ErrorKind::TimedOut => ProbeFailure::Timeout,
        io::ErrorKind::ConnectionRefused => ProbeFailure::Network("connection refused".into()),
        io::ErrorKind::ConnectionReset => ProbeFailure::Network("connection reset".into()),
        io::ErrorKind::NetworkUnreachable => ProbeFailure::Network("network unreachable".into()),
        io::ErrorKind::HostUnreachable => ProbeFailure::Network("host unreachable".into()),
        io::ErrorKind::NetworkDown => ProbeFailure::Network("network is down".into()),
        io::ErrorKind::AddrNotAvailable => {
            ProbeFailure::Network("no usable source address on the interface".into())
        }
        _ => ProbeFailure::Network(err.to_string()),
    }
}

/// The most telling `io::Error` in an error chain: the first one carrying an
/// OS error number, else the first one at all.
pub fn find_io_error<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a io::Error> {
    let mut first: Option<&'a io::Error> = None;
    let mut cur: Option<&'a (dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            if io.raw_os_error().is_some() {
                return Some(io);
            }
            first.get_or_insert(io);
            // A custom io::Error wraps another error; its `source()` skips it.
            if let Some(inner) = io.get_ref() {
                cur = Some(inner);
                continue;
            }
        }
        cur = e.source();
    }
    first
}

/// Find an error of type `T` anywhere in the chain (also inside custom
/// `io::Error`s).
pub fn find_in_chain<'a, T: StdError + 'static>(
    err: &'a (dyn StdError + 'static),
) -> Option<&'a T> {
    let mut cur: Option<&'a (dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(t) = e.downcast_ref::<T>() {
            return Some(t);
        }
        if let Some(inner) = e.downcast_ref::<io::Error>().and_then(|io| io.get_ref()) {
            cur = Some(inner);
            continue;
        }
        cur = e.source();
    }
    None
}

/// The whole chain as one line, `outer: inner: innermost`, without repeating
/// a part that the previous one already contains.
pub fn chain_text(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        let s = e.to_string();
        if !s.is_empty() && !parts.last().is_some_and(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_would_unbind_or_truncate_are_refused() {
        assert!(check_iface("").is_err());
        assert!(check_iface("a-very-long-interface-name").is_err());
        assert!(check_iface("eth 0").is_err());
        assert!(check_iface("../x").is_err());
        assert!(check_iface("eth0").is_ok());
        assert!(check_iface("wwp0s20f0u6").is_ok());
        assert!(check_iface("123456789012345").is_ok());
    }

    #[test]
    fn os_errors_map_to_failures() {
        let nodev = io::Error::from_raw_os_error(libc::ENODEV);
        assert_eq!(io_failure(&nodev, "x"), ProbeFailure::NoSuchInterface);
        let perm = io::Error::from_raw_os_error(libc::EPERM);
        assert_eq!(
            io_failure(&perm, "needs X"),
            ProbeFailure::Permission("needs X".into())
        );
        let refused = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(
            io_failure(&refused, "x"),
            ProbeFailure::Network("connection refused".into())
        );
        let to = io::Error::new(io::ErrorKind::TimedOut, "t");
        assert_eq!(io_failure(&to, "x"), ProbeFailure::Timeout);
    }

    #[test]
    fn io_errors_are_found_inside_chains() {
        #[derive(Debug)]
        struct Outer(io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "tcp connect error")
            }
        }
        impl StdError for Outer {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                Some(&self.0)
            }
        }
        let e = Outer(io::Error::from_raw_os_error(libc::ENODEV));
        let found = find_io_error(&e).expect("io error in chain");
        assert_eq!(found.raw_os_error(), Some(libc::ENODEV));
        assert!(chain_text(&e).starts_with("tcp connect error: "));
    }
}
