use super::*;

#[test]
fn header_flags() {
    assert_eq!(file_header(true, true), *b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00");
    assert_eq!(file_header(true, false)[4], 4);
    assert_eq!(file_header(false, true)[4], 1);
}

#[test]
fn tag_layout_with_extended_timestamp() {
    let tag = encode_tag(TagType::Video, 0x1234_5678, &[0xAA, 0xBB]).unwrap();
    assert_eq!(&tag[..], &[9, 0, 0, 2, 0x34, 0x56, 0x78, 0x12, 0, 0, 0, 0xAA, 0xBB, 0, 0, 0, 13]);
    let mut out = Vec::new();
    write_tag(&mut out, TagType::Video, 0x1234_5678, &[0xAA, 0xBB]).unwrap();
    assert_eq!(out, tag);
    let parts = tag_parts(TagType::Video, 0x1234_5678, Bytes::from_static(&[0xAA, 0xBB])).unwrap();
    assert_eq!(parts.len(), tag.len());
    assert_eq!(parts.to_bytes(), tag);
}

#[test]
fn rejects_oversized_bodies() {
    assert!(tag_header(TagType::Audio, 0, MAX_TAG_BODY_LEN).is_ok());
    assert_eq!(
        tag_header(TagType::Audio, 0, MAX_TAG_BODY_LEN + 1),
        Err(FlvError::TagTooLarge { size: MAX_TAG_BODY_LEN + 1, limit: MAX_TAG_BODY_LEN })
    );
}
