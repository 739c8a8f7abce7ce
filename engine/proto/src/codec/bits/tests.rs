use super::*;

#[test]
fn reads_fixed_width_fields() {
    let mut r = BitReader::new(&[0b1010_1100, 0xFF]);
    assert!(r.read_bit().unwrap());
    assert_eq!(r.read_bits(3).unwrap(), 0b010);
    assert_eq!(r.read_bits(8).unwrap(), 0b1100_1111);
    assert_eq!(r.remaining_bits(), 4);
    assert_eq!(r.read_bits(5), Err(CodecError::Truncated));
    assert_eq!(r.read_bits(4).unwrap(), 0xF);
    assert_eq!(r.read_bit(), Err(CodecError::Truncated));
}

#[test]
fn exp_golomb_table_9_2() {
    // Codewords 1, 010, 011, 00100, 00101, 00110, 00111 → 0..=6
    // packed: 1 010 011 00100 00101 00110 00111 (+ padding)
    let bits = "1010011001000010100110001110000000";
    let mut bytes = vec![0u8; bits.len().div_ceil(8)];
    for (i, c) in bits.chars().enumerate() {
        if c == '1' {
            bytes[i / 8] |= 0x80 >> (i % 8);
        }
    }
    let mut r = BitReader::new(&bytes);
    for want in 0..=6 {
        assert_eq!(r.read_ue().unwrap(), want);
    }
    let mut r = BitReader::new(&bytes);
    for want in [0, 1, -1, 2, -2, 3, -3] {
        assert_eq!(r.read_se().unwrap(), want);
    }
}

#[test]
fn exp_golomb_rejects_overlong_and_truncated() {
    assert!(matches!(BitReader::new(&[0; 8]).read_ue(), Err(CodecError::Malformed(_))));
    assert_eq!(BitReader::new(&[0x00, 0x01]).read_ue(), Err(CodecError::Truncated));
    assert_eq!(BitReader::new(&[]).read_ue(), Err(CodecError::Truncated));
    // 31 leading zeros then a 1 and 31 suffix bits of ones: the largest value, 2^32 - 2.
    let mut r = BitReader::new(&[0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF]);
    assert_eq!(r.read_ue().unwrap(), u32::MAX - 1);
}

#[test]
fn rbsp_removes_emulation_prevention() {
    let mut out = Vec::new();
    nal_to_rbsp(&[0x67, 0x00, 0x00, 0x03, 0x01, 0x00, 0x00, 0x03, 0x03], &mut out);
    assert_eq!(out, [0x67, 0x00, 0x00, 0x01, 0x00, 0x00, 0x03]);
    nal_to_rbsp(&[0x00, 0x03, 0x00, 0x00, 0x00, 0x03], &mut out);
    assert_eq!(out, [0x00, 0x03, 0x00, 0x00, 0x00]);
}
