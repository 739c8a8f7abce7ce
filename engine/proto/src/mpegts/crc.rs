//! CRC-32 of MPEG-2 PSI sections (ISO/IEC 13818-1, annex A): polynomial
//! 0x04C11DB7, initial value 0xFFFFFFFF, MSB first, no final XOR. A section
//! including its `CRC_32` field checks to zero.

/// Table for byte-at-a-time computation, built at compile time.
const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u32) << 24;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000_0000 != 0 { (crc << 1) ^ 0x04C1_1DB7 } else { crc << 1 };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// The MPEG-2 CRC-32 of `data`.
pub fn crc32_mpeg2(data: &[u8]) -> u32 {
    data.iter().fold(0xFFFF_FFFF, |crc, &b| (crc << 8) ^ TABLE[usize::from((crc >> 24) as u8 ^ b)])
}

#[cfg(test)]
mod tests;
