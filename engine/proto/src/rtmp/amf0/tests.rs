use super::*;

fn roundtrip(v: &Value) {
    let bytes = v.to_bytes();
    let (back, used) = decode_one(&bytes, Amf0Limits::default()).unwrap();
    assert_eq!(used, bytes.len());
    assert_eq!(&back, v);
    assert_eq!(back.to_bytes(), bytes);
}

#[test]
fn known_vectors() {
    // AMF0 spec §2.2 / §2.4 encodings.
    assert_eq!(Value::Number(1.0).to_bytes(), [0x00, 0x3F, 0xF0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(Value::string("connect").to_bytes(), b"\x02\x00\x07connect".to_vec());
    assert_eq!(Value::Boolean(true).to_bytes(), [0x01, 0x01]);
    assert_eq!(Value::Null.to_bytes(), [0x05]);
    assert_eq!(Value::object([("a", Value::Null)]).to_bytes(), [0x03, 0x00, 0x01, b'a', 0x05, 0x00, 0x00, 0x09]);
    assert_eq!(Value::EcmaArray(vec![]).to_bytes(), [0x08, 0, 0, 0, 0, 0x00, 0x00, 0x09]);
}

#[test]
fn decode_ffmpeg_connect_object() {
    // The start of ffmpeg's connect command: "connect", 1.0, {app: "live", type: "nonprivate"}
    let mut b = Vec::new();
    b.extend_from_slice(b"\x02\x00\x07connect");
    b.extend_from_slice(&[0x00, 0x3F, 0xF0, 0, 0, 0, 0, 0, 0]);
    b.extend_from_slice(b"\x03\x00\x03app\x02\x00\x04live");
    b.extend_from_slice(b"\x00\x04type\x02\x00\x0anonprivate\x00\x00\x09");
    let vals = decode_all(&b, Amf0Limits::default()).unwrap();
    assert_eq!(vals.len(), 3);
    assert_eq!(vals[0].as_str(), Some("connect"));
    assert_eq!(vals[1].as_f64(), Some(1.0));
    assert_eq!(vals[2].get_str("app"), Some("live"));
    assert_eq!(vals[2].get_str("type"), Some("nonprivate"));
    assert_eq!(vals[2].get("missing"), None);
}

#[test]
fn roundtrips() {
    roundtrip(&Value::Number(-12.5));
    roundtrip(&Value::Boolean(false));
    roundtrip(&Value::string("héllo"));
    roundtrip(&Value::LongString("x".repeat(70_000)));
    roundtrip(&Value::Null);
    roundtrip(&Value::Undefined);
    roundtrip(&Value::Reference(3));
    roundtrip(&Value::Unsupported);
    roundtrip(&Value::XmlDocument("<a/>".into()));
    roundtrip(&Value::Date { millis: 1.7e12, time_zone: 0 });
    roundtrip(&Value::StrictArray(vec![Value::Number(1.0), Value::Null]));
    roundtrip(&Value::EcmaArray(vec![
        ("duration".into(), Value::Number(0.0)),
        ("encoder".into(), Value::string("Lavf")),
    ]));
    roundtrip(&Value::TypedObject { class_name: "C".into(), properties: vec![("x".into(), Value::Boolean(true))] });
    roundtrip(&Value::object([("nested", Value::object([("deeper", Value::StrictArray(vec![]))]))]));
    roundtrip(&Value::Avmplus(amf3::Value::Integer(5)));
}

#[test]
fn long_plain_string_encodes_as_long_string() {
    let v = Value::String("y".repeat(70_000));
    let b = v.to_bytes();
    assert_eq!(b[0], marker::LONG_STRING);
    let (back, _) = decode_one(&b, Amf0Limits::default()).unwrap();
    assert_eq!(back.as_str().map(str::len), Some(70_000));
}

#[test]
fn depth_limit_rejects_deep_nesting() {
    let mut b = Vec::new();
    for _ in 0..40 {
        b.push(marker::STRICT_ARRAY);
        b.extend_from_slice(&1u32.to_be_bytes());
    }
    b.push(marker::NULL);
    let err = decode_one(&b, Amf0Limits::default()).unwrap_err();
    assert!(matches!(err, RtmpError::LimitExceeded { what: "AMF nesting depth", .. }));
    let ok = Amf0Limits { max_depth: 64, ..Amf0Limits::default() };
    assert!(decode_one(&b, ok).is_ok());
}

#[test]
fn value_count_limit() {
    let mut b = vec![marker::STRICT_ARRAY];
    b.extend_from_slice(&1000u32.to_be_bytes());
    b.extend(std::iter::repeat_n(marker::NULL, 1000));
    let limits = Amf0Limits { max_values: 100, ..Amf0Limits::default() };
    assert!(matches!(decode_one(&b, limits), Err(RtmpError::LimitExceeded { .. })));
}

#[test]
fn huge_counts_do_not_allocate() {
    let mut b = vec![marker::STRICT_ARRAY];
    b.extend_from_slice(&u32::MAX.to_be_bytes());
    assert!(decode_one(&b, Amf0Limits::default()).is_err());
    let b = [marker::LONG_STRING, 0xFF, 0xFF, 0xFF, 0xFF, b'a'];
    assert!(decode_one(&b, Amf0Limits::default()).is_err());
}

#[test]
fn truncated_inputs_fail() {
    let full = Value::object([("k", Value::string("v"))]).to_bytes();
    for n in 0..full.len() - 3 {
        assert!(decode_one(&full[..n], Amf0Limits::default()).is_err(), "{n}");
    }
}

#[test]
fn ecma_array_without_terminator_at_end_of_input() {
    let mut b = vec![marker::ECMA_ARRAY, 0, 0, 0, 1];
    b.extend_from_slice(b"\x00\x01a\x05");
    let (v, _) = decode_one(&b, Amf0Limits::default()).unwrap();
    assert_eq!(v.get("a"), Some(&Value::Null));
}

#[test]
fn unknown_marker_is_malformed() {
    assert!(matches!(decode_one(&[0x42], Amf0Limits::default()), Err(RtmpError::Malformed { .. })));
    assert!(matches!(decode_one(&[marker::MOVIECLIP], Amf0Limits::default()), Err(RtmpError::Unsupported(_))));
}
