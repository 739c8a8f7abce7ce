//! Program specific information sections (ISO/IEC 13818-1, 2.4.4): the
//! program association table (2.4.4.3, table 2-30) and the program map table
//! (2.4.4.8, table 2-33), each closed by the MPEG-2 CRC-32.

use super::crc::crc32_mpeg2;

/// One elementary stream entry of a PMT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PmtStream {
    /// `stream_type` (table 2-34): 0x1B H.264, 0x0F AAC with ADTS, ...
    pub stream_type: u8,
    /// `elementary_PID`.
    pub pid: u16,
}

/// Closes a section: fills `section_length` (bytes after it, CRC included)
/// and appends the CRC.
fn finish_section(mut section: Vec<u8>) -> Vec<u8> {
    let section_length = (section.len() - 3 + 4) as u16;
    section[1] = (section[1] & 0xF0) | ((section_length >> 8) as u8 & 0x0F);
    section[2] = section_length as u8;
    let crc = crc32_mpeg2(&section);
    section.extend_from_slice(&crc.to_be_bytes());
    section
}

/// The common long-form header: `table_id`, `section_syntax_indicator` 1,
/// '0', reserved '11', length (filled later), a 16-bit id, reserved '11',
/// `version_number`, `current_next_indicator` 1, section 0 of 0.
fn section_header(table_id: u8, id: u16, version: u8) -> Vec<u8> {
    let mut s = Vec::with_capacity(64);
    s.extend_from_slice(&[table_id, 0xB0, 0x00]);
    s.extend_from_slice(&id.to_be_bytes());
    s.push(0xC0 | ((version & 0x1F) << 1) | 0x01);
    s.extend_from_slice(&[0x00, 0x00]);
    s
}

/// A PAT with one program (`program_number` → `pmt_pid`).
pub fn pat_section(transport_stream_id: u16, program_number: u16, pmt_pid: u16, version: u8) -> Vec<u8> {
    let mut s = section_header(0x00, transport_stream_id, version);
    s.extend_from_slice(&program_number.to_be_bytes());
    s.extend_from_slice(&(0xE000 | (pmt_pid & 0x1FFF)).to_be_bytes());
    finish_section(s)
}

/// A PMT for one program without descriptors.
pub fn pmt_section(program_number: u16, version: u8, pcr_pid: u16, streams: &[PmtStream]) -> Vec<u8> {
    let mut s = section_header(0x02, program_number, version);
    s.extend_from_slice(&(0xE000 | (pcr_pid & 0x1FFF)).to_be_bytes());
    // reserved '1111', program_info_length 0
    s.extend_from_slice(&[0xF0, 0x00]);
    for st in streams {
        s.push(st.stream_type);
        s.extend_from_slice(&(0xE000 | (st.pid & 0x1FFF)).to_be_bytes());
        s.extend_from_slice(&[0xF0, 0x00]);
    }
    finish_section(s)
}

#[cfg(test)]
mod tests;
