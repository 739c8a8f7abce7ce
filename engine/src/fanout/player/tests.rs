use super::*;
use crate::proto::rtmp::chunk::{MessageHeader, encode_message_bytes};
use std::io::Read;
use std::os::fd::AsRawFd;

/// A merging HTTP-FLV player (id `id`, media of `form`) on a real loopback socket
/// with send buffer `sndbuf` (the system's without), whose reader thread starts
/// reading after `reader_delay` and returns every byte it got; the player's end of
/// the socket as a monoio stream for its writer task.
/// A player that does not read: at its queue bound, queued media goes (codec
/// headers stay), video resumes at the next keyframe, and a player still
/// overflowing after `disconnect_after` is ended.
#[test]
fn a_slow_player_skips_to_the_next_keyframe_then_is_dropped() {
    let limits =
        PlayerLimits { max_bytes: 10_000, max_ms: 600_000, disconnect_after: Duration::from_secs(15), merge: false };
    let p = Rc::new(Player::new(1, Protocol::HttpFlv, "127.0.0.1:9".parse().unwrap(), limits));
    let video = |ts: u32, key: bool, len: usize| {
        let mut body = vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0];
        body.resize(len, 0xAB);
        Arc::new(Frame::new(FrameKind::Video, ts, Bytes::from(body)))
    };
    let header = Arc::new(Frame::new(FrameKind::Video, 0, Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f])));
    assert!(header.header);
    let t0 = Instant::now();
    p.push(&header, t0);
    p.push(&video(0, true, 3000), t0);
    p.push(&video(33, false, 3000), t0);
    p.push(&video(66, false, 3000), t0);
    assert_eq!(p.queue.borrow().frames.len(), 4);
    // The next frame would pass 10 000 bytes: media goes, the header stays, and
    // this inter frame is dropped too (it needs the frames before it).
    p.push(&video(99, false, 3000), t0);
    let kept: Vec<bool> = p.queue.borrow().frames.iter().map(|f| f.header).collect();
    assert_eq!(kept, [true]);
    assert_eq!(p.dropped.get(), 4);
    // Inter frames wait for a keyframe; the keyframe restarts the queue.
    p.push(&video(132, false, 100), t0);
    assert_eq!(p.queue.borrow().frames.len(), 1);
    p.push(&video(165, true, 100), t0);
    p.push(&video(198, false, 100), t0);
    assert_eq!(p.queue.borrow().frames.len(), 3);
    assert_eq!(p.dropped.get(), 5);
    assert!(p.queue.borrow().end.is_none());
    // Still overflowing 15 s after the first overflow: the player is ended.
    let big = |ts| video(ts, true, 12_000);
    p.push(&big(231), t0 + Duration::from_secs(10));
    assert!(p.queue.borrow().end.is_none(), "within the allowance");
    p.push(&big(264), t0 + Duration::from_secs(16));
    assert!(matches!(p.queue.borrow().end, Some(PlayerEnd::Kicked)), "dropped after 15 s of overflow");
}

fn loopback_player(
    id: u64,
    sndbuf: Option<libc::c_int>,
    reader_delay: Duration,
    form: Option<SharedForm>,
) -> (Rc<Player>, std::thread::JoinHandle<Vec<u8>>, monoio::net::TcpStream) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let reader = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        std::thread::sleep(reader_delay);
        let mut got = vec![];
        s.read_to_end(&mut got).unwrap();
        got
    });
    let sock = std::net::TcpStream::connect(addr).unwrap();
    if let Some(n) = sndbuf {
        // SAFETY: setsockopt on our own socket with a valid option pointer.
        unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                &n as *const _ as *const libc::c_void,
                4,
            );
        }
    }
    sock.set_nonblocking(true).unwrap();
    let fd = sock.as_raw_fd();
    let stream = monoio::net::TcpStream::from_std(sock).unwrap();
    let limits =
        PlayerLimits { max_bytes: 64 << 20, max_ms: 600_000, disconnect_after: Duration::from_secs(60), merge: true };
    let player = Rc::new(Player::new(id, Protocol::HttpFlv, addr, limits));
    player.set_fd(fd);
    player.set_shared_form(form);
    (player, reader, stream)
}

/// A player writing to a real loopback socket whose reader starts late, so the
/// tick's writes fill the socket and become partial: every byte must arrive once,
/// in order, whether the tick or the writer task wrote it.
/// With `form`, the player's wire is HTTP-FLV's (its own output, then one chunk of
/// tags) and the received stream is de-chunked before it is returned; the expected
/// bytes are then the frames' FLV tags.
async fn tick_and_writer_share_a_socket(form: Option<SharedForm>) -> (Vec<u8>, Vec<u8>, Flushed) {
    let (player, reader, mut stream) = loopback_player(1, Some(4096), Duration::from_millis(300), form);
    let p2 = player.clone();
    let writer = monoio::spawn(async move {
        let stats = crate::stats::ShardStats::default();
        let wire: Wire = if form.is_some() {
            // The frames start at 0: the player's timeline is the stream's.
            Box::new(|frames: &[Arc<Frame>], _base: Option<u32>, bufs: &mut Vec<Bytes>| {
                let len: usize = frames.iter().map(|f| f.flv_wire().len()).sum();
                if len > 0 {
                    bufs.push(Bytes::from(format!("{len:x}\r\n")));
                    bufs.extend(frames.iter().map(|f| f.flv_wire()));
                    bufs.push(Bytes::from_static(b"\r\n"));
                }
            })
        } else {
            Box::new(|frames: &[Arc<Frame>], _base: Option<u32>, bufs: &mut Vec<Bytes>| {
                bufs.extend(frames.iter().map(|f| f.payload.clone()));
            })
        };
        let end = write_loop(&p2, &mut stream, &stats, wire).await;
        assert_eq!(end.unwrap(), PlayerEnd::StreamEnded);
        assert!(p2.wire.borrow().is_none(), "the wire is dropped when the loop ends");
        // The reader sees EOF (io_uring closes a dropped stream only on a later turn).
        let _ = monoio::io::AsyncWriteRent::shutdown(&mut stream).await;
    });
    monoio::time::sleep(Duration::from_millis(5)).await;
    let mut expected = vec![];
    let mut total = Flushed::default();
    let now = Instant::now();
    for round in 0..40u32 {
        for i in 0..8u32 {
            let n = (round * 8 + i) as u8;
            // AAC frames (always queued), 3 KiB each, numbered in every byte.
            let mut payload = vec![0xaf, 0x01];
            payload.resize(3072, n);
            let f = Arc::new(Frame::new(FrameKind::Audio, round * 100 + i, Bytes::from(payload)));
            if form.is_some() {
                expected.extend_from_slice(&f.flv_wire());
            } else {
                expected.extend_from_slice(&f.payload);
            }
            player.push(&f, now);
        }
        let f = flush_tick();
        total.players += f.players;
        total.direct += f.direct;
        total.bytes += f.bytes;
        monoio::time::sleep(Duration::from_millis(2)).await;
    }
    player.end(PlayerEnd::StreamEnded);
    writer.await;
    let got = reader.join().unwrap();
    (if form.is_some() { dechunk(&got) } else { got }, expected, total)
}

/// The payload of an HTTP/1.1 chunked body.
fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = vec![];
    while !b.is_empty() {
        let eol = b.windows(2).position(|w| w == b"\r\n").expect("chunk size line");
        let n = usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap(), 16).unwrap();
        out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
        assert_eq!(&b[eol + 2 + n..eol + 4 + n], b"\r\n");
        b = &b[eol + 4 + n..];
    }
    out
}

#[test]
fn tick_writes_directly_and_hands_partial_writes_to_the_writer_in_order() {
    for form in [None, Some(SharedForm::HttpFlv)] {
        let legacy = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new().enable_timer().build();
        let (got, expected, f) = legacy.unwrap().block_on(tick_and_writer_share_a_socket(form));
        assert_eq!(got.len(), expected.len(), "{form:?}");
        assert!(got == expected, "{form:?}: bytes lost, doubled or reordered");
        assert!(f.direct > 0 && f.bytes > 0, "{form:?}: the tick wrote itself: {f:?}");
        assert!(f.bytes < expected.len() as u64, "{form:?}: the writer task wrote the rest: {f:?}");
        // The same with io_uring, where the machine has it.
        if let Ok(mut rt) = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new().enable_timer().build() {
            let (got, expected, f) = rt.block_on(tick_and_writer_share_a_socket(form));
            assert!(got == expected, "{form:?} io_uring: bytes lost, doubled or reordered");
            assert!(f.direct > 0 && f.bytes < expected.len() as u64, "{form:?} io_uring: {f:?}");
        }
    }
}

#[test]
fn shared_forms_are_what_the_players_wires_write() {
    let frames: Vec<Arc<Frame>> = (0..5u32)
        .map(|i| {
            let (kind, body) = if i % 2 == 0 {
                (FrameKind::Video, vec![0x17, 1, 0, 0, 0, i as u8, 9, 9])
            } else {
                (FrameKind::Audio, vec![0xaf, 1, i as u8])
            };
            Arc::new(Frame::new(kind, i * 20, Bytes::from(body)))
        })
        .collect();
    // A timeline starting at 0 is the stream's: the frames' own tags.
    let tags: Vec<u8> = frames.iter().flat_map(|f| f.flv_wire().to_vec()).collect();
    let http = SharedForm::HttpFlv.build(&frames, Some(0));
    assert_eq!(dechunk(&http), tags);
    let ws = SharedForm::WsFlv.build(&frames, Some(0));
    assert!(ws.ends_with(&tags) && ws[0] == 0x82, "one final binary frame");
    let rtmp = SharedForm::Rtmp { chunk_size: 4096 }.build(&frames, Some(0));
    let each: Vec<u8> = frames
        .iter()
        .flat_map(|f| {
            let h = MessageHeader {
                csid: if f.kind == FrameKind::Video { 6 } else { 4 },
                timestamp: f.timestamp,
                type_id: if f.kind == FrameKind::Video { 9 } else { 8 },
                stream_id: 1,
            };
            encode_message_bytes(4096, &h, &f.payload).unwrap().to_vec()
        })
        .collect();
    assert_eq!(rtmp.to_vec(), each);
    assert!(SharedForm::HttpFlv.build(&[], Some(0)).is_empty(), "no frames, no empty chunk (it would end the body)");
    // Another timeline: the same bodies, the tags' times moved; pieces and build agree.
    let mut reader = crate::proto::flv::FlvReader::new(1 << 20);
    reader.handle_input(&crate::proto::flv::file_header(true, true));
    reader.handle_input(&dechunk(&SharedForm::HttpFlv.build(&frames, Some(40))));
    let mut got = vec![];
    while let Some(t) = reader.poll_tag().unwrap() {
        got.push((t.timestamp_ms, t.body.to_vec()));
    }
    let want: Vec<(u32, Vec<u8>)> =
        frames.iter().map(|f| (f.timestamp.saturating_sub(40), f.payload.to_vec())).collect();
    assert_eq!(got, want, "times 40 ms earlier, before the base at 0");
    for form in [SharedForm::HttpFlv, SharedForm::WsFlv, SharedForm::Rtmp { chunk_size: 4096 }] {
        let mut pieces = vec![];
        form.pieces(&frames, Some(40), &mut pieces);
        let joined: Vec<u8> = pieces.iter().flat_map(|b| b.to_vec()).collect();
        assert_eq!(joined, form.build(&frames, Some(40)).to_vec(), "{form:?}");
    }
    // The tick's cache: the same frames give the same buffer, others their own; a
    // timeline of its own gets the pieces, no second build.
    let mut sc = Scratch::default();
    let (mut a, mut b, mut c, mut d) = (vec![], vec![], vec![], vec![]);
    sc.shared(SharedForm::HttpFlv, &frames, Some(0), &mut a);
    sc.shared(SharedForm::HttpFlv, &frames, Some(0), &mut b);
    assert_eq!(a[0].as_ptr(), b[0].as_ptr(), "built once");
    sc.shared(SharedForm::HttpFlv, &frames[1..], Some(0), &mut c);
    assert_ne!(a, c);
    sc.shared(SharedForm::HttpFlv, &frames, Some(40), &mut d);
    assert!(d.len() > 1, "pieces");
    assert_eq!(sc.shared.len(), 2);
}

/// An HTTP-FLV player on a real loopback socket whose reader starts after
/// `reader_delay`, with its writer task running: the player, the reader's thread
/// (returning the de-chunked FLV tags it got) and the writer task.
fn flv_player(
    id: u64,
    sndbuf: Option<libc::c_int>,
    reader_delay: Duration,
) -> (Rc<Player>, std::thread::JoinHandle<Vec<u8>>, monoio::task::JoinHandle<()>) {
    let (player, reader, mut stream) = loopback_player(id, sndbuf, reader_delay, Some(SharedForm::HttpFlv));
    let p2 = player.clone();
    let writer = monoio::spawn(async move {
        let stats = crate::stats::ShardStats::default();
        let wire: Wire = Box::new(|frames: &[Arc<Frame>], base: Option<u32>, bufs: &mut Vec<Bytes>| {
            let b = SharedForm::HttpFlv.build(frames, base);
            if !b.is_empty() {
                bufs.push(b);
            }
        });
        let end = write_loop(&p2, &mut stream, &stats, wire).await;
        assert_eq!(end.unwrap(), PlayerEnd::StreamEnded);
        let _ = monoio::io::AsyncWriteRent::shutdown(&mut stream).await;
    });
    (player, reader, writer)
}

/// Three players of one stream in a cohort, the way the shard drives them: each
/// frame goes to the players out of step one by one and to the cohort once, and
/// the tick flushes. Two read at once and stay in step; one reads late (its socket
/// fills), so it leaves the cohort and catches up through its writer. A gap
/// (resync) takes every player out of step until the next keyframe, and the
/// stream's end sends what the cohort still held. Every player must get every tag
/// once, in order. With `lanes` > 1 the players (ids 0, 1, 2) are in lanes
/// `id % lanes`, each lane is flushed at its own turn with frames arriving between
/// turns, and a lane's flush must write for no player of another lane.
async fn cohort_run(lanes: usize) -> (Vec<(Vec<u8>, Vec<u8>)>, Flushed, Vec<usize>) {
    set_lanes(lanes);
    let cohort = Cohort::new();
    let mut players = vec![];
    for (i, (buf, delay)) in [(None, 0), (None, 0), (Some(4096), 300)].into_iter().enumerate() {
        let (p, r, w) = flv_player(i as u64, buf, Duration::from_millis(delay));
        p.set_cohort(Some(cohort.clone()));
        players.push((p, r, w));
    }
    monoio::time::sleep(Duration::from_millis(5)).await;
    let mut expected = vec![];
    let mut total = Flushed::default();
    let mut stepped = vec![];
    let mut outside = vec![];
    let now = Instant::now();
    let deliver = |f: Arc<Frame>, expected: &mut Vec<u8>| {
        expected.extend_from_slice(&f.flv_wire());
        cohort.push_outside(&f, now);
        cohort.push(&f);
    };
    for round in 0..60u32 {
        // Players start at a keyframe (as after a GOP snapshot), and resume at one.
        if round == 0 || round == 30 {
            for (p, _, _) in &players {
                p.resync();
            }
            let key = Frame::new(FrameKind::Video, round * 100, Bytes::from_static(&[0x17, 1, 0, 0, 0, 7, 7]));
            deliver(Arc::new(key), &mut expected);
        }
        for i in 0..8u32 {
            let n = (round * 8 + i) as u8;
            let mut payload = vec![0xaf, 0x01];
            payload.resize(3072, n);
            deliver(Arc::new(Frame::new(FrameKind::Audio, round * 100 + i, Bytes::from(payload))), &mut expected);
            // The lanes' turns, spread over the round's frames.
            let turn = i as usize * lanes / 8;
            if (i as usize + 1) * lanes / 8 == turn {
                continue;
            }
            if turn == lanes - 1 {
                // Frames went to players out of step only (those in step were pruned).
                outside.push(cohort.outside_len());
            }
            let f = flush_lane(turn);
            let in_lane = players.iter().filter(|(p, _, _)| p.lane == turn).count();
            assert!(f.direct + f.in_step <= in_lane, "lane {turn} wrote for others: {f:?}");
            total.players += f.players;
            total.direct += f.direct;
            total.in_step += f.in_step;
            total.bytes += f.bytes;
        }
        stepped.push(cohort.stepped());
        // Members and players out of step are apart (the walk of `outside` prunes
        // those that stepped in).
        assert!(cohort.outside_len() >= players.len() - cohort.stepped());
        monoio::time::sleep(Duration::from_millis(2)).await;
    }
    // Frames the cohort holds when the stream ends still go out.
    for i in 0..3u32 {
        deliver(Arc::new(Frame::new(FrameKind::Audio, 7000 + i, Bytes::from_static(&[0xaf, 1, 5]))), &mut expected);
    }
    let mut got = vec![];
    for (p, r, w) in players {
        p.end(PlayerEnd::StreamEnded);
        w.await;
        let bytes = r.join().unwrap();
        let (tags, raw) = (dechunk(&bytes), bytes.len());
        assert!(!p.is_in_step());
        assert_eq!(p.bytes_sent(), raw as u64, "bytes counted for the player, in and out of step");
        got.push((tags, expected.clone()));
    }
    assert_eq!(cohort.stepped(), 0);
    assert!(outside[5..30].iter().any(|&n| n <= 1), "deliver walked players in step: {outside:?}");
    (got, total, stepped)
}

#[test]
fn cohort_members_get_every_frame_once_and_leave_it_for_anything_of_their_own() {
    let mut runs = vec![];
    for lanes in [1, 4] {
        let legacy = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new().enable_timer().build();
        runs.push(legacy.unwrap().block_on(cohort_run(lanes)));
        if let Ok(mut rt) = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new().enable_timer().build() {
            runs.push(rt.block_on(cohort_run(lanes)));
        }
    }
    for (got, total, stepped) in runs {
        for (i, (got, expected)) in got.iter().enumerate() {
            assert_eq!(got.len(), expected.len(), "player {i}");
            assert!(got == expected, "player {i}: tags lost, doubled or reordered");
        }
        assert!(total.in_step > 0 && total.direct > 0, "both ways were used: {total:?}");
        // The two quick readers are in step before the gap and again after the keyframe.
        assert!(stepped[5..30].iter().any(|&n| n >= 2), "in step before the gap: {stepped:?}");
        assert!(stepped[35..].iter().any(|&n| n >= 2), "in step after the keyframe: {stepped:?}");
        // The late reader's socket filled: it was out of step for a while.
        assert!(stepped[5..30].iter().any(|&n| n < 3), "the full socket left the cohort: {stepped:?}");
    }
}

#[test]
fn merge_windows_split_into_lanes_of_about_25_ms() {
    let ms = Duration::from_millis;
    let got: Vec<usize> = [0, 1, 30, 49, 50, 60, 100, 200, 1000].iter().map(|&m| lanes_for(ms(m))).collect();
    assert_eq!(got, [1, 1, 1, 1, 2, 2, 4, 8, 32]);
}

#[test]
fn missed_turns_are_flushed_once_per_lane_at_most() {
    // On time (or woken early): the next turn only.
    assert_eq!(turns_due(0, 1, 8), 1..=1);
    assert_eq!(turns_due(5, 5, 8), 6..=6);
    // Two turns late: both.
    assert_eq!(turns_due(5, 7, 8), 6..=7);
    // Far behind: each lane once, ending at the due turn.
    assert_eq!(turns_due(5, 100, 8), 93..=100);
    assert_eq!(turns_due(5, 100, 1), 100..=100);
}

#[test]
fn rest_after_slices_the_partly_sent_buffer() {
    let mut bufs = vec![Bytes::from_static(b"abc"), Bytes::from_static(b"defg"), Bytes::from_static(b"h")];
    assert_eq!(rest_after(&mut bufs.clone(), 0), bufs);
    assert_eq!(rest_after(&mut bufs.clone(), 3), vec![Bytes::from_static(b"defg"), Bytes::from_static(b"h")]);
    assert_eq!(rest_after(&mut bufs.clone(), 5), vec![Bytes::from_static(b"fg"), Bytes::from_static(b"h")]);
    assert!(rest_after(&mut bufs, 8).is_empty());
    assert!(bufs.is_empty());
}
