use super::super::amf0::{self, Amf0Limits};
use super::*;

fn decode(bytes: &[u8]) -> Result<Value, RtmpError> {
    let mut budget = Budget::new(Amf0Limits::default());
    let mut r = Reader::new(bytes, "AMF3 value");
    decode_value_in(&mut r, &mut budget, 0)
}

fn roundtrip(v: Value) {
    let mut b = Vec::new();
    encode(&v, &mut b);
    assert_eq!(decode(&b).unwrap(), v, "{b:02x?}");
}

#[test]
fn u29_boundaries() {
    for v in [0, 0x7F, 0x80, 0x3FFF, 0x4000, 0x1F_FFFF, 0x20_0000, MAX_U29] {
        let mut b = Vec::new();
        put_u29(&mut b, v);
        assert_eq!(read_u29(&mut Reader::new(&b, "t")).unwrap(), v);
    }
}

#[test]
fn integers_sign_extend() {
    assert_eq!(decode(&[0x04, 0xFF, 0xFF, 0xFF, 0xFF]).unwrap(), Value::Integer(-1));
    assert_eq!(decode(&[0x04, 0x05]).unwrap(), Value::Integer(5));
    roundtrip(Value::Integer(-(1 << 28)));
    roundtrip(Value::Integer((1 << 28) - 1));
}

#[test]
fn roundtrips() {
    roundtrip(Value::Undefined);
    roundtrip(Value::Null);
    roundtrip(Value::Boolean(true));
    roundtrip(Value::Double(2.5));
    roundtrip(Value::String("abc".into()));
    roundtrip(Value::Date(1.0e12));
    roundtrip(Value::ByteArray(vec![1, 2, 3]));
    roundtrip(Value::Array {
        assoc: vec![("k".into(), Value::Integer(1))],
        dense: vec![Value::Null, Value::String("x".into())],
    });
    roundtrip(Value::Object {
        class_name: String::new(),
        sealed: vec![("a".into(), Value::Integer(1))],
        dynamic: Some(vec![("b".into(), Value::Boolean(false))]),
    });
    roundtrip(Value::VectorInt { fixed: false, items: vec![-1, 2] });
    roundtrip(Value::VectorDouble { fixed: true, items: vec![0.5] });
    roundtrip(Value::VectorObject { fixed: false, type_name: "T".into(), items: vec![Value::Null] });
    roundtrip(Value::Dictionary { weak_keys: false, entries: vec![(Value::String("k".into()), Value::Integer(3))] });
    roundtrip(Value::Externalizable {
        class_name: "flex.messaging.io.ArrayCollection".into(),
        inner: Box::new(Value::Array { assoc: vec![], dense: vec![Value::Integer(1)] }),
    });
}

#[test]
fn string_and_trait_references_resolve() {
    // Array of two anonymous objects {a: "xy"} sharing traits and string "xy".
    let b = [
        0x09, 0x05, 0x01, // array, 2 dense, no assoc
        0x0A, 0x13, 0x01, 0x03, b'a', 0x06, 0x05, b'x', b'y', // {a:"xy"} traits inline
        0x0A, 0x01, 0x06, 0x02, // traits ref 0, string ref 1 ("xy")
    ];
    let v = decode(&b).unwrap();
    let Value::Array { dense, .. } = v else { panic!("not an array") };
    assert_eq!(dense.len(), 2);
    assert_eq!(dense[1].get("a").and_then(Value::as_str), Some("xy"));
}

#[test]
fn references_out_of_range_fail() {
    assert!(decode(&[0x06, 0x00]).is_err());
    assert!(decode(&[0x0A, 0x00]).is_err());
    assert!(decode(&[0x0A, 0x01]).is_err());
}

#[test]
fn unknown_externalizable_is_unsupported() {
    let b = [0x0A, 0x07, 0x03, b'X'];
    assert!(matches!(decode(&b), Err(RtmpError::Unsupported(_))));
}

#[test]
fn amf0_switch_marker() {
    let mut b = vec![amf0::marker::AVMPLUS];
    encode(&Value::String("hi".into()), &mut b);
    let (v, _) = amf0::decode_one(&b, Amf0Limits::default()).unwrap();
    assert_eq!(v.as_str(), Some("hi"));
}

#[test]
fn depth_limit_applies() {
    let mut b = Vec::new();
    for _ in 0..40 {
        b.extend_from_slice(&[0x09, 0x03, 0x01]);
    }
    b.push(0x01);
    assert!(matches!(decode(&b), Err(RtmpError::LimitExceeded { .. })));
}

#[test]
fn string_reference_amplification_is_bounded() {
    // One 1000-byte string then many 2-byte references to it.
    let mut b = vec![0x09];
    put_u29(&mut b, (20_000 << 1) | 1);
    b.push(0x01);
    b.push(0x06);
    put_u29(&mut b, (1000 << 1) | 1);
    b.extend(std::iter::repeat_n(b'z', 1000));
    for _ in 0..19_999 {
        b.extend_from_slice(&[0x06, 0x00]);
    }
    let limits = Amf0Limits { max_string_bytes: 1 << 20, ..Amf0Limits::default() };
    let mut budget = Budget::new(limits);
    let mut r = Reader::new(&b, "AMF3 value");
    assert!(matches!(decode_value_in(&mut r, &mut budget, 0), Err(RtmpError::LimitExceeded { .. })));
}
