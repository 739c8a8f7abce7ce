use super::*;
use std::sync::Arc;

#[test]
fn bounded_and_ordered() {
    let q = Inbox::new(2);
    assert!(q.push(1).is_ok() && q.push(2).is_ok());
    assert_eq!(q.push(3), Err(3));
    assert_eq!(q.dropped(), 1);
    assert_eq!((q.try_recv(), q.try_recv(), q.try_recv()), (Some(1), Some(2), None));
}

#[test]
fn wakes_a_receiver_on_another_runtime() {
    let q = Arc::new(Inbox::new(16));
    let q2 = q.clone();
    let t = std::thread::spawn(move || {
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new().enable_timer().build().unwrap();
        rt.block_on(async move {
            let mut got = vec![];
            for _ in 0..100 {
                got.push(q2.recv().await);
            }
            got
        })
    });
    for i in 0..100 {
        while q.push(i).is_err() {
            std::thread::yield_now();
        }
        if i % 10 == 0 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
    assert_eq!(t.join().unwrap(), (0..100).collect::<Vec<_>>());
}
