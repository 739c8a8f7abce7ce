use super::*;
use std::os::fd::AsRawFd;

#[test]
fn recv_now_reads_what_is_queued_and_never_waits() {
    for bind in ["127.0.0.1:0", "[::1]:0"] {
        let Ok(a) = std::net::UdpSocket::bind(bind) else { continue }; // no IPv6 here
        a.set_nonblocking(true).unwrap();
        let b = std::net::UdpSocket::bind(bind).unwrap();
        let mut buf = [0u8; 16];
        assert!(
            crate::net::sys::recv_from_nonblocking(a.as_raw_fd(), &mut buf).is_none(),
            "nothing queued: no wait, None"
        );
        b.send_to(b"one", a.local_addr().unwrap()).unwrap();
        b.send_to(&[7u8; 40], a.local_addr().unwrap()).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(crate::net::sys::recv_from_nonblocking(a.as_raw_fd(), &mut buf), Some((3, b.local_addr().unwrap())));
        assert_eq!(&buf[..3], b"one");
        // Longer than the buffer: truncated to it.
        assert_eq!(
            crate::net::sys::recv_from_nonblocking(a.as_raw_fd(), &mut buf),
            Some((16, b.local_addr().unwrap()))
        );
        assert!(crate::net::sys::recv_from_nonblocking(a.as_raw_fd(), &mut buf).is_none());
    }
}

/// A session id goes to the control plane as text and comes back the same.
#[test]
fn session_ids_read_back_as_written() {
    let id = RtcSessionId { shard: 3, number: 42 };
    assert_eq!(id.to_string(), "3-42");
    assert_eq!(RtcSessionId::parse(&id.to_string()), Some(id));
    for bad in ["", "3", "3-", "-42", "x-42", "3-x", "3-42-1", "-1-2"] {
        assert_eq!(RtcSessionId::parse(bad), None, "{bad:?}");
    }
}
