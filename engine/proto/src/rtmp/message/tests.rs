use super::*;

fn reparse(m: &RtmpMessage) -> RtmpMessage {
    RtmpMessage::parse(m.type_id(), m.payload_bytes(), Amf0Limits::default()).unwrap()
}

#[test]
fn control_messages_roundtrip_and_vectors() {
    let msgs = [
        RtmpMessage::SetChunkSize(4096),
        RtmpMessage::Abort { csid: 4 },
        RtmpMessage::Acknowledgement { sequence_number: 123 },
        RtmpMessage::WindowAckSize(2_500_000),
        RtmpMessage::SetPeerBandwidth { window_size: 2_500_000, limit: PeerBandwidthLimit::Dynamic },
        RtmpMessage::UserControl(UserControl::StreamBegin(1)),
        RtmpMessage::UserControl(UserControl::SetBufferLength { stream_id: 1, buffer_ms: 3000 }),
        RtmpMessage::UserControl(UserControl::PingRequest(77)),
        RtmpMessage::UserControl(UserControl::Unknown { event_type: 31, data: Bytes::from_static(&[0, 0, 0, 1]) }),
    ];
    for m in &msgs {
        assert_eq!(&reparse(m), m);
    }
    assert_eq!(
        &RtmpMessage::SetPeerBandwidth { window_size: 2_500_000, limit: PeerBandwidthLimit::Dynamic }.payload_bytes()[..],
        &[0x00, 0x26, 0x25, 0xA0, 0x02]
    );
    assert_eq!(&RtmpMessage::UserControl(UserControl::StreamBegin(1)).payload_bytes()[..], &[0, 0, 0, 0, 0, 1]);
}

#[test]
fn short_control_messages_are_malformed() {
    for t in [1u8, 2, 3, 4, 5, 6] {
        let r = RtmpMessage::parse(t, Bytes::from_static(&[0]), Amf0Limits::default());
        assert!(matches!(r, Err(RtmpError::Malformed { .. })), "type {t}");
    }
}

#[test]
fn command_roundtrip_and_amf3_variant() {
    let c = Command::new("publish", 5.0, Value::Null, vec![Value::string("key"), Value::string("live")]);
    let b = c.to_bytes();
    assert_eq!(Command::parse(&b, false, Amf0Limits::default()).unwrap(), c);
    let mut b3 = vec![0u8];
    b3.extend_from_slice(&b);
    let m = RtmpMessage::parse(type_id::COMMAND_AMF3, b3.into(), Amf0Limits::default()).unwrap();
    assert_eq!(m, RtmpMessage::Command { amf3: true, command: c });
    assert!(Command::parse(&[0x05], false, Amf0Limits::default()).is_err());
}

#[test]
fn set_data_frame_is_stripped() {
    let mut b = BytesMut::new();
    amf0::encode(&Value::string("@setDataFrame"), &mut b);
    let inner_start = b.len();
    amf0::encode(&Value::string("onMetaData"), &mut b);
    amf0::encode(&Value::EcmaArray(vec![("width".into(), Value::Number(320.0))]), &mut b);
    let b = b.freeze();
    let stripped = strip_set_data_frame(&b);
    assert_eq!(&stripped[..], &b[inner_start..]);
    assert_eq!(data_name(&stripped).as_deref(), Some("onMetaData"));
    // Already plain: unchanged.
    assert_eq!(strip_set_data_frame(&stripped), stripped);
}

#[test]
fn aggregate_split() {
    let mut b = Vec::new();
    for (t, ts, body) in [(9u8, 1000u32, &b"abc"[..]), (8, 1040, b"de")] {
        b.push(t);
        b.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        b.extend_from_slice(&ts.to_be_bytes()[1..]);
        b.push((ts >> 24) as u8);
        b.extend_from_slice(&[0, 0, 1]);
        b.extend_from_slice(body);
        b.extend_from_slice(&(11 + body.len() as u32).to_be_bytes());
    }
    let subs = split_aggregate(&Bytes::from(b.clone()), 50).unwrap();
    assert_eq!(subs.len(), 2);
    assert_eq!((subs[0].type_id, subs[0].timestamp), (9, 50));
    assert_eq!((subs[1].type_id, subs[1].timestamp), (8, 90));
    assert_eq!(&subs[1].payload[..], b"de");
    assert!(split_aggregate(&Bytes::from(b[..b.len() - 1].to_vec()), 0).is_err());
}

#[test]
fn media_bytes_decode() {
    let bytes = encode_media(4096, MediaType::Video, 1, 40, &[0x17, 0x01]).unwrap();
    assert_eq!(bytes[0], 0x06);
    assert_eq!(&bytes[1..4], &[0, 0, 40]);
    assert_eq!(bytes[7], 9);
    assert_eq!(&bytes[8..12], &[1, 0, 0, 0]);
}
