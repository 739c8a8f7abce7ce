//! AAC decoding to interleaved `f32` PCM (raw access units as carried in FLV
//! audio tags, configured by an `AudioSpecificConfig`, ISO/IEC 14496-3
//! 1.6.2.1).
//!
//! Two back ends: symphonia (pure Rust, MPL-2.0; AAC-LC only, at most two
//! channels) and, with the `fdk-aac` feature, the Fraunhofer FDK decoder
//! (AAC-LC, HE-AAC v1/v2 with explicit or implicit SBR/PS signalling, and
//! multichannel downmixed to stereo). [`AacDecoderKind::Auto`] uses
//! symphonia for what it can decode (AAC-LC mono/stereo: the usual OBS and
//! ffmpeg output) and FDK for the rest: symphonia took half FDK's CPU in our
//! measurement, and FDK delays its output by one frame plus its limiter's
//! look-ahead (1744 samples at 48 kHz: 36 ms more latency to WebRTC viewers).
//! HE-AAC signalled only implicitly (an AAC-LC configuration at half the
//! rate, SBR data in the frames) then plays through symphonia as its AAC-LC
//! core: at the lower rate, without the high band.

use super::AudioBridgeError;
use crate::codec::AudioSpecificConfig;

/// Which AAC decoder to use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum AacDecoderKind {
    /// symphonia for AAC-LC mono/stereo, else FDK when compiled in.
    #[default]
    Auto,
    /// symphonia (AAC-LC mono/stereo only).
    Symphonia,
    /// Fraunhofer FDK (needs the `fdk-aac` feature).
    Fdk,
}

/// Largest decoded frame: 2048 samples (HE-AAC) × 8 channels.
#[cfg(feature = "fdk-aac")]
const MAX_FRAME_SAMPLES: usize = 2048 * 8;

enum Backend {
    Symphonia(Box<symphonia_codec_aac::AacDecoder>),
    #[cfg(feature = "fdk-aac")]
    Fdk(Box<fdk_aac::dec::Decoder>, Vec<i16>),
}

/// An AAC decoder for one configuration.
pub struct AacDecoder {
    backend: Backend,
    config: AudioSpecificConfig,
    /// Output rate and channels of the last decoded frame (FDK can change
    /// them when it discovers implicit SBR).
    sample_rate: u32,
    channels: usize,
}

impl std::fmt::Debug for AacDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AacDecoder")
            .field("backend", &self.backend_name())
            .field("sample_rate", &self.sample_rate)
            .field("channels", &self.channels)
            .finish()
    }
}

impl AacDecoder {
    /// A decoder for the `AudioSpecificConfig` bytes of an AAC sequence
    /// header. [`AudioBridgeError::Unsupported`] when the chosen back end
    /// cannot decode this configuration (the stream then goes video-only).
    pub fn new(asc: &[u8], kind: AacDecoderKind) -> Result<AacDecoder, AudioBridgeError> {
        let config = AudioSpecificConfig::parse(asc)
            .map_err(|_| AudioBridgeError::Unsupported("unparsable AudioSpecificConfig".into()))?;
        let channels = usize::from(config.channels().unwrap_or(2).min(2));
        let use_fdk = match kind {
            AacDecoderKind::Fdk => true,
            AacDecoderKind::Symphonia => false,
            AacDecoderKind::Auto => {
                let symphonia_can =
                    config.object_type == 2 && (1..=2).contains(&config.channel_config) && config.frame_length == 1024;
                !symphonia_can && cfg!(feature = "fdk-aac")
            }
        };
        let backend = if use_fdk { fdk_backend(asc, &config)? } else { symphonia_backend(asc, &config)? };
        Ok(AacDecoder { backend, sample_rate: config.output_sample_rate, channels, config })
    }

    /// The configuration.
    pub fn config(&self) -> &AudioSpecificConfig {
        &self.config
    }

    /// "fdk" or "symphonia".
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Symphonia(_) => "symphonia",
            #[cfg(feature = "fdk-aac")]
            Backend::Fdk(..) => "fdk",
        }
    }

    /// Output sample rate of the last frame (the configuration's before).
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Samples (at [`sample_rate`](Self::sample_rate)) by which the decoder
    /// delays its output beyond the codec's own delay: FDK holds one frame
    /// back for its default concealment (energy interpolation); symphonia 0.
    pub fn output_delay(&self) -> usize {
        match &self.backend {
            Backend::Symphonia(_) => 0,
            #[cfg(feature = "fdk-aac")]
            Backend::Fdk(dec, _) => dec.stream_info().outputDelay as usize,
        }
    }

    /// Output channels of the last frame (1 or 2).
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Decodes one raw access unit, appending interleaved samples to `out`
    /// ([`sample_rate`](Self::sample_rate) and [`channels`](Self::channels)
    /// describe them afterwards). Returns the frames appended (0 while the
    /// decoder fills its pipeline). A corrupt frame is
    /// [`AudioBridgeError::Malformed`]; decoding can go on with the next.
    pub fn decode(&mut self, frame: &[u8], out: &mut Vec<f32>) -> Result<usize, AudioBridgeError> {
        match &mut self.backend {
            Backend::Symphonia(dec) => {
                use symphonia_core::codecs::audio::AudioDecoder as _;
                use symphonia_core::packet::PacketRef;
                use symphonia_core::units::{Duration, Timestamp};
                if frame.is_empty() {
                    return Ok(0);
                }
                let packet = PacketRef::new(0, Timestamp::new(0), Duration::new(1024), frame);
                // The decoder is pure Rust and documented not to panic, but it
                // is fed network input: contain a panic to this stream.
                let decoded =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match dec.decode_ref(&packet) {
                        Ok(buf) => {
                            let channels = buf.spec().channels().count();
                            let rate = buf.spec().rate();
                            let mut samples = Vec::new();
                            buf.copy_to_vec_interleaved::<f32>(&mut samples);
                            Ok((channels, rate, samples))
                        }
                        Err(e) => Err(e.to_string()),
                    }));
                match decoded {
                    Ok(Ok((channels, rate, samples))) => {
                        if channels == 0 || channels > 2 {
                            return Err(AudioBridgeError::Unsupported(format!("{channels} AAC channels")));
                        }
                        self.channels = channels;
                        self.sample_rate = rate;
                        out.extend_from_slice(&samples);
                        Ok(samples.len() / channels)
                    }
                    Ok(Err(_)) => {
                        dec.reset();
                        Err(AudioBridgeError::Malformed("AAC frame"))
                    }
                    Err(_) => Err(AudioBridgeError::Codec("AAC decoder panicked".into())),
                }
            }
            #[cfg(feature = "fdk-aac")]
            Backend::Fdk(dec, pcm) => {
                if frame.is_empty() {
                    return Ok(0);
                }
                dec.fill(frame).map_err(|_| AudioBridgeError::Malformed("AAC frame"))?;
                match dec.decode_frame(pcm) {
                    Ok(()) => {}
                    Err(e) if e == fdk_aac::dec::DecoderError::NOT_ENOUGH_BITS => return Ok(0),
                    Err(_) => return Err(AudioBridgeError::Malformed("AAC frame")),
                }
                let info = dec.stream_info();
                let (channels, rate, frame_size) = (
                    usize::try_from(info.numChannels).unwrap_or(0),
                    u32::try_from(info.sampleRate).unwrap_or(0),
                    usize::try_from(info.frameSize).unwrap_or(0),
                );
                if !(1..=2).contains(&channels) || rate == 0 {
                    return Err(AudioBridgeError::Unsupported(format!(
                        "AAC output of {channels} channels at {rate} Hz"
                    )));
                }
                let n = (frame_size * channels).min(pcm.len());
                self.channels = channels;
                self.sample_rate = rate;
                out.extend(pcm[..n].iter().map(|&s| f32::from(s) / 32_768.0));
                Ok(n / channels)
            }
        }
    }
}

fn symphonia_backend(asc: &[u8], config: &AudioSpecificConfig) -> Result<Backend, AudioBridgeError> {
    use symphonia_core::codecs::audio::well_known::CODEC_ID_AAC;
    use symphonia_core::codecs::audio::{AudioCodecParameters, AudioDecoderOptions};
    if config.object_type != 2 {
        return Err(AudioBridgeError::Unsupported(format!(
            "AAC object type {} (only AAC-LC without the fdk-aac feature)",
            config.object_type
        )));
    }
    if !(1..=2).contains(&config.channel_config) {
        return Err(AudioBridgeError::Unsupported(format!(
            "AAC channel configuration {} (only mono/stereo without the fdk-aac feature)",
            config.channel_config
        )));
    }
    let mut params = AudioCodecParameters::new();
    params.for_codec(CODEC_ID_AAC).with_extra_data(asc.to_vec().into_boxed_slice());
    let decoder =
        std::panic::catch_unwind(|| symphonia_codec_aac::AacDecoder::try_new(&params, &AudioDecoderOptions::default()))
            .map_err(|_| AudioBridgeError::Unsupported("AAC configuration".into()))?
            .map_err(|e| AudioBridgeError::Unsupported(format!("AAC configuration: {e}")))?;
    Ok(Backend::Symphonia(Box::new(decoder)))
}

#[cfg(feature = "fdk-aac")]
fn fdk_backend(asc: &[u8], _config: &AudioSpecificConfig) -> Result<Backend, AudioBridgeError> {
    use fdk_aac::dec::{Decoder, Transport};
    let mut dec = Decoder::new(Transport::Raw);
    dec.config_raw(asc).map_err(|e| AudioBridgeError::Unsupported(format!("AAC configuration: {e}")))?;
    // Downmix anything wider than stereo (Opus in WebRTC is at most stereo).
    dec.set_max_output_channels(2).map_err(|e| AudioBridgeError::Codec(format!("fdk-aac: {e}")))?;
    Ok(Backend::Fdk(Box::new(dec), vec![0; MAX_FRAME_SAMPLES]))
}

#[cfg(not(feature = "fdk-aac"))]
fn fdk_backend(_asc: &[u8], _config: &AudioSpecificConfig) -> Result<Backend, AudioBridgeError> {
    Err(AudioBridgeError::Unsupported("the FDK AAC decoder is not compiled in (feature fdk-aac)".into()))
}
