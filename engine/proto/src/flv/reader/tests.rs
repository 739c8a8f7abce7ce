use super::*;
use crate::codec::test_util::testdata;
use crate::flv::{encode_tag, file_header};

fn read_all(data: &[u8], chunk: usize) -> Result<(FlvReader, Vec<FlvTag>), FlvError> {
    let mut reader = FlvReader::new(FlvReader::DEFAULT_MAX_TAG_SIZE);
    let mut tags = Vec::new();
    for piece in data.chunks(chunk.max(1)) {
        reader.handle_input(piece);
        while let Some(tag) = reader.poll_tag()? {
            tags.push(tag);
        }
    }
    Ok((reader, tags))
}

#[test]
fn round_trips_generated_stream() {
    let mut stream = file_header(true, true).to_vec();
    let bodies: Vec<Vec<u8>> = (0..20).map(|i| vec![i as u8; i * 700]).collect();
    for (i, body) in bodies.iter().enumerate() {
        let tag_type = [TagType::Audio, TagType::Video, TagType::Script][i % 3];
        let ts = (i as u32) * 0x0100_0000 + 33;
        stream.extend_from_slice(&encode_tag(tag_type, ts, body).unwrap());
    }
    for chunk in [1, 7, 4096, stream.len()] {
        let (reader, tags) = read_all(&stream, chunk).unwrap();
        assert_eq!(reader.buffered(), 0);
        let h = reader.header().unwrap();
        assert!(h.has_audio && h.has_video && h.version == 1);
        assert_eq!(tags.len(), bodies.len());
        for (i, tag) in tags.iter().enumerate() {
            assert_eq!(tag.body, bodies[i]);
            assert_eq!(tag.timestamp_ms, (i as u32) * 0x0100_0000 + 33);
        }
    }
}

#[test]
fn real_file_round_trips_byte_for_byte() {
    let file = testdata("media/small.flv");
    let (reader, tags) = read_all(&file, 1000).unwrap();
    assert_eq!(reader.buffered(), 0);
    assert_eq!(tags.len(), 129);
    let h = reader.header().unwrap();
    let mut rebuilt = file_header(h.has_audio, h.has_video).to_vec();
    for tag in &tags {
        rebuilt.extend_from_slice(&encode_tag(tag.tag_type, tag.timestamp_ms, &tag.body).unwrap());
    }
    assert_eq!(rebuilt, file);
}

#[test]
fn rejects_bad_input() {
    let mut r = FlvReader::new(100);
    r.handle_input(b"FLX");
    assert_eq!(r.poll_tag(), Err(FlvError::NotFlv));
    assert_eq!(r.poll_tag(), Err(FlvError::NotFlv), "stays failed");

    let mut r = FlvReader::new(100);
    r.handle_input(b"GE");
    assert_eq!(r.poll_tag(), Err(FlvError::NotFlv), "detected early");

    let mut r = FlvReader::new(100);
    r.handle_input(&file_header(true, true));
    r.handle_input(&[9, 0, 0, 101, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(r.poll_tag(), Err(FlvError::TagTooLarge { size: 101, limit: 100 }));

    let mut r = FlvReader::new(100);
    r.handle_input(b"FLV\x01\x05\xFF\xFF\xFF\xFF");
    assert!(matches!(r.poll_tag(), Err(FlvError::Malformed(_))));

    let mut r = FlvReader::new(100);
    r.handle_input(&file_header(true, true));
    r.handle_input(&[0x29, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 11]);
    assert!(matches!(r.poll_tag(), Err(FlvError::Unsupported(_))));
}

#[test]
fn skips_unknown_tag_types_and_extra_header_bytes() {
    let mut stream = b"FLV\x01\x01\x00\x00\x00\x0B\xEE\xEE\x00\x00\x00\x00".to_vec();
    stream.extend_from_slice(&[7, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0xAA, 0, 0, 0, 12]);
    stream.extend_from_slice(&encode_tag(TagType::Video, 5, &[1, 2, 3]).unwrap());
    let (reader, tags) = read_all(&stream, 3).unwrap();
    assert_eq!(reader.skipped_tags(), 1);
    assert_eq!(tags.len(), 1);
    assert_eq!((tags[0].timestamp_ms, &tags[0].body[..]), (5, &[1, 2, 3][..]));
}

#[test]
fn garbage_never_panics() {
    let mut seed = 3u32;
    for _ in 0..500 {
        let mut data = file_header(true, true).to_vec();
        for _ in 0..(seed % 300) {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            data.push((seed >> 16) as u8);
        }
        let _ = read_all(&data, (seed % 17) as usize);
    }
}
