use super::*;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;

fn pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (b, _) = l.accept().unwrap();
    (a, b)
}

#[test]
fn a_sweep_reports_only_sockets_with_input_and_end_of_stream() {
    let watch = InputWatch::new(Arc::default()).unwrap();
    let (mut a1, b1) = pair();
    let (a2, b2) = pair();
    let (a3, b3) = pair();
    let w1 = watch.watch(b1.as_raw_fd()).unwrap();
    let w2 = watch.watch(b2.as_raw_fd()).unwrap();
    let w3 = watch.watch(b3.as_raw_fd()).unwrap();
    assert_eq!(watch.len(), 3);
    assert_eq!(watch.stats.watched_inputs.load(Ordering::Relaxed), 3);
    assert_eq!(watch.sweep(), 0, "nothing sent yet");

    a1.write_all(b"ack").unwrap();
    drop(a3); // end of stream
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(watch.sweep(), 2);
    assert!(w1.readiness.ready.get() && !w2.readiness.ready.get() && w3.readiness.ready.get());

    // Level-triggered: still ready until read.
    w1.readiness.ready.set(false);
    assert_eq!(watch.sweep(), 2);

    let mut buf = [0u8; 16];
    let n = futures_lite_block_on(w1.recv(&mut buf)).unwrap();
    assert_eq!(&buf[..n], b"ack");
    let n = futures_lite_block_on(w3.recv(&mut buf)).unwrap();
    assert_eq!(n, 0, "end of stream reads as 0");
    drop(w3);
    assert_eq!(watch.sweep(), 0, "read sockets and removed ones are not reported");

    // A dropped guard takes the socket out for good.
    drop(w2);
    let mut a2 = a2;
    a2.write_all(b"x").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(watch.sweep(), 0);
    assert_eq!(watch.len(), 1, "w1 still held");
    assert_eq!(watch.stats.watched_inputs.load(Ordering::Relaxed), 1);
    drop(w1);
    assert!(watch.is_empty());
    assert_eq!(watch.stats.watched_inputs.load(Ordering::Relaxed), 0);
    drop((a1, b1, b2));
}

#[test]
fn a_waiting_reader_is_woken_by_the_sweep_and_reads_in_order() {
    let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new().enable_timer().build().unwrap();
    rt.block_on(async {
        let watch = InputWatch::new(Arc::default()).unwrap();
        let (mut a, b) = pair();
        let w = Rc::new(watch.watch(b.as_raw_fd()).unwrap());
        let got = Rc::new(RefCell::new(Vec::new()));
        let (w2, got2) = (w.clone(), got.clone());
        let reader = monoio::spawn(async move {
            let mut buf = [0u8; 4];
            loop {
                let n = w2.recv(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                got2.borrow_mut().extend_from_slice(&buf[..n]);
            }
        });
        monoio::time::sleep(std::time::Duration::from_millis(5)).await;
        a.write_all(b"first-").unwrap();
        monoio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(got.borrow().is_empty(), "no sweep, no read");
        assert_eq!(watch.sweep(), 1);
        monoio::time::sleep(std::time::Duration::from_millis(5)).await;
        assert_eq!(&got.borrow()[..], b"first-");
        a.write_all(b"second").unwrap();
        drop(a);
        monoio::time::sleep(std::time::Duration::from_millis(20)).await;
        watch.sweep();
        reader.await;
        assert_eq!(&got.borrow()[..], b"first-second");
        drop(b);
    });
}

/// Polls a future that is ready at once (the socket has input).
fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(Waker::noop());
    match f.as_mut().poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("not ready"),
    }
}
