//! Non-blocking UDP sockets for the WebRTC load tools: bind/connect on loopback,
//! `send`/`sendto`, batched receives with `recvmmsg(2)` and, on the sockets that
//! ask for it, the kernel's software receive timestamp (`SO_TIMESTAMPNS`,
//! CLOCK_REALTIME, taken when the datagram is queued on the loopback device, so it
//! does not include the load generator's own scheduling delay).

use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::os::fd::RawFd;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r) }
}

fn sockaddr_v4(a: &SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) },
        sin_zero: [0; 8],
    }
}

fn v4(addr: &SocketAddr) -> io::Result<SocketAddrV4> {
    match addr {
        SocketAddr::V4(a) => Ok(*a),
        SocketAddr::V6(_) => Err(io::Error::new(io::ErrorKind::Unsupported, "IPv4 only")),
    }
}

fn setsockopt_int(fd: RawFd, level: libc::c_int, name: libc::c_int, v: libc::c_int) -> io::Result<()> {
    // SAFETY: valid option pointer and length.
    cvt(unsafe { libc::setsockopt(fd, level, name, &v as *const _ as *const libc::c_void, 4) }).map(|_| ())
}

/// A non-blocking IPv4 UDP socket bound to `bind` (port 0: any).
pub fn bind(bind: &SocketAddr, rcvbuf: Option<usize>) -> io::Result<RawFd> {
    let a = v4(bind)?;
    // SAFETY: plain syscalls with valid arguments.
    let fd =
        cvt(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0) })?;
    if let Some(n) = rcvbuf {
        let _ = setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, n.min(i32::MAX as usize) as libc::c_int);
    }
    let sin = sockaddr_v4(&a);
    // SAFETY: sin is a valid sockaddr_in.
    let r = unsafe {
        libc::bind(fd, &sin as *const _ as *const libc::sockaddr, std::mem::size_of::<libc::sockaddr_in>() as u32)
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        crate::sys::close(fd);
        return Err(e);
    }
    Ok(fd)
}

/// Fixes the peer of a UDP socket (the kernel then drops datagrams from others).
pub fn connect(fd: RawFd, to: &SocketAddr) -> io::Result<()> {
    let sin = sockaddr_v4(&v4(to)?);
    // SAFETY: sin is a valid sockaddr_in.
    cvt(unsafe {
        libc::connect(fd, &sin as *const _ as *const libc::sockaddr, std::mem::size_of::<libc::sockaddr_in>() as u32)
    })
    .map(|_| ())
}

/// Asks for `SCM_TIMESTAMPNS` on every received datagram.
pub fn enable_rx_timestamps(fd: RawFd) -> io::Result<()> {
    setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1)
}

/// The local address of a bound socket.
pub fn local_addr(fd: RawFd) -> io::Result<SocketAddr> {
    // SAFETY: valid out pointers; an AF_INET socket fills a sockaddr_in.
    let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    cvt(unsafe { libc::getsockname(fd, &mut sin as *mut _ as *mut libc::sockaddr, &mut len) })?;
    let ip = std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
    Ok(SocketAddr::new(ip.into(), u16::from_be(sin.sin_port)))
}

/// `send` on a connected socket (one datagram).
pub fn send(fd: RawFd, data: &[u8]) -> io::Result<usize> {
    // SAFETY: data is valid for reads of its length.
    let n = unsafe { libc::send(fd, data.as_ptr() as *const libc::c_void, data.len(), libc::MSG_NOSIGNAL) };
    if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) }
}

/// A prepared `sendto` destination (the sockaddr is built once).
#[derive(Clone, Copy)]
pub struct Dest {
    sin: libc::sockaddr_in,
}

impl Dest {
    pub fn new(to: &SocketAddr) -> io::Result<Dest> {
        Ok(Dest { sin: sockaddr_v4(&v4(to)?) })
    }
}

/// `sendto` one datagram (as the engine's shard does for every outbound packet).
pub fn send_to(fd: RawFd, data: &[u8], to: &Dest) -> io::Result<usize> {
    // SAFETY: valid buffer and sockaddr.
    let n = unsafe {
        libc::sendto(
            fd,
            data.as_ptr() as *const libc::c_void,
            data.len(),
            0,
            &to.sin as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as u32,
        )
    };
    if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) }
}

/// Largest datagram received (larger ones are truncated and flagged).
pub const DGRAM: usize = 2048;
const CTRL: usize = 64;

/// `sendmmsg` datagrams `data[i]` to `to[i]` in one system call per 1024; returns
/// how many went (the rest hit a full socket buffer or an error).
pub fn send_many(fd: RawFd, data: &[&[u8]], to: &[&Dest]) -> usize {
    let mut iov: Vec<libc::iovec> =
        data.iter().map(|d| libc::iovec { iov_base: d.as_ptr() as *mut libc::c_void, iov_len: d.len() }).collect();
    let mut msgs: Vec<libc::mmsghdr> = (0..data.len())
        .map(|i| {
            // SAFETY: msghdr is plain data; zeroed is valid.
            let mut h: libc::msghdr = unsafe { std::mem::zeroed() };
            h.msg_name = &to[i].sin as *const _ as *mut libc::c_void;
            h.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
            h.msg_iov = &mut iov[i];
            h.msg_iovlen = 1;
            libc::mmsghdr { msg_hdr: h, msg_len: 0 }
        })
        .collect();
    let mut done = 0;
    while done < msgs.len() {
        let n = (msgs.len() - done).min(1024);
        // SAFETY: msgs[done..done + n] point at live buffers and addresses.
        let r = unsafe { libc::sendmmsg(fd, msgs[done..].as_mut_ptr(), n as u32, 0) };
        if r <= 0 {
            // The datagram at `done` failed (a full buffer): skip it, go on.
            done += 1;
            continue;
        }
        done += r as usize;
    }
    msgs.iter().filter(|m| m.msg_len > 0).count()
}

/// Buffers for one `recvmmsg(2)` of up to `n` datagrams, reused across calls and
/// sockets. The pointers inside the headers point into the boxed buffers, which
/// never move.
pub struct RecvBatch {
    bufs: Box<[[u8; DGRAM]]>,
    ctrl: Box<[[u8; CTRL]]>,
    iovs: Box<[libc::iovec]>,
    hdrs: Box<[libc::mmsghdr]>,
    filled: usize,
}

impl RecvBatch {
    pub fn new(n: usize) -> RecvBatch {
        let n = n.max(1);
        let mut bufs = vec![[0u8; DGRAM]; n].into_boxed_slice();
        let mut ctrl = vec![[0u8; CTRL]; n].into_boxed_slice();
        let mut iovs: Box<[libc::iovec]> = (0..n)
            .map(|i| libc::iovec { iov_base: bufs[i].as_mut_ptr() as *mut libc::c_void, iov_len: DGRAM })
            .collect();
        let hdrs: Box<[libc::mmsghdr]> = (0..n)
            .map(|i| {
                // SAFETY: msghdr is plain data; zeroed is a valid value.
                let mut h: libc::msghdr = unsafe { std::mem::zeroed() };
                h.msg_iov = &mut iovs[i] as *mut libc::iovec;
                h.msg_iovlen = 1;
                h.msg_control = ctrl[i].as_mut_ptr() as *mut libc::c_void;
                h.msg_controllen = CTRL as _;
                libc::mmsghdr { msg_hdr: h, msg_len: 0 }
            })
            .collect();
        RecvBatch { bufs, ctrl, iovs, hdrs, filled: 0 }
    }

    /// Receives up to the batch size without blocking; returns how many (0 when the
    /// socket is empty).
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        for h in self.hdrs.iter_mut() {
            h.msg_hdr.msg_controllen = CTRL as _;
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
        }
        let _ = (&self.iovs, &self.ctrl);
        // SAFETY: every header points at live buffers of the stated sizes.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                self.hdrs.len() as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            self.filled = 0;
            if e.kind() == io::ErrorKind::WouldBlock {
                return Ok(0);
            }
            return Err(e);
        }
        self.filled = n as usize;
        Ok(self.filled)
    }

    /// Datagram `i` of the last receive.
    pub fn data(&self, i: usize) -> &[u8] {
        let len = (self.hdrs[i].msg_len as usize).min(DGRAM);
        &self.bufs[i][..len]
    }

    /// True if datagram `i` was truncated.
    pub fn truncated(&self, i: usize) -> bool {
        self.hdrs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0
    }

    /// The kernel receive timestamp of datagram `i` (ns since the epoch), if the
    /// socket has [`enable_rx_timestamps`].
    pub fn rx_time_ns(&self, i: usize) -> Option<i64> {
        let h = &self.hdrs[i].msg_hdr;
        // SAFETY: walking the control buffer the kernel filled, with the libc macros.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(h);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                    let ts = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::timespec);
                    return Some(ts.tv_sec as i64 * 1_000_000_000 + ts.tv_nsec as i64);
                }
                c = libc::CMSG_NXTHDR(h, c);
            }
        }
        None
    }
}

/// CLOCK_REALTIME in ns (the clock `SO_TIMESTAMPNS` uses).
pub fn realtime_ns() -> i64 {
    // SAFETY: valid out pointer.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    unsafe {
        libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts);
    }
    ts.tv_sec as i64 * 1_000_000_000 + ts.tv_nsec as i64
}

/// CPU time of the calling thread (user + system), from `getrusage(RUSAGE_THREAD)`.
pub fn thread_cpu() -> crate::sys::CpuTimes {
    // SAFETY: valid out pointer.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe {
        libc::getrusage(libc::RUSAGE_THREAD, &mut ru);
    }
    let tv = |t: libc::timeval| {
        std::time::Duration::from_secs(t.tv_sec as u64) + std::time::Duration::from_micros(t.tv_usec as u64)
    };
    crate::sys::CpuTimes { user: tv(ru.ru_utime), sys: tv(ru.ru_stime) }
}

/// Pins the calling thread to one CPU.
pub fn pin_thread(cpu: usize) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain data; the libc macros set one bit.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        cvt(libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_receive_with_timestamps() {
        let lo: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let a = bind(&lo, None).unwrap();
        let b = bind(&lo, None).unwrap();
        enable_rx_timestamps(b).unwrap();
        let to = Dest::new(&local_addr(b).unwrap()).unwrap();
        let t0 = realtime_ns();
        for i in 0..5u8 {
            send_to(a, &[i; 100], &to).unwrap();
        }
        let mut batch = RecvBatch::new(4);
        assert_eq!(batch.recv(b).unwrap(), 4);
        for i in 0..4 {
            assert_eq!(batch.data(i), &[i as u8; 100]);
            let ts = batch.rx_time_ns(i).expect("timestamp");
            assert!(ts >= t0 - 1_000_000 && ts < t0 + 10_000_000_000, "{ts} vs {t0}");
        }
        assert_eq!(batch.recv(b).unwrap(), 1);
        assert_eq!(batch.recv(b).unwrap(), 0);
        crate::sys::close(a);
        crate::sys::close(b);
    }
}
