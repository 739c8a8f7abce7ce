use super::*;
use crate::fuzz::{Edits, XorShift};
use crate::rtmp::amf0::Value;
use crate::rtmp::chunk::{MessageHeader, encode_message};
use crate::rtmp::message::{Command, type_id};

/// Edits of the RTMP streams (no boundary overwrites: the chunk headers' own
/// fields reach those through the flips).
fn mutate(rng: &mut XorShift, seed: &[u8]) -> Vec<u8> {
    let edits = Edits { rounds: 8, boundaries: &[], splice: [0xFF, 0xFF, 0xFF, 0x7F] };
    rng.mutate(seed, &edits)
}

/// A plausible client byte stream after the handshake: connect, createStream,
/// publish, metadata, media, an aggregate, play, deleteStream.
fn session_corpus() -> Vec<u8> {
    let mut b = vec![0x20]; // flags: accept everything, split 64+
    let cmd = |name: &str, txn: f64, obj: Value, args: Vec<Value>| Command::new(name, txn, obj, args).to_bytes();
    let mut put = |csid: u32, type_id: u8, stream_id: u32, ts: u32, p: &[u8]| {
        let h = MessageHeader { csid, timestamp: ts, type_id, stream_id };
        encode_message(&mut b, 128, &h, p).unwrap();
    };
    put(
        3,
        type_id::COMMAND_AMF0,
        0,
        0,
        &cmd(
            "connect",
            1.0,
            Value::object([("app", Value::string("live")), ("tcUrl", Value::string("rtmp://x/live"))]),
            vec![],
        ),
    );
    put(3, type_id::COMMAND_AMF0, 0, 0, &cmd("createStream", 2.0, Value::Null, vec![]));
    put(
        8,
        type_id::COMMAND_AMF0,
        1,
        0,
        &cmd("publish", 3.0, Value::Null, vec![Value::string("k?t=1"), Value::string("live")]),
    );
    let mut meta = Vec::new();
    amf0::encode_all(
        &[
            Value::string("@setDataFrame"),
            Value::string("onMetaData"),
            Value::EcmaArray(vec![("width".into(), Value::Number(320.0))]),
        ],
        &mut meta,
    );
    put(4, type_id::DATA_AMF0, 1, 0, &meta);
    put(6, type_id::VIDEO, 1, 0, &[0x17, 0, 0, 0, 0, 1, 2, 3]);
    put(4, type_id::AUDIO, 1, 23, &[0xAF, 1, 9, 9]);
    let mut agg = vec![9, 0, 0, 2, 0, 0, 40, 0, 0, 0, 1, 0x27, 1, 0, 0, 0, 13];
    agg.extend_from_slice(&[8, 0, 0, 1, 0, 0, 46, 0, 0, 0, 1, 0xAF, 0, 0, 0, 12]);
    put(6, type_id::AGGREGATE, 1, 40, &agg);
    put(3, type_id::COMMAND_AMF0, 0, 0, &cmd("createStream", 4.0, Value::Null, vec![]));
    put(8, type_id::COMMAND_AMF0, 2, 0, &cmd("play", 0.0, Value::Null, vec![Value::string("other")]));
    put(2, type_id::USER_CONTROL, 0, 0, &[0, 6, 0, 0, 0, 5]);
    put(2, type_id::SET_CHUNK_SIZE, 0, 0, &[0, 0, 0x10, 0]);
    put(3, type_id::COMMAND_AMF0, 0, 0, &cmd("pause", 0.0, Value::Null, vec![true.into()]));
    put(3, type_id::COMMAND_AMF0, 0, 0, &cmd("deleteStream", 0.0, Value::Null, vec![1.0.into()]));
    b
}

#[test]
fn corpus_is_accepted_unmutated() {
    // The corpus must reach deep states, or mutating it tests little.
    let corpus = session_corpus();
    let mut now = Instant::now();
    let mut s = ServerSession::new(SessionConfig { rng_seed: 1, ..SessionConfig::default() }, now);
    s.handle_input(now, &handshake_prefix()).unwrap();
    s.handle_input(now, &corpus[1..]).unwrap();
    let mut media = 0;
    let mut closed = Vec::new();
    while let Some(ev) = s.poll_event() {
        match ev {
            SessionEvent::ConnectRequested { .. } => s.accept_connect().unwrap(),
            SessionEvent::PublishRequested { stream_id, .. } => s.accept_publish(stream_id).unwrap(),
            SessionEvent::PlayRequested { stream_id, .. } => s.accept_play(stream_id).unwrap(),
            SessionEvent::Media { .. } => media += 1,
            SessionEvent::StreamClosed { stream_id } => closed.push(stream_id),
            _ => {}
        }
    }
    now += Duration::from_millis(1);
    s.handle_input(now, &[]).unwrap();
    assert!(!s.is_closed());
    // Replayed after acceptance: metadata, video, audio, two from the aggregate.
    assert_eq!(media, 5);
    assert_eq!(closed, vec![1]);
}

#[test]
fn pseudo_random_inputs_never_panic() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let corpus = session_corpus();
    let amf_seed = {
        let mut b = Vec::new();
        amf0::encode_all(
            &[
                Value::string("onMetaData"),
                Value::EcmaArray(vec![
                    ("a".into(), Value::StrictArray(vec![Value::Number(1.0), Value::Null])),
                    ("b".into(), Value::object([("c", Value::Boolean(true))])),
                    ("d".into(), Value::Avmplus(crate::rtmp::amf3::Value::Integer(7))),
                ]),
            ],
            &mut b,
        );
        b
    };
    let mut hs_seed = Vec::new();
    let mut out = Vec::new();
    let mut r = SmallRng::seed_from_u64(5);
    let mut server = ServerHandshake::new();
    let mut c0c1 = Vec::new();
    let _client = ClientHandshake::new(HandshakeKind::Digest(DigestScheme::OffsetAt8), &mut r, &mut c0c1);
    server.handle_input(&mut &c0c1[..], &mut r, &mut out).unwrap();
    hs_seed.extend_from_slice(&out);

    for i in 0..3000 {
        let n = rng.below(if i % 10 == 0 { 4000 } else { 300 });
        let random = rng.bytes(n);
        fuzz_amf0(&random);
        fuzz_chunk_decoder(&random);
        fuzz_handshake(&random);
        fuzz_server_session(&random, Instant::now());
        fuzz_amf0(&mutate(&mut rng, &amf_seed));
        fuzz_chunk_decoder(&mutate(&mut rng, &corpus[1..]));
        fuzz_server_session(&mutate(&mut rng, &corpus), Instant::now());
        if i % 20 == 0 {
            fuzz_handshake(&mutate(&mut rng, &hs_seed));
            fuzz_handshake(&mutate(&mut rng, &c0c1));
        }
    }
}

#[test]
fn regression_inputs() {
    // Inputs that exercised edge cases during development.
    for input in [
        &[][..],
        &[0x00],
        &[0xC2, 0x00],
        &[0x02, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0, 0, 0, 0],
        &[0x11, 0x0A, 0x0B, 0x01],
    ] {
        fuzz_amf0(input);
        fuzz_chunk_decoder(input);
        fuzz_handshake(input);
        fuzz_server_session(input, Instant::now());
    }
}
