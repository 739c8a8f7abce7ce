//! AAC (FLV/RTMP) → Opus (WebRTC): decode, resample to 48 kHz, encode 20 ms
//! Opus packets with RTP timestamps derived from the FLV timestamps
//! (RFC 7587 §4.1, §4.2; ISO/IEC 14496-3 for the input).

use std::collections::VecDeque;

use bytes::Bytes;

use super::aac_decoder::{AacDecoder, AacDecoderKind};
use super::resample::Resampler;
use super::{AudioBridgeError, OPUS_CLOCK_RATE, OPUS_FRAME_SAMPLES, TranscodeStats};
use crate::codec::{AudioCodec, AudioPacket, AudioTag};
use crate::webrtc::MediaPacket;

/// Largest Opus packet for one 20 ms frame (RFC 6716 §3.2.1: 1275 bytes per
/// frame), rounded up.
const MAX_OPUS_PACKET: usize = 1500;

/// Timestamp deviations (in 48 kHz samples) ignored as jitter: 20 ms (FLV
/// timestamps are rounded to milliseconds and encoders jitter a little).
const JITTER_TOLERANCE: i64 = 960;

/// Configuration of an [`AacToOpus`] transcoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AacToOpusConfig {
    /// Opus bitrate in bit/s; `None`: 64 kbit/s stereo, 32 kbit/s mono.
    pub bitrate: Option<u32>,
    /// libopus complexity, 0 (cheapest) to 10. Default 5: half the CPU of
    /// 10 for a quality difference few hear at these bitrates.
    pub complexity: u8,
    /// Which AAC decoder to use.
    pub decoder: AacDecoderKind,
    /// Largest timestamp gap (ms) filled with silence; larger gaps and
    /// steps back restart the output timeline. Default 1000.
    pub max_gap_ms: u32,
    /// Sequence number of the first packet (the WebRTC session rewrites it).
    pub initial_sequence_number: u16,
}

impl Default for AacToOpusConfig {
    fn default() -> Self {
        Self {
            bitrate: None,
            complexity: 5,
            decoder: AacDecoderKind::Auto,
            max_gap_ms: 1000,
            initial_sequence_number: 0,
        }
    }
}

/// One Opus RTP payload (RFC 7587 §4.2) with its RTP fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpusPacket {
    /// Consecutive per transcoder.
    pub sequence_number: u16,
    /// 48 kHz RTP timestamp of the first sample.
    pub timestamp: u32,
    /// Set on the first packet after a (re)start of the timeline (RFC 7587
    /// §4.1: first packet of a talkspurt).
    pub marker: bool,
    /// One Opus packet (20 ms).
    pub payload: Bytes,
}

impl OpusPacket {
    /// The packet as the WebRTC session takes it, from source `ssrc`.
    pub fn to_media_packet(&self, source_ssrc: u32) -> MediaPacket {
        MediaPacket {
            source_ssrc,
            sequence_number: self.sequence_number,
            timestamp: self.timestamp,
            marker: self.marker,
            payload: self.payload.clone(),
            media_ms: None,
        }
    }
}

/// The Opus encoder for one channel count.
struct Encoding {
    encoder: opus::Encoder,
    channels: usize,
    /// Encoder lookahead in 48 kHz samples.
    lookahead: i64,
}

/// Transcodes one stream's AAC to Opus.
///
/// Getters: [`stats`](Self::stats), [`channels`](Self::channels),
/// [`decoder`](Self::decoder). Input: [`handle_audio_tag`](Self::handle_audio_tag)
/// (or [`configure`](Self::configure) and [`handle_frame`](Self::handle_frame)).
/// Output: [`poll_output`](Self::poll_output) drained until `None` after each
/// input (at most a few packets wait).
///
/// Timing: packet `k` after the timeline started at FLV time `t0` has RTP
/// timestamp `t0 × 48 + 960 k − delay`, where `delay` is the AAC decoder's
/// output delay, the resampler's and the Opus encoder's lookahead (so the
/// RTP time is that of the audio in the packet, as the FLV time was).
/// FLV timestamps within 20 ms of the expected time are taken as continuous;
/// gaps up to `max_gap_ms` are filled with silence; anything else restarts
/// the timeline at the new FLV time.
pub struct AacToOpus {
    config: AacToOpusConfig,
    asc: Option<Vec<u8>>,
    decoder: Option<AacDecoder>,
    resampler: Option<Resampler>,
    encoding: Option<Encoding>,
    /// Input timeline: 48 kHz time of `in_samples == 0`, samples (at the
    /// resampler's input rate) fed since.
    in_base: i64,
    in_samples: u64,
    /// Output timeline: 48 kHz time of FIFO sample 0 when it started,
    /// samples taken into packets since.
    out_base: i64,
    out_taken: u64,
    started: bool,
    /// Decoder output delay + resampler delay + Opus lookahead, in 48 kHz
    /// samples, subtracted from output timestamps (fixed per timeline).
    delay: i64,
    restart_marker: bool,
    fifo: Vec<f32>,
    pcm: Vec<f32>,
    sequence_number: u16,
    outputs: VecDeque<OpusPacket>,
    stats: TranscodeStats,
}

impl std::fmt::Debug for AacToOpus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AacToOpus")
            .field("decoder", &self.decoder)
            .field("channels", &self.channels())
            .field("stats", &self.stats)
            .finish()
    }
}

impl AacToOpus {
    /// A transcoder waiting for the AAC sequence header.
    pub fn new(config: AacToOpusConfig) -> Self {
        Self {
            sequence_number: config.initial_sequence_number,
            config,
            asc: None,
            decoder: None,
            resampler: None,
            encoding: None,
            in_base: 0,
            in_samples: 0,
            out_base: 0,
            out_taken: 0,
            started: false,
            delay: 0,
            restart_marker: true,
            fifo: Vec::new(),
            pcm: Vec::new(),
            outputs: VecDeque::new(),
            stats: TranscodeStats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> &TranscodeStats {
        &self.stats
    }

    /// Channels encoded (1 or 2), once the first frame was decoded.
    pub fn channels(&self) -> Option<usize> {
        self.encoding.as_ref().map(|e| e.channels)
    }

    /// The AAC decoder, once configured.
    pub fn decoder(&self) -> Option<&AacDecoder> {
        self.decoder.as_ref()
    }

    /// The next Opus packet, `None` when drained.
    pub fn poll_output(&mut self) -> Option<OpusPacket> {
        self.outputs.pop_front()
    }

    /// Handles one FLV audio tag body with its timestamp: a sequence header
    /// (re)configures, a raw frame is transcoded.
    ///
    /// [`AudioBridgeError::Unsupported`] (a codec other than AAC, an AAC
    /// configuration that cannot be decoded) means the audio cannot be
    /// bridged: frames are then skipped until a usable sequence header.
    /// [`AudioBridgeError::Malformed`] concerns one frame only.
    pub fn handle_audio_tag(&mut self, timestamp_ms: u32, body: &[u8]) -> Result<(), AudioBridgeError> {
        let tag = AudioTag::parse(body).map_err(|_| AudioBridgeError::Malformed("FLV audio tag"))?;
        if tag.codec != AudioCodec::Aac {
            return Err(AudioBridgeError::Unsupported(format!(
                "{} audio (only AAC is transcoded to Opus)",
                tag.codec.name()
            )));
        }
        match tag.packet {
            AudioPacket::SequenceHeader => self.configure(tag.data),
            AudioPacket::Frame => self.handle_frame(timestamp_ms, tag.data),
            _ => Ok(()),
        }
    }

    /// Configures the decoder from `AudioSpecificConfig` bytes (a repeated
    /// identical configuration is a no-op).
    pub fn configure(&mut self, asc: &[u8]) -> Result<(), AudioBridgeError> {
        if self.asc.as_deref() == Some(asc) && self.decoder.is_some() {
            return Ok(());
        }
        self.asc = Some(asc.to_vec());
        self.decoder = None;
        self.decoder = Some(AacDecoder::new(asc, self.config.decoder)?);
        Ok(())
    }

    /// Transcodes one raw AAC frame with its FLV timestamp (ms).
    pub fn handle_frame(&mut self, timestamp_ms: u32, frame: &[u8]) -> Result<(), AudioBridgeError> {
        self.stats.frames_in += 1;
        let Some(decoder) = self.decoder.as_mut() else {
            self.stats.skipped += 1;
            return Ok(());
        };
        self.pcm.clear();
        let frames = match decoder.decode(frame, &mut self.pcm) {
            Ok(n) => n,
            Err(e @ AudioBridgeError::Malformed(_)) => {
                self.stats.decode_errors += 1;
                return Err(e);
            }
            Err(e) => {
                self.decoder = None;
                return Err(e);
            }
        };
        if frames == 0 {
            return Ok(());
        }
        let (rate, channels) = (decoder.sample_rate(), decoder.channels());
        let ts = i64::from(timestamp_ms) * i64::from(OPUS_CLOCK_RATE / 1000);
        if !self.started || self.encoding.as_ref().is_none_or(|e| e.channels != channels) {
            self.start(ts, rate, channels)?;
        } else if self.resampler.as_ref().is_some_and(|r| r.input_rate() != rate) {
            // The decoder's output rate changed (e.g. implicit SBR found):
            // continue the timeline through a new resampler.
            self.in_base = self.expected_input_time();
            self.in_samples = 0;
            self.resampler = Resampler::new(rate, OPUS_CLOCK_RATE, channels);
        } else {
            let gap = ts - self.expected_input_time();
            if gap.abs() > JITTER_TOLERANCE {
                if gap > 0 && gap <= i64::from(self.config.max_gap_ms) * 48 {
                    self.insert_silence(gap, rate, channels);
                } else {
                    self.stats.discontinuities += 1;
                    self.start(ts, rate, channels)?;
                }
            }
        }
        let resampler =
            self.resampler.as_mut().ok_or_else(|| AudioBridgeError::Unsupported(format!("AAC at {rate} Hz")))?;
        resampler.process(&self.pcm, &mut self.fifo);
        self.in_samples += frames as u64;
        self.encode_ready()
    }

    /// The 48 kHz time the next input frame should have.
    fn expected_input_time(&self) -> i64 {
        let rate = self.resampler.as_ref().map_or(OPUS_CLOCK_RATE, |r| r.input_rate());
        self.in_base + (self.in_samples * u64::from(OPUS_CLOCK_RATE) / u64::from(rate)) as i64
    }

    /// (Re)starts the timeline at 48 kHz time `ts`: pending samples are
    /// dropped, the resampler and (if the channel count changed) the encoder
    /// are new.
    fn start(&mut self, ts: i64, rate: u32, channels: usize) -> Result<(), AudioBridgeError> {
        if self.encoding.as_ref().is_none_or(|e| e.channels != channels) {
            self.encoding = Some(self.new_encoder(channels)?);
        }
        self.resampler = Resampler::new(rate, OPUS_CLOCK_RATE, channels);
        if self.resampler.is_none() {
            return Err(AudioBridgeError::Unsupported(format!("AAC at {rate} Hz")));
        }
        let decoder_delay = self.decoder.as_ref().map_or(0, |d| d.output_delay() as u64);
        self.delay = self.encoding.as_ref().map_or(0, |e| e.lookahead)
            + self.resampler.as_ref().map_or(0, |r| r.delay() as i64)
            + (decoder_delay * u64::from(OPUS_CLOCK_RATE) / u64::from(rate)) as i64;
        self.fifo.clear();
        (self.in_base, self.in_samples) = (ts, 0);
        (self.out_base, self.out_taken) = (ts, 0);
        self.started = true;
        self.restart_marker = true;
        Ok(())
    }

    fn new_encoder(&self, channels: usize) -> Result<Encoding, AudioBridgeError> {
        let codec = |e: opus::Error| AudioBridgeError::Codec(format!("opus encoder: {e}"));
        let layout = if channels == 1 { opus::Channels::Mono } else { opus::Channels::Stereo };
        let mut encoder = opus::Encoder::new(OPUS_CLOCK_RATE, layout, opus::Application::Audio).map_err(codec)?;
        let bitrate = self.config.bitrate.unwrap_or(if channels == 1 { 32_000 } else { 64_000 });
        encoder.set_bitrate(opus::Bitrate::Bits(bitrate.clamp(6_000, 510_000) as i32)).map_err(codec)?;
        encoder.set_complexity(i32::from(self.config.complexity.min(10))).map_err(codec)?;
        let lookahead = i64::from(encoder.get_lookahead().map_err(codec)?);
        Ok(Encoding { encoder, channels, lookahead })
    }

    /// Feeds `gap` 48 kHz samples of silence (at the input rate) so the
    /// output stays continuous across a short gap.
    fn insert_silence(&mut self, gap: i64, rate: u32, channels: usize) {
        let samples = (gap as u64 * u64::from(rate) / u64::from(OPUS_CLOCK_RATE)) as usize;
        let silence = vec![0.0f32; samples * channels];
        if let Some(r) = self.resampler.as_mut() {
            r.process(&silence, &mut self.fifo);
        }
        self.in_samples += samples as u64;
        self.stats.silence_samples += gap as u64;
    }

    /// Encodes every complete 20 ms frame in the FIFO.
    fn encode_ready(&mut self) -> Result<(), AudioBridgeError> {
        let Some(enc) = self.encoding.as_mut() else {
            return Ok(());
        };
        let frame_len = OPUS_FRAME_SAMPLES * enc.channels;
        let delay = self.delay;
        let mut at = 0;
        let mut buf = [0u8; MAX_OPUS_PACKET];
        while self.fifo.len() - at >= frame_len {
            let n = enc
                .encoder
                .encode_float(&self.fifo[at..at + frame_len], &mut buf)
                .map_err(|e| AudioBridgeError::Codec(format!("opus encode: {e}")))?;
            at += frame_len;
            let timestamp = self.out_base + self.out_taken as i64 - delay;
            self.out_taken += OPUS_FRAME_SAMPLES as u64;
            self.stats.encoded_samples += OPUS_FRAME_SAMPLES as u64;
            self.stats.frames_out += 1;
            self.outputs.push_back(OpusPacket {
                sequence_number: self.sequence_number,
                // RTP timestamps are modulo 2^32.
                timestamp: timestamp as u32,
                marker: std::mem::take(&mut self.restart_marker),
                payload: Bytes::copy_from_slice(&buf[..n]),
            });
            self.sequence_number = self.sequence_number.wrapping_add(1);
        }
        self.fifo.drain(..at);
        Ok(())
    }
}
