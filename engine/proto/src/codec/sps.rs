//! H.264 sequence parameter set, parsed as far as picture size and frame rate.
//!
//! Syntax: ITU-T Rec. H.264 (08/2021) 7.3.2.1.1 `seq_parameter_set_data()`,
//! 7.3.2.1.1.1 `scaling_list()`, E.1.1 `vui_parameters()`; semantics of the
//! cropping rectangle in 7.4.2.1.1 (equations 7-19 to 7-22 and table 6-1).

use super::CodecError;
use super::bits::{BitReader, nal_to_rbsp};

/// Largest picture side accepted, in pixels (level 6.2 allows 8192x4320;
/// this leaves headroom while keeping arithmetic small).
const MAX_PICTURE_SIDE: u32 = 16_384;

/// Largest SPS NAL unit accepted, in bytes (a real SPS is well under 1 KiB).
const MAX_SPS_LEN: usize = 4096;

/// The fields of an H.264 SPS this server needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Sps {
    /// `profile_idc` (66 baseline, 77 main, 100 high, ...).
    pub profile_idc: u8,
    /// The `constraint_set0..5_flag` byte.
    pub constraint_flags: u8,
    /// `level_idc` (level × 10, e.g. 31 for level 3.1).
    pub level_idc: u8,
    /// `seq_parameter_set_id`.
    pub id: u32,
    /// `chroma_format_idc` (1 = 4:2:0 when absent).
    pub chroma_format_idc: u32,
    /// Displayed width in pixels, after frame cropping.
    pub width: u32,
    /// Displayed height in pixels, after frame cropping.
    pub height: u32,
    /// `frame_mbs_only_flag`: false when the stream may be interlaced.
    pub frame_mbs_only: bool,
    /// Frame rate from VUI timing info (`time_scale / (2 * num_units_in_tick)`,
    /// H.264 E.2.1 and equation C-1 with one field pair per frame), if present.
    pub fps: Option<f64>,
}

/// Profiles whose SPS carries the chroma/bit-depth/scaling-matrix block
/// (the `if( profile_idc == 100 || ... )` condition of 7.3.2.1.1).
fn has_chroma_info(profile_idc: u8) -> bool {
    matches!(profile_idc, 100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135)
}

impl Sps {
    /// Parses an SPS NAL unit, starting at its one-byte NAL header
    /// (`nal_unit_type` 7), with emulation prevention bytes still present.
    pub fn parse(nal: &[u8]) -> Result<Sps, CodecError> {
        if nal.len() > MAX_SPS_LEN {
            return Err(CodecError::TooLarge("sps"));
        }
        let header = *nal.first().ok_or(CodecError::Truncated)?;
        if header & 0x1F != 7 {
            return Err(CodecError::Malformed("not an SPS NAL unit"));
        }
        let mut rbsp = Vec::new();
        nal_to_rbsp(nal.get(1..).unwrap_or_default(), &mut rbsp);
        Self::parse_rbsp(&rbsp)
    }

    /// Parses `seq_parameter_set_data()` from an RBSP (no NAL header, no
    /// emulation prevention bytes).
    pub fn parse_rbsp(rbsp: &[u8]) -> Result<Sps, CodecError> {
        let mut r = BitReader::new(rbsp);
        let profile_idc = r.read_bits(8)? as u8;
        let constraint_flags = r.read_bits(8)? as u8;
        let level_idc = r.read_bits(8)? as u8;
        let id = r.read_ue()?;
        if id > 31 {
            return Err(CodecError::Malformed("seq_parameter_set_id > 31"));
        }

        let mut chroma_format_idc = 1;
        let mut separate_colour_plane = false;
        if has_chroma_info(profile_idc) {
            chroma_format_idc = r.read_ue()?;
            if chroma_format_idc > 3 {
                return Err(CodecError::Malformed("chroma_format_idc > 3"));
            }
            if chroma_format_idc == 3 {
                separate_colour_plane = r.read_bit()?;
            }
            let _bit_depth_luma_minus8 = r.read_ue()?;
            let _bit_depth_chroma_minus8 = r.read_ue()?;
            let _qpprime_y_zero_transform_bypass = r.read_bit()?;
            if r.read_bit()? {
                // seq_scaling_matrix_present_flag: 6 4x4 lists, then 2 or 6 8x8 lists.
                let lists = if chroma_format_idc == 3 { 12 } else { 8 };
                for i in 0..lists {
                    if r.read_bit()? {
                        skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                    }
                }
            }
        }

        let _log2_max_frame_num_minus4 = r.read_ue()?;
        match r.read_ue()? {
            0 => {
                let _log2_max_pic_order_cnt_lsb_minus4 = r.read_ue()?;
            }
            1 => {
                let _delta_pic_order_always_zero = r.read_bit()?;
                let _offset_for_non_ref_pic = r.read_se()?;
                let _offset_for_top_to_bottom_field = r.read_se()?;
                let cycle = r.read_ue()?;
                if cycle > 255 {
                    return Err(CodecError::Malformed("num_ref_frames_in_pic_order_cnt_cycle > 255"));
                }
                for _ in 0..cycle {
                    let _offset_for_ref_frame = r.read_se()?;
                }
            }
            2 => {}
            _ => return Err(CodecError::Malformed("pic_order_cnt_type > 2")),
        }
        let _max_num_ref_frames = r.read_ue()?;
        let _gaps_in_frame_num_allowed = r.read_bit()?;
        let width_mbs = u64::from(r.read_ue()?) + 1;
        let height_map_units = u64::from(r.read_ue()?) + 1;
        let frame_mbs_only = r.read_bit()?;
        if !frame_mbs_only {
            let _mb_adaptive_frame_field = r.read_bit()?;
        }
        let _direct_8x8_inference = r.read_bit()?;
        let (mut crop_left, mut crop_right, mut crop_top, mut crop_bottom) = (0u64, 0u64, 0u64, 0u64);
        if r.read_bit()? {
            crop_left = r.read_ue()?.into();
            crop_right = r.read_ue()?.into();
            crop_top = r.read_ue()?.into();
            crop_bottom = r.read_ue()?.into();
        }

        // 7.4.2.1.1: ChromaArrayType and table 6-1 SubWidthC / SubHeightC.
        let chroma_array_type = if separate_colour_plane { 0 } else { chroma_format_idc };
        let frame_height_factor = if frame_mbs_only { 1 } else { 2 };
        let (crop_unit_x, crop_unit_y) = match chroma_array_type {
            0 => (1, frame_height_factor),
            1 => (2, 2 * frame_height_factor),
            2 => (2, frame_height_factor),
            _ => (1, frame_height_factor),
        };
        let coded_width = width_mbs * 16;
        let coded_height = height_map_units * 16 * frame_height_factor;
        let cut_x = crop_unit_x * (crop_left + crop_right);
        let cut_y = crop_unit_y * (crop_top + crop_bottom);
        if coded_width > u64::from(MAX_PICTURE_SIDE) || coded_height > u64::from(MAX_PICTURE_SIDE) {
            return Err(CodecError::Malformed("picture size out of range"));
        }
        if cut_x >= coded_width || cut_y >= coded_height {
            return Err(CodecError::Malformed("cropping larger than the picture"));
        }
        // Both bounded by MAX_PICTURE_SIDE above.
        let width = (coded_width - cut_x) as u32;
        let height = (coded_height - cut_y) as u32;

        let fps = if r.read_bit()? {
            // A truncated or odd VUI must not fail the whole SPS: size is known.
            read_vui_fps(&mut r).unwrap_or(None)
        } else {
            None
        };

        Ok(Sps { profile_idc, constraint_flags, level_idc, id, chroma_format_idc, width, height, frame_mbs_only, fps })
    }
}

/// Skips `scaling_list()` (7.3.2.1.1.1): deltas are read only while
/// `nextScale != 0`.
fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Result<(), CodecError> {
    let mut last_scale: i32 = 8;
    let mut next_scale: i32 = 8;
    for _ in 0..size {
        if next_scale != 0 {
            let delta = r.read_se()?;
            if !(-128..=127).contains(&delta) {
                return Err(CodecError::Malformed("delta_scale out of range"));
            }
            next_scale = (last_scale + delta + 256).rem_euclid(256);
        }
        if next_scale != 0 {
            last_scale = next_scale;
        }
    }
    Ok(())
}

/// Reads `vui_parameters()` (E.1.1) up to the timing info and returns the
/// frame rate when `timing_info_present_flag` is set.
fn read_vui_fps(r: &mut BitReader<'_>) -> Result<Option<f64>, CodecError> {
    if r.read_bit()? {
        // aspect_ratio_info_present_flag
        let aspect_ratio_idc = r.read_bits(8)?;
        if aspect_ratio_idc == 255 {
            // Extended_SAR: sar_width u(16), sar_height u(16)
            r.skip_bits(32)?;
        }
    }
    if r.read_bit()? {
        // overscan_info_present_flag → overscan_appropriate_flag
        r.skip_bits(1)?;
    }
    if r.read_bit()? {
        // video_signal_type_present_flag: video_format u(3), video_full_range_flag u(1)
        r.skip_bits(4)?;
        if r.read_bit()? {
            // colour_description_present_flag: primaries, transfer, matrix: u(8) each
            r.skip_bits(24)?;
        }
    }
    if r.read_bit()? {
        // chroma_loc_info_present_flag
        let _top = r.read_ue()?;
        let _bottom = r.read_ue()?;
    }
    if !r.read_bit()? {
        return Ok(None);
    }
    let num_units_in_tick = r.read_bits(32)?;
    let time_scale = r.read_bits(32)?;
    if num_units_in_tick == 0 || time_scale == 0 {
        return Ok(None);
    }
    let fps = f64::from(time_scale) / (2.0 * f64::from(num_units_in_tick));
    // Reject nonsense rather than report it.
    Ok((fps > 0.0 && fps <= 1000.0).then_some(fps))
}

#[cfg(test)]
mod tests;
