use super::*;

#[test]
fn short_reads_fail_cleanly() {
    let mut r = Reader::new(&[1, 2, 3], "test");
    assert_eq!(r.u16().unwrap(), 0x0102);
    assert!(r.u16().is_err());
    assert_eq!(r.u8().unwrap(), 3);
    assert!(r.u8().is_err());
    assert!(r.bytes(usize::MAX).is_err());
    assert!(r.is_empty());
}

#[test]
fn u24_is_big_endian() {
    let mut r = Reader::new(&[0x01, 0x02, 0x03], "test");
    assert_eq!(r.u24().unwrap(), 0x010203);
}
