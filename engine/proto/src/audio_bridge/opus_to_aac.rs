//! Opus (WebRTC) → AAC-LC 48 kHz (RTMP/FLV/HLS) with the FDK encoder:
//! decode each RTP payload (RFC 7587 §4.2), conceal losses, encode
//! 1024-sample AAC-LC frames (ISO/IEC 14496-3) and the `AudioSpecificConfig`
//! (1.6.2.1) for the FLV sequence header.

use std::collections::VecDeque;

use bytes::{BufMut, Bytes, BytesMut};

use super::timeline::RtpTimeline;
use super::{AAC_FRAME_SAMPLES, AudioBridgeError, OPUS_CLOCK_RATE, TranscodeStats, aac_sequence_header_tag_body};

/// Most samples per channel one Opus packet decodes to (120 ms, RFC 6716 §3.2.5).
const MAX_OPUS_PACKET_SAMPLES: usize = 5760;

/// A packet this far (48 kHz samples: 200 ms) behind the expected time is
/// late or a duplicate; further back is a restart of the sender's clock.
const LATE_WINDOW: i64 = 9600;

/// Loss concealment works in multiples of 2.5 ms (RFC 6716 §2.1.4 frame sizes).
const PLC_GRANULE: usize = 120;

/// Configuration of an [`OpusToAac`] transcoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpusToAacConfig {
    /// AAC bitrate in bit/s; `None`: 128 kbit/s stereo, 64 kbit/s mono.
    pub bitrate: Option<u32>,
    /// Output channels (1 or 2); `None`: those of the first packet (the
    /// Opus TOC stereo flag, RFC 6716 §3.1).
    pub channels: Option<u8>,
    /// Longest loss (ms) filled by Opus packet loss concealment; the rest of
    /// a longer gap is silence. Default 120.
    pub max_concealment_ms: u32,
    /// Largest timestamp gap (ms) bridged at all; beyond it the output
    /// timeline restarts. Default 1000.
    pub max_gap_ms: u32,
}

impl Default for OpusToAacConfig {
    fn default() -> Self {
        Self { bitrate: None, channels: None, max_concealment_ms: 120, max_gap_ms: 1000 }
    }
}

/// One AAC-LC frame (1024 samples at 48 kHz).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AacFrame {
    /// The 48 kHz RTP time (the Opus stream's clock) of its first decoded
    /// sample; map it to FLV milliseconds with an [`RtpTimeline`] of the
    /// publisher's audio.
    pub rtp_timestamp: u32,
    /// The complete FLV audio tag body: `0xAF`, `AACPacketType` 1, then the
    /// raw AAC frame.
    pub flv_tag_body: Bytes,
}

impl AacFrame {
    /// The raw AAC frame (`raw_data_block`), sharing the buffer.
    pub fn raw(&self) -> Bytes {
        self.flv_tag_body.slice(2..)
    }
}

struct Codecs {
    decoder: opus::Decoder,
    encoder: fdk_aac::enc::Encoder,
    channels: usize,
    /// Encoder delay in samples (FDK `nDelay`).
    delay: i64,
    asc: Bytes,
}

/// Transcodes one WebRTC publisher's Opus to AAC-LC.
///
/// Getters: [`stats`](Self::stats), [`channels`](Self::channels),
/// [`audio_specific_config`](Self::audio_specific_config),
/// [`sequence_header_tag_body`](Self::sequence_header_tag_body).
/// Input: [`handle_packet`](Self::handle_packet). Output:
/// [`poll_output`](Self::poll_output) drained until `None` after each input.
///
/// The configuration exists from the first packet on: send the sequence
/// header before the first frame (and again to each new player).
/// Timing: the AAC stream is continuous; a missing stretch of RTP time is
/// concealed (Opus PLC, then silence) up to `max_gap_ms`; a longer gap or a
/// step back of more than one packet restarts the timeline (a fresh encoder,
/// the same configuration). Late and duplicate packets are dropped.
pub struct OpusToAac {
    config: OpusToAacConfig,
    codecs: Option<Codecs>,
    timeline: RtpTimeline,
    /// Extended RTP time of the next expected sample.
    next: Option<i64>,
    /// Extended RTP time of the first sample given to the encoder, frames out since.
    segment_start: i64,
    segment_frames: u64,
    pcm: Vec<i16>,
    decoded: Vec<i16>,
    outputs: VecDeque<AacFrame>,
    stats: TranscodeStats,
}

impl std::fmt::Debug for OpusToAac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusToAac").field("channels", &self.channels()).field("stats", &self.stats).finish()
    }
}

impl OpusToAac {
    /// A transcoder waiting for its first packet.
    pub fn new(config: OpusToAacConfig) -> Self {
        Self {
            config,
            codecs: None,
            timeline: RtpTimeline::new(OPUS_CLOCK_RATE),
            next: None,
            segment_start: 0,
            segment_frames: 0,
            pcm: Vec::new(),
            decoded: Vec::new(),
            outputs: VecDeque::new(),
            stats: TranscodeStats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> &TranscodeStats {
        &self.stats
    }

    /// Output channels, from the first packet on.
    pub fn channels(&self) -> Option<usize> {
        self.codecs.as_ref().map(|c| c.channels)
    }

    /// The AAC `AudioSpecificConfig` (AAC-LC, 48 kHz), from the first packet on.
    pub fn audio_specific_config(&self) -> Option<Bytes> {
        self.codecs.as_ref().map(|c| c.asc.clone())
    }

    /// The FLV AAC sequence header tag body, from the first packet on.
    pub fn sequence_header_tag_body(&self) -> Option<Vec<u8>> {
        self.codecs.as_ref().map(|c| aac_sequence_header_tag_body(&c.asc))
    }

    /// The next AAC frame, `None` when drained.
    pub fn poll_output(&mut self) -> Option<AacFrame> {
        self.outputs.pop_front()
    }

    /// Transcodes one Opus RTP payload with its RTP timestamp.
    ///
    /// [`AudioBridgeError::Malformed`] concerns this packet only (it is
    /// concealed); [`AudioBridgeError::Codec`] means the transcoder is broken.
    pub fn handle_packet(&mut self, rtp_timestamp: u32, payload: &[u8]) -> Result<(), AudioBridgeError> {
        self.stats.frames_in += 1;
        if payload.is_empty() {
            // RFC 7587 §4.2 forbids empty payloads; nothing to decode.
            self.stats.skipped += 1;
            return Ok(());
        }
        if self.codecs.is_none() {
            let channels = match self.config.channels {
                Some(c) => usize::from(c.clamp(1, 2)),
                None => match opus::packet::get_nb_channels(payload) {
                    Ok(opus::Channels::Mono) => 1,
                    _ => 2,
                },
            };
            self.codecs = Some(self.new_codecs(channels)?);
        }
        let ts = self.timeline.extend(rtp_timestamp);
        match self.next {
            None => self.start(ts)?,
            Some(next) => {
                let gap = ts - next;
                let packet = opus::packet::get_nb_samples(payload, OPUS_CLOCK_RATE).unwrap_or(960) as i64;
                if gap < 0 && gap >= -LATE_WINDOW.max(packet) {
                    // Late (already concealed) or duplicate.
                    self.stats.skipped += 1;
                    return Ok(());
                }
                if gap < 0 || gap > i64::from(self.config.max_gap_ms) * 48 {
                    self.stats.discontinuities += 1;
                    self.start(ts)?;
                } else if gap > 0 {
                    self.conceal(gap as usize)?;
                }
            }
        }
        // Decode the packet itself.
        let codecs = self.codecs.as_mut().ok_or_else(|| AudioBridgeError::Codec("no codecs".into()))?;
        self.decoded.resize(MAX_OPUS_PACKET_SAMPLES * codecs.channels, 0);
        let n = match codecs.decoder.decode(payload, &mut self.decoded, false) {
            Ok(n) => n,
            Err(_) => {
                self.stats.decode_errors += 1;
                // Conceal one 20 ms frame in its place; the next packet's
                // timestamp decides about the rest.
                self.conceal(960)?;
                return Err(AudioBridgeError::Malformed("Opus packet"));
            }
        };
        let channels = codecs.channels;
        self.pcm.extend_from_slice(&self.decoded[..n * channels]);
        self.next = Some(ts + n as i64);
        self.encode_ready()
    }

    fn new_codecs(&self, channels: usize) -> Result<Codecs, AudioBridgeError> {
        use fdk_aac::enc::{AudioObjectType, BitRate, ChannelMode, Encoder, EncoderParams, Transport};
        let layout = if channels == 1 { opus::Channels::Mono } else { opus::Channels::Stereo };
        let decoder = opus::Decoder::new(OPUS_CLOCK_RATE, layout)
            .map_err(|e| AudioBridgeError::Codec(format!("opus decoder: {e}")))?;
        let bitrate = self.config.bitrate.unwrap_or(if channels == 1 { 64_000 } else { 128_000 });
        let encoder = Encoder::new(EncoderParams {
            bit_rate: BitRate::Cbr(bitrate.clamp(8_000, 320_000)),
            sample_rate: OPUS_CLOCK_RATE,
            transport: Transport::Raw,
            channels: if channels == 1 { ChannelMode::Mono } else { ChannelMode::Stereo },
            audio_object_type: AudioObjectType::Mpeg4LowComplexity,
        })
        .map_err(|e| AudioBridgeError::Codec(format!("fdk-aac encoder: {e}")))?;
        let info = encoder.info().map_err(|e| AudioBridgeError::Codec(format!("fdk-aac encoder info: {e}")))?;
        let asc_len = (info.confSize as usize).min(info.confBuf.len());
        if asc_len < 2 {
            return Err(AudioBridgeError::Codec("fdk-aac gave no AudioSpecificConfig".into()));
        }
        Ok(Codecs {
            decoder,
            encoder,
            channels,
            delay: i64::from(info.nDelay),
            asc: Bytes::copy_from_slice(&info.confBuf[..asc_len]),
        })
    }

    /// Starts a new output segment at extended RTP time `ts` with a fresh
    /// encoder (its delay makes the first frames' timestamps exact).
    fn start(&mut self, ts: i64) -> Result<(), AudioBridgeError> {
        if self.next.is_some() {
            let channels = self.channels().unwrap_or(2);
            let fresh = self.new_codecs(channels)?;
            if let Some(c) = self.codecs.as_mut() {
                c.encoder = fresh.encoder;
                c.delay = fresh.delay;
            }
        }
        self.pcm.clear();
        self.segment_start = ts;
        self.segment_frames = 0;
        self.next = Some(ts);
        Ok(())
    }

    /// Fills `samples` (per channel) of lost time: Opus PLC for up to
    /// `max_concealment_ms`, silence for the rest.
    fn conceal(&mut self, samples: usize) -> Result<(), AudioBridgeError> {
        let Some(codecs) = self.codecs.as_mut() else {
            return Ok(());
        };
        let ch = codecs.channels;
        let plc_limit = (self.config.max_concealment_ms as usize * 48).min(samples);
        let mut plc = plc_limit - plc_limit % PLC_GRANULE;
        let mut done = 0;
        while plc > 0 {
            let chunk = plc.min(MAX_OPUS_PACKET_SAMPLES);
            self.decoded.resize(chunk * ch, 0);
            let n = codecs.decoder.decode(&[], &mut self.decoded[..chunk * ch], false).unwrap_or(0).min(chunk);
            if n == 0 {
                break;
            }
            self.pcm.extend_from_slice(&self.decoded[..n * ch]);
            plc -= n;
            done += n;
        }
        self.stats.concealed_samples += done as u64;
        let silence = samples - done;
        self.pcm.resize(self.pcm.len() + silence * ch, 0);
        self.stats.silence_samples += silence as u64;
        if let Some(next) = self.next.as_mut() {
            *next += samples as i64;
        }
        Ok(())
    }

    /// Encodes every complete 1024-sample frame of `pcm`.
    fn encode_ready(&mut self) -> Result<(), AudioBridgeError> {
        let Some(codecs) = self.codecs.as_mut() else {
            return Ok(());
        };
        let frame_len = AAC_FRAME_SAMPLES * codecs.channels;
        let mut at = 0;
        let mut out = [0u8; 2048];
        while self.pcm.len() - at >= frame_len {
            let info = codecs
                .encoder
                .encode(&self.pcm[at..at + frame_len], &mut out)
                .map_err(|e| AudioBridgeError::Codec(format!("fdk-aac encode: {e}")))?;
            if info.input_consumed == 0 && info.output_size == 0 {
                break;
            }
            at += info.input_consumed.min(frame_len);
            self.stats.encoded_samples += (info.input_consumed / codecs.channels) as u64;
            if info.output_size > 0 {
                let ts = self.segment_start + (self.segment_frames * AAC_FRAME_SAMPLES as u64) as i64 - codecs.delay;
                self.segment_frames += 1;
                self.stats.frames_out += 1;
                let raw = &out[..info.output_size.min(out.len())];
                let mut body = BytesMut::with_capacity(2 + raw.len());
                body.put_slice(&[0xAF, 1]);
                body.put_slice(raw);
                self.outputs.push_back(AacFrame {
                    // RTP timestamps are modulo 2^32.
                    rtp_timestamp: ts as u32,
                    flv_tag_body: body.freeze(),
                });
            }
        }
        self.pcm.drain(..at);
        Ok(())
    }
}
