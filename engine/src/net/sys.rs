//! The system calls the shell makes itself (outside monoio), as safe functions on
//! descriptors the caller owns: socket shutdown, non-blocking sends and receives
//! for the flush tick and the WebRTC UDP path, the input-watch epoll set, and
//! pinning a shard to a core. Every `unsafe` libc call of the engine is here.

use bytes::Bytes;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Shuts a socket down both ways: a blocked read or write on it returns, the peer
/// sees the end. The descriptor stays open (its owner closes it). Errors (a socket
/// already gone) are of no interest.
pub fn shutdown(fd: RawFd) {
    // SAFETY: shutdown(2) takes any integer; on a descriptor that is not a socket
    // it fails with ENOTSOCK/EBADF and changes nothing.
    unsafe {
        libc::shutdown(fd, libc::SHUT_RDWR);
    }
}

/// Runs the calling thread on core `index` (modulo the cores there are).
pub fn pin_to_core(index: usize) {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET writes within it; the call only
    // affects this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(index % cores, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Retries a call interrupted by a signal; any other failure is the error.
fn retry(mut call: impl FnMut() -> isize) -> io::Result<usize> {
    loop {
        let n = call();
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Sends what the socket takes of `buf` now (`WouldBlock` when nothing).
pub fn send_nonblocking(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes for the call.
    retry(|| unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) })
}

/// Sends what the socket takes of the first `max` non-empty `bufs` now, with one
/// `sendmsg` (`iov` is scratch space, reused between calls).
pub fn sendmsg_nonblocking(fd: RawFd, bufs: &[Bytes], max: usize, iov: &mut Vec<libc::iovec>) -> io::Result<usize> {
    iov.clear();
    iov.extend(
        bufs.iter()
            .filter(|b| !b.is_empty())
            .take(max)
            .map(|b| libc::iovec { iov_base: b.as_ptr() as *mut libc::c_void, iov_len: b.len() }),
    );
    // SAFETY: msghdr is plain data; zeroed is a valid (empty) value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_mut_ptr();
    msg.msg_iovlen = iov.len() as _;
    // SAFETY: the iovecs point into `bufs`, alive and unchanged for the call.
    retry(|| unsafe { libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) })
}

/// Reads what the socket has now (`Ok(0)`: end of stream; `WouldBlock`: nothing yet).
pub fn recv_nonblocking(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the call.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
    if n >= 0 { Ok(n as usize) } else { Err(io::Error::last_os_error()) }
}

/// Sends one datagram to `to` without blocking (a full socket buffer drops it:
/// `WouldBlock`).
pub fn send_to_nonblocking(fd: RawFd, to: SocketAddr, data: &[u8]) -> io::Result<usize> {
    let (addr, len) = sockaddr(to);
    // SAFETY: `data` and `addr` are valid for the call; `len` is `addr`'s size.
    retry(|| unsafe {
        libc::sendto(fd, data.as_ptr().cast(), data.len(), libc::MSG_DONTWAIT, (&raw const addr).cast(), len)
    })
}

/// A datagram already queued on the socket, if any, and who sent it (longer ones
/// are truncated to `buf`).
pub fn recv_from_nonblocking(fd: RawFd, buf: &mut [u8]) -> Option<(usize, SocketAddr)> {
    // SAFETY: sockaddr_storage is plain data; zeroed is a valid value.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `buf` is valid for writes of its length, `ss` for `len` bytes.
    let n = unsafe {
        libc::recvfrom(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT, (&raw mut ss).cast(), &mut len)
    };
    if n < 0 {
        return None;
    }
    let from = match ss.ss_family as i32 {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a sockaddr_in for AF_INET.
            let sin = unsafe { *(&raw const ss).cast::<libc::sockaddr_in>() };
            SocketAddr::new(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)).into(), u16::from_be(sin.sin_port))
        }
        libc::AF_INET6 => {
            // SAFETY: the kernel wrote a sockaddr_in6 for AF_INET6.
            let sin6 = unsafe { *(&raw const ss).cast::<libc::sockaddr_in6>() };
            SocketAddr::V6(SocketAddrV6::new(
                sin6.sin6_addr.s6_addr.into(),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            ))
        }
        _ => return None,
    };
    Some((n as usize, from))
}

fn sockaddr(a: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; zeroed is a valid value.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match a {
        SocketAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(v4.ip().octets()) },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in fits in sockaddr_storage, which is aligned for it.
            unsafe { std::ptr::write((&raw mut ss).cast::<libc::sockaddr_in>(), sin) };
            (ss, std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t)
        }
        SocketAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: v6.flowinfo(),
                sin6_addr: libc::in6_addr { s6_addr: v6.ip().octets() },
                sin6_scope_id: v6.scope_id(),
            };
            // SAFETY: sockaddr_in6 fits in sockaddr_storage, which is aligned for it.
            unsafe { std::ptr::write((&raw mut ss).cast::<libc::sockaddr_in6>(), sin6) };
            (ss, std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t)
        }
    }
}

/// An epoll set of sockets watched for input, polled without blocking.
pub struct Epoll {
    fd: OwnedFd,
}

/// What [`Epoll::poll_now`] fills: one readiness report.
pub type EpollEvent = libc::epoll_event;

impl Epoll {
    pub fn new() -> io::Result<Self> {
        // SAFETY: plain system call; the result is checked.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor that nothing else owns.
        Ok(Epoll { fd: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    /// Watches `fd` for input and its end, reported with `token`.
    pub fn add(&self, fd: RawFd, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event { events: (libc::EPOLLIN | libc::EPOLLRDHUP) as u32, u64: token };
        // SAFETY: `ev` outlives the call; errors are checked.
        if unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Stops watching `fd` (harmless if it is not watched or already closed).
    pub fn remove(&self, fd: RawFd) {
        // SAFETY: the event argument is ignored for EPOLL_CTL_DEL.
        unsafe {
            libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_DEL, fd, std::ptr::null_mut());
        }
    }

    /// The reports ready now (never blocks), written to the front of `events`.
    pub fn poll_now(&self, events: &mut [EpollEvent]) -> usize {
        let max = events.len().min(i32::MAX as usize) as i32;
        // SAFETY: `events` holds `max` entries; timeout 0 never blocks.
        let n = unsafe { libc::epoll_wait(self.fd.as_raw_fd(), events.as_mut_ptr(), max, 0) };
        n.max(0) as usize
    }
}
