//! A bounded MSB-first bit reader with Exp-Golomb codes, and RBSP extraction.
//!
//! H.264 (ITU-T Rec. H.264 | ISO/IEC 14496-10) 7.2 defines the `u(n)`, `ue(v)`
//! and `se(v)` descriptors read here; 9.1 defines Exp-Golomb parsing; 7.4.1
//! defines `emulation_prevention_three_byte`, removed by [`nal_to_rbsp`].

use super::CodecError;

/// Reads bits most-significant first from a borrowed byte slice.
///
/// Every read is bounds checked and returns [`CodecError::Truncated`] when the
/// input runs out; nothing here can panic on malformed input.
#[derive(Debug, Clone)]
pub struct BitReader<'a> {
    data: &'a [u8],
    /// Position in bits from the start of `data`.
    pos: usize,
}

impl<'a> BitReader<'a> {
    /// A reader positioned at the first bit of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    /// Bits not yet read.
    pub fn remaining_bits(&self) -> usize {
        (self.data.len() * 8).saturating_sub(self.pos)
    }

    /// Reads one bit (`u(1)`).
    pub fn read_bit(&mut self) -> Result<bool, CodecError> {
        let byte = *self.data.get(self.pos / 8).ok_or(CodecError::Truncated)?;
        let bit = (byte >> (7 - (self.pos % 8))) & 1;
        self.pos += 1;
        Ok(bit == 1)
    }

    /// Reads `n` bits (`u(n)`), `n <= 32`, as an unsigned integer.
    pub fn read_bits(&mut self, n: u32) -> Result<u32, CodecError> {
        if n > 32 {
            return Err(CodecError::Malformed("bit field wider than 32 bits"));
        }
        if (n as usize) > self.remaining_bits() {
            return Err(CodecError::Truncated);
        }
        let mut value: u64 = 0;
        for _ in 0..n {
            value = (value << 1) | u64::from(self.read_bit()?);
        }
        // n <= 32, so the value fits.
        Ok(value as u32)
    }

    /// Skips `n` bits.
    pub fn skip_bits(&mut self, n: usize) -> Result<(), CodecError> {
        if n > self.remaining_bits() {
            return Err(CodecError::Truncated);
        }
        self.pos += n;
        Ok(())
    }

    /// Reads an unsigned Exp-Golomb code (`ue(v)`, H.264 9.1).
    ///
    /// Codes longer than 32 leading zero bits are rejected as malformed; valid
    /// syntax elements never need more.
    pub fn read_ue(&mut self) -> Result<u32, CodecError> {
        let mut leading_zeros = 0u32;
        while !self.read_bit()? {
            leading_zeros += 1;
            if leading_zeros > 31 {
                return Err(CodecError::Malformed("exp-golomb code too long"));
            }
        }
        let suffix = self.read_bits(leading_zeros)?;
        // (1 << 31) - 1 + suffix(< 1 << 31) fits in u32.
        Ok(((1u64 << leading_zeros) - 1 + u64::from(suffix)) as u32)
    }

    /// Reads a signed Exp-Golomb code (`se(v)`, H.264 9.1.1).
    pub fn read_se(&mut self) -> Result<i32, CodecError> {
        let k = i64::from(self.read_ue()?);
        let value = if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) };
        // |value| <= 2^31, clamp the single out-of-range case.
        Ok(value.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32)
    }
}

/// Copies a NAL unit's payload into `out` with every emulation prevention byte
/// (`0x000003` → `0x0000`) removed, giving the RBSP (H.264 7.3.1 / 7.4.1).
pub fn nal_to_rbsp(nal: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.reserve(nal.len());
    let mut zeros = 0usize;
    for &b in nal {
        if zeros >= 2 && b == 0x03 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
}

#[cfg(test)]
mod tests;
