//! Mapping RTP timestamps onto the FLV millisecond clock, so audio and video
//! from a WebRTC publisher stay in sync on the RTMP/FLV/HLS side.
//!
//! RTP timestamps of different streams have random offsets and their own
//! clock rates (RFC 3550 §5.1); only RTCP sender reports relate them to one
//! wall clock (§6.4.1: NTP time ⇄ RTP timestamp). Keep one [`RtpTimeline`] per
//! stream (48 kHz audio, 90 kHz video) and anchor each at the same FLV time
//! base: from a sender report (`anchor(sr.rtp_timestamp, ms_of(sr.ntp))`)
//! when one has arrived, else from the arrival time of the stream's first
//! packet.

/// Unwraps one stream's 32-bit RTP timestamps and maps them to milliseconds.
#[derive(Debug, Clone)]
pub struct RtpTimeline {
    clock_rate: u32,
    /// The highest extended timestamp seen (for unwrapping).
    highest: Option<i64>,
    /// (extended RTP timestamp, milliseconds) that correspond.
    anchor: Option<(i64, i64)>,
}

impl RtpTimeline {
    /// A timeline for a stream clocked at `clock_rate` Hz (at least 1).
    pub fn new(clock_rate: u32) -> Self {
        Self { clock_rate: clock_rate.max(1), highest: None, anchor: None }
    }

    /// The clock rate in Hz.
    pub fn clock_rate(&self) -> u32 {
        self.clock_rate
    }

    /// True once anchored (explicitly or by the first [`to_ms`](Self::to_ms)).
    pub fn is_anchored(&self) -> bool {
        self.anchor.is_some()
    }

    /// Extends a timestamp to 64 bits around the highest seen (wrap-around
    /// at 2^32, and steps back of less than 2^31 ticks stay behind).
    pub fn extend(&mut self, timestamp: u32) -> i64 {
        let Some(highest) = self.highest else {
            let ext = i64::from(timestamp);
            self.highest = Some(ext);
            return ext;
        };
        let delta = i64::from(timestamp.wrapping_sub(highest as u32) as i32);
        let ext = highest + delta;
        if ext > highest {
            self.highest = Some(ext);
        }
        ext
    }

    /// Declares that `timestamp` is at `ms` on the FLV clock (e.g. from an
    /// RTCP sender report). Later mappings follow from the clock rate.
    pub fn anchor(&mut self, timestamp: u32, ms: i64) {
        let ext = self.extend(timestamp);
        self.anchor = Some((ext, ms));
    }

    /// The FLV time of `timestamp` in milliseconds (rounded down). The first
    /// timestamp seen anchors the timeline at 0 ms unless
    /// [`anchor`](Self::anchor) was called.
    pub fn to_ms(&mut self, timestamp: u32) -> i64 {
        let ext = self.extend(timestamp);
        let (at, ms) = *self.anchor.get_or_insert((ext, 0));
        // |ext - at| < 2^40 in practice: no overflow in i64.
        ms + ((ext - at) * 1000).div_euclid(i64::from(self.clock_rate))
    }

    /// [`to_ms`](Self::to_ms) as an FLV tag timestamp (clamped to 0 and
    /// wrapping at 2^32 ms as FLV's extended timestamp does).
    pub fn to_flv_ms(&mut self, timestamp: u32) -> u32 {
        self.to_ms(timestamp).max(0) as u32
    }
}

#[cfg(test)]
mod tests;
