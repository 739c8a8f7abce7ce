//! Audio bridge tests with real audio: the 440 Hz AAC sine of
//! `testdata/media/*.flv` (ffmpeg's native AAC encoder) and generated tones.

use bytes::Bytes;

use super::*;
use crate::codec::test_util::testdata;
use crate::flv::{FlvReader, TagType};

/// The audio tags (timestamp, body) of a test file.
fn audio_tags(path: &str) -> Vec<(u32, Bytes)> {
    let mut reader = FlvReader::new(FlvReader::DEFAULT_MAX_TAG_SIZE);
    reader.handle_input(&testdata(path));
    let mut tags = Vec::new();
    while let Some(tag) = reader.poll_tag().unwrap() {
        if tag.tag_type == TagType::Audio {
            tags.push((tag.timestamp_ms, tag.body));
        }
    }
    tags
}

/// Fraction of a signal's energy at `freq` (1.0 for a pure tone), and its RMS.
fn tone(signal: &[f32], rate: u32, freq: f64) -> (f64, f64) {
    let (mut re, mut im, mut energy) = (0.0, 0.0, 0.0);
    for (i, &s) in signal.iter().enumerate() {
        let w = 2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate);
        re += f64::from(s) * w.cos();
        im += f64::from(s) * w.sin();
        energy += f64::from(s) * f64::from(s);
    }
    let n = signal.len() as f64;
    let ratio = 2.0 * (re * re + im * im) / (n * energy.max(1e-30));
    (ratio, (energy / n).sqrt())
}

/// Channel `ch` of interleaved audio.
fn channel(samples: &[f32], channels: usize, ch: usize) -> Vec<f32> {
    samples.iter().skip(ch).step_by(channels).copied().collect()
}

/// Decodes Opus packets to interleaved 48 kHz audio.
fn decode_opus(packets: &[OpusPacket], channels: usize) -> Vec<f32> {
    let layout = if channels == 1 { opus::Channels::Mono } else { opus::Channels::Stereo };
    let mut dec = opus::Decoder::new(48_000, layout).unwrap();
    let mut out = Vec::new();
    let mut buf = vec![0f32; 5760 * channels];
    for p in packets {
        let n = dec.decode_float(&p.payload, &mut buf, false).unwrap();
        out.extend_from_slice(&buf[..n * channels]);
    }
    out
}

fn transcode_tags(config: AacToOpusConfig, tags: &[(u32, Bytes)]) -> (AacToOpus, Vec<OpusPacket>) {
    let mut t = AacToOpus::new(config);
    let mut packets = Vec::new();
    for (ts, body) in tags {
        t.handle_audio_tag(*ts, body).unwrap();
        while let Some(p) = t.poll_output() {
            packets.push(p);
        }
    }
    (t, packets)
}

fn kinds() -> Vec<AacDecoderKind> {
    let mut kinds = vec![AacDecoderKind::Symphonia];
    if cfg!(feature = "fdk-aac") {
        kinds.push(AacDecoderKind::Fdk);
    }
    kinds
}

#[test]
fn aac_to_opus_keeps_the_440_hz_tone() {
    for (file, rate, channels) in [("media/small.flv", 48_000, 1), ("media/small_bframes.flv", 44_100, 2)] {
        let tags = audio_tags(file);
        let frames = tags.len() as u32 - 1;
        for kind in kinds() {
            let config = AacToOpusConfig { decoder: kind, ..Default::default() };
            let (t, packets) = transcode_tags(config, &tags);
            assert_eq!(t.channels(), Some(channels), "{file} {kind:?}");
            // All the audio, but the last partial packet.
            let want = (u64::from(frames) * 1024 * 48_000 / rate) / 960;
            assert!(
                packets.len() as u64 + 2 >= want && packets.len() as u64 <= want,
                "{file}: {} packets, {want} expected",
                packets.len()
            );
            // Consecutive RTP fields; the timestamp of the first packet is
            // the FLV time of the first frame less the decoder, resampler and
            // encoder delays.
            let decoder_delay = (t.decoder().unwrap().output_delay() as u64 * 48_000 / rate) as u32;
            let delay = 312 + if rate == 48_000 { 0 } else { 35 } + decoder_delay;
            assert_eq!(packets[0].timestamp, (tags[1].0 * 48).wrapping_sub(delay), "{file} {kind:?}");
            assert!(packets[0].marker && packets[1..].iter().all(|p| !p.marker));
            for w in packets.windows(2) {
                assert_eq!(w[1].timestamp.wrapping_sub(w[0].timestamp), 960);
                assert_eq!(w[1].sequence_number, w[0].sequence_number.wrapping_add(1));
                assert!(w[0].payload.len() < 400);
            }
            // The tone is there, loud, in every channel.
            let pcm = decode_opus(&packets, channels);
            for ch in 0..channels {
                let signal = channel(&pcm, channels, ch);
                let (ratio, rms) = tone(&signal[4800..], 48_000, 440.0);
                assert!(ratio > 0.9 && rms > 0.05, "{file} {kind:?} ch{ch}: ratio {ratio:.3}, rms {rms:.3}");
            }
            assert_eq!(t.stats().decode_errors, 0);
            assert_eq!(t.stats().discontinuities, 0);
            assert_eq!(t.stats().frames_in, u64::from(frames));
            let m = packets[3].to_media_packet(9);
            assert_eq!((m.source_ssrc, m.timestamp), (9, packets[3].timestamp));
        }
    }
}

#[test]
fn aac_to_opus_follows_flv_timestamps() {
    let tags = audio_tags("media/small.flv");
    let (header, frames) = (&tags[0], &tags[1..]);
    let mut t = AacToOpus::new(AacToOpusConfig::default());
    t.handle_audio_tag(0, &header.1).unwrap();
    let mut packets = Vec::new();
    fn push(t: &mut AacToOpus, ts: u32, body: &Bytes, packets: &mut Vec<OpusPacket>) {
        t.handle_audio_tag(ts, body).unwrap();
        while let Some(p) = t.poll_output() {
            packets.push(p);
        }
    }
    // 30 frames, then 5 frames missing (107 ms: filled with silence), then
    // a jump of 10 s forward (a restart of the timeline).
    for (ts, body) in &frames[..30] {
        push(&mut t, *ts, body, &mut packets);
    }
    for (ts, body) in &frames[35..60] {
        push(&mut t, *ts, body, &mut packets);
    }
    assert_eq!(t.stats().discontinuities, 0);
    assert!(t.stats().silence_samples >= 5 * 1024 - 48 && t.stats().silence_samples <= 5 * 1024 + 48);
    let before = packets.len();
    for (ts, body) in &frames[60..] {
        push(&mut t, ts + 10_000, body, &mut packets);
    }
    assert_eq!(t.stats().discontinuities, 1);
    for w in packets[..before].windows(2) {
        assert_eq!(w[1].timestamp.wrapping_sub(w[0].timestamp), 960);
    }
    let restart = &packets[before];
    assert!(restart.marker);
    let decoder_delay = t.decoder().unwrap().output_delay() as u32;
    assert_eq!(restart.timestamp, (frames[60].0 + 10_000) * 48 - 312 - decoder_delay);
    assert_eq!(restart.sequence_number, packets[before - 1].sequence_number.wrapping_add(1));
}

#[test]
fn unsupported_or_broken_aac_is_an_error_never_a_panic() {
    // HE-AAC (explicit SBR, object type 5) without FDK.
    let he_aac = [0x2B, 0x92, 0x08, 0x00];
    let mut t = AacToOpus::new(AacToOpusConfig { decoder: AacDecoderKind::Symphonia, ..Default::default() });
    let mut body = vec![0xAF, 0];
    body.extend_from_slice(&he_aac);
    assert!(matches!(t.handle_audio_tag(0, &body), Err(AudioBridgeError::Unsupported(_))));
    // Frames are then skipped quietly.
    assert_eq!(t.handle_audio_tag(0, &[0xAF, 1, 0x21, 0x10]), Ok(()));
    assert_eq!(t.stats().skipped, 1);
    // Another codec.
    assert!(matches!(t.handle_audio_tag(0, &[0x2F, 0xFF, 0xFB]), Err(AudioBridgeError::Unsupported(_))));
    // 5.1 AAC-LC without FDK.
    assert!(matches!(AacDecoder::new(&[0x11, 0xB0], AacDecoderKind::Symphonia), Err(AudioBridgeError::Unsupported(_))));
    assert!(AacDecoder::new(&[], AacDecoderKind::Auto).is_err());
    // Garbage frames: errors, never panics, and decoding goes on.
    let tags = audio_tags("media/small.flv");
    for kind in kinds() {
        let mut t = AacToOpus::new(AacToOpusConfig { decoder: kind, ..Default::default() });
        t.handle_audio_tag(0, &tags[0].1).unwrap();
        let mut seed = 1u32;
        for i in 0..2000u32 {
            let len = (seed % 300) as usize;
            let frame: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    (seed >> 16) as u8
                })
                .collect();
            let _ = t.handle_frame(i * 21, &frame);
            while t.poll_output().is_some() {}
        }
        assert!(t.stats().decode_errors > 0, "{kind:?}");
        // A real frame still decodes afterwards.
        for (ts, body) in &tags[1..10] {
            let _ = t.handle_audio_tag(ts + 50_000, body);
        }
    }
}

#[cfg(feature = "fdk-aac")]
mod fdk {
    use super::*;
    use crate::codec::{AudioPacket, AudioSpecificConfig, AudioTag};
    use fdk_aac::enc::{AudioObjectType, BitRate, ChannelMode, Encoder, EncoderParams, Transport};
    use std::time::Instant;

    /// A tone as interleaved i16.
    fn sine_i16(rate: u32, freq: f64, frames: usize, channels: usize) -> Vec<i16> {
        (0..frames * channels)
            .map(|i| {
                let t = (i / channels) as f64 / f64::from(rate);
                (8000.0 * (2.0 * std::f64::consts::PI * freq * t).sin()) as i16
            })
            .collect()
    }

    /// Encodes PCM with FDK: (AudioSpecificConfig, raw frames, encoder delay).
    fn aac_encode(pcm: &[i16], rate: u32, channels: usize, aot: AudioObjectType) -> (Vec<u8>, Vec<Vec<u8>>, usize) {
        let enc = Encoder::new(EncoderParams {
            bit_rate: BitRate::Cbr(if matches!(aot, AudioObjectType::Mpeg4LowComplexity) { 128_000 } else { 48_000 }),
            sample_rate: rate,
            transport: Transport::Raw,
            channels: if channels == 1 { ChannelMode::Mono } else { ChannelMode::Stereo },
            audio_object_type: aot,
        })
        .unwrap();
        let info = enc.info().unwrap();
        let asc = info.confBuf[..info.confSize as usize].to_vec();
        let step = info.frameLength as usize * channels;
        let mut frames = Vec::new();
        let mut out = [0u8; 4096];
        for chunk in pcm.chunks(step) {
            let mut at = 0;
            while at < chunk.len() {
                let r = enc.encode(&chunk[at..], &mut out).unwrap();
                at += r.input_consumed;
                if r.output_size > 0 {
                    frames.push(out[..r.output_size].to_vec());
                }
                if r.input_consumed == 0 {
                    break;
                }
            }
        }
        (asc, frames, info.nDelay as usize)
    }

    #[test]
    fn he_aac_decodes_with_fdk_only() {
        let pcm = sine_i16(48_000, 440.0, 48_000 * 2, 2);
        let (asc, frames, _) = aac_encode(&pcm, 48_000, 2, AudioObjectType::Mpeg4HeAac);
        let cfg = AudioSpecificConfig::parse(&asc).unwrap();
        let mut t = AacToOpus::new(AacToOpusConfig::default());
        if cfg.object_type == 2 {
            // This FDK build made plain AAC-LC: still a valid transcode.
            eprintln!("FDK produced AAC-LC for the HE-AAC request");
        } else {
            assert!(matches!(AacDecoder::new(&asc, AacDecoderKind::Symphonia), Err(AudioBridgeError::Unsupported(_))));
        }
        t.configure(&asc).unwrap();
        let samples_per_frame = if cfg.sbr { 2048 } else { 1024 };
        let mut packets = Vec::new();
        for (i, f) in frames.iter().enumerate() {
            t.handle_frame((i * samples_per_frame / 48) as u32, f).unwrap();
            while let Some(p) = t.poll_output() {
                packets.push(p);
            }
        }
        assert_eq!(t.decoder().unwrap().backend_name(), "fdk");
        let pcm = decode_opus(&packets, 2);
        let (ratio, rms) = tone(&channel(&pcm, 2, 0)[9600..], 48_000, 440.0);
        assert!(ratio > 0.9 && rms > 0.05, "ratio {ratio}, rms {rms}");
    }

    /// Opus packets of a tone (20 ms each), starting at RTP time `start`.
    fn opus_tone(channels: usize, seconds: usize, start: u32, click_at: Option<usize>) -> Vec<(u32, Vec<u8>)> {
        let mut pcm: Vec<f32> =
            sine_i16(48_000, 440.0, 48_000 * seconds, channels).iter().map(|&s| f32::from(s) / 32_768.0).collect();
        if let Some(at) = click_at {
            // A sharp click, much louder than the tone.
            for ch in 0..channels {
                pcm[at * channels + ch] = 0.95;
                pcm[(at + 1) * channels + ch] = -0.95;
            }
        }
        let layout = if channels == 1 { opus::Channels::Mono } else { opus::Channels::Stereo };
        let mut enc = opus::Encoder::new(48_000, layout, opus::Application::Audio).unwrap();
        enc.set_bitrate(opus::Bitrate::Bits(96_000)).unwrap();
        pcm.chunks(960 * channels)
            .enumerate()
            .map(|(i, chunk)| (start.wrapping_add(i as u32 * 960), enc.encode_vec_float(chunk, 1500).unwrap()))
            .collect()
    }

    /// Decodes AAC frames with symphonia (an independent decoder).
    fn decode_aac(asc: &[u8], frames: &[AacFrame]) -> (Vec<f32>, usize) {
        let mut dec = AacDecoder::new(asc, AacDecoderKind::Symphonia).unwrap();
        let mut out = Vec::new();
        for f in frames {
            dec.decode(&f.raw(), &mut out).unwrap();
        }
        (out, dec.channels())
    }

    fn run(t: &mut OpusToAac, packets: &[(u32, Vec<u8>)]) -> Vec<AacFrame> {
        let mut frames = Vec::new();
        for (ts, p) in packets {
            t.handle_packet(*ts, p).unwrap();
            while let Some(f) = t.poll_output() {
                frames.push(f);
            }
        }
        frames
    }

    #[test]
    fn opus_to_aac_keeps_the_440_hz_tone() {
        for channels in [1, 2] {
            let start = u32::MAX - 10 * 960;
            let packets = opus_tone(channels, 2, start, None);
            let mut t = OpusToAac::new(OpusToAacConfig::default());
            let frames = run(&mut t, &packets);
            assert_eq!(t.channels(), Some(channels));
            let asc = t.audio_specific_config().unwrap();
            let cfg = AudioSpecificConfig::parse(&asc).unwrap();
            assert_eq!((cfg.object_type, cfg.sample_rate, usize::from(cfg.channel_config)), (2, 48_000, channels));
            let header = t.sequence_header_tag_body().unwrap();
            assert_eq!(AudioTag::parse(&header).unwrap().packet, AudioPacket::SequenceHeader);
            assert_eq!(&header[2..], &asc[..]);
            // 2 s = 93.75 frames, less the encoder's pipeline.
            assert!((88..=94).contains(&frames.len()), "{} frames", frames.len());
            for w in frames.windows(2) {
                assert_eq!(w[1].rtp_timestamp.wrapping_sub(w[0].rtp_timestamp), 1024);
            }
            let tag = AudioTag::parse(&frames[0].flv_tag_body).unwrap();
            assert_eq!(tag.packet, AudioPacket::Frame);
            let (pcm, decoded_channels) = decode_aac(&asc, &frames);
            assert_eq!(decoded_channels, channels);
            for ch in 0..channels {
                let (ratio, rms) = tone(&channel(&pcm, channels, ch)[9600..], 48_000, 440.0);
                assert!(ratio > 0.9 && rms > 0.1, "{channels} ch: ratio {ratio}, rms {rms}");
            }
            assert_eq!(t.stats().frames_in, packets.len() as u64);
            assert_eq!(t.stats().decode_errors, 0);
        }
    }

    #[test]
    fn opus_to_aac_timestamps_are_those_of_the_audio() {
        // A click at RTP time start + 30000: after Opus (312 samples of
        // encoder lookahead, not compensated by WebRTC senders either) and
        // AAC, the decoded click sits at its RTP time + 312.
        let start = 1_000_000u32;
        let packets = opus_tone(1, 2, start, Some(30_000));
        let mut t = OpusToAac::new(OpusToAacConfig::default());
        let frames = run(&mut t, &packets);
        let (pcm, _) = decode_aac(&t.audio_specific_config().unwrap(), &frames);
        let peak = pcm.iter().enumerate().max_by(|a, b| a.1.abs().total_cmp(&b.1.abs())).unwrap().0;
        let at = frames[0].rtp_timestamp.wrapping_add(peak as u32);
        let want = start + 30_000 + 312;
        assert!(at.abs_diff(want) <= 16, "click at {at}, expected {want}");
        // The timeline maps it to FLV milliseconds.
        let mut timeline = RtpTimeline::new(48_000);
        timeline.anchor(start, 0);
        assert_eq!(timeline.to_ms(want), 631);
    }

    #[test]
    fn opus_to_aac_conceals_loss_and_survives_restarts() {
        let packets = opus_tone(2, 3, 5000, None);
        let mut t = OpusToAac::new(OpusToAacConfig::default());
        // Lose packets 40-42, deliver packet 50 twice and 60 late (after 61).
        let mut feed: Vec<(u32, Vec<u8>)> = Vec::new();
        for (i, p) in packets.iter().enumerate() {
            match i {
                40..=42 | 60 => {}
                61 => {
                    feed.push(p.clone());
                    feed.push(packets[60].clone());
                }
                50 => {
                    feed.push(p.clone());
                    feed.push(p.clone());
                }
                _ => feed.push(p.clone()),
            }
        }
        let frames = run(&mut t, &feed);
        assert_eq!(t.stats().concealed_samples, 3 * 960 + 960);
        assert_eq!(t.stats().skipped, 2, "duplicate and late packet");
        for w in frames.windows(2) {
            assert_eq!(w[1].rtp_timestamp.wrapping_sub(w[0].rtp_timestamp), 1024);
        }
        let (pcm, _) = decode_aac(&t.audio_specific_config().unwrap(), &frames);
        let (ratio, _) = tone(&channel(&pcm, 2, 1)[9600..], 48_000, 440.0);
        assert!(ratio > 0.8, "ratio {ratio}");
        // A publisher restart: RTP time jumps; a fresh segment starts there.
        let restarted = opus_tone(2, 1, 77_777_777, None);
        let more = run(&mut t, &restarted);
        assert_eq!(t.stats().discontinuities, 1);
        let delay = more[0].rtp_timestamp.wrapping_sub(77_777_777);
        assert!(delay > u32::MAX - 4096, "first frame starts before the first sample by the encoder delay");
        // Garbage is concealed, never a panic.
        assert!(t.handle_packet(77_777_777 + 48_000, &[0xFF; 3]).is_err() || t.stats().decode_errors == 0);
        assert!(t.handle_packet(0, &[]).is_ok());
    }

    /// AAC → Opus timestamps: a click encoded in AAC at FLV time T (plus the
    /// AAC encoder's own delay, which FLV cannot signal) decodes from Opus at
    /// RTP time T × 48 + that delay: the resampler and Opus delays are
    /// compensated.
    #[test]
    fn aac_to_opus_timestamps_are_those_of_the_audio() {
        for rate in [48_000u32, 44_100] {
            let mut pcm = sine_i16(rate, 440.0, rate as usize * 2, 1);
            let click = rate as usize / 2;
            pcm[click] = 30_000;
            pcm[click + 1] = -30_000;
            let (asc, aac, aac_delay) = aac_encode(&pcm, rate, 1, AudioObjectType::Mpeg4LowComplexity);
            let mut t = AacToOpus::new(AacToOpusConfig::default());
            t.configure(&asc).unwrap();
            let mut packets = Vec::new();
            let base_ms = 3_000u32;
            let mut samples = 0u64;
            for f in &aac {
                let ts = base_ms + (samples * 1000 / u64::from(rate)) as u32;
                t.handle_frame(ts, f).unwrap();
                samples += 1024;
                while let Some(p) = t.poll_output() {
                    packets.push(p);
                }
            }
            let out = decode_opus(&packets, 1);
            let peak = out.iter().enumerate().max_by(|a, b| a.1.abs().total_cmp(&b.1.abs())).unwrap().0;
            let at = packets[0].timestamp.wrapping_add(peak as u32);
            let want = base_ms * 48 + ((click + aac_delay) as u64 * 48_000 / u64::from(rate)) as u32;
            assert!(at.abs_diff(want) <= 24, "{rate} Hz: click at {at}, expected {want}");
        }
    }

    /// FFmpeg decodes an FLV of the transcoded AAC without errors. Skipped
    /// without ffmpeg.
    #[test]
    fn ffmpeg_decodes_the_transcoded_aac() {
        use crate::flv::{file_header, write_tag};
        if std::process::Command::new("ffmpeg").arg("-version").output().is_err() {
            eprintln!("ffmpeg not found: skipped");
            return;
        }
        let packets = opus_tone(2, 2, 123, None);
        let mut t = OpusToAac::new(OpusToAacConfig::default());
        let frames = run(&mut t, &packets);
        let mut timeline = RtpTimeline::new(48_000);
        timeline.anchor(123, 0);
        let mut flv = file_header(true, false).to_vec();
        write_tag(&mut flv, TagType::Audio, 0, &t.sequence_header_tag_body().unwrap()).unwrap();
        for f in &frames {
            write_tag(&mut flv, TagType::Audio, timeline.to_flv_ms(f.rtp_timestamp), &f.flv_tag_body).unwrap();
        }
        let path = std::env::temp_dir().join(format!("opus_to_aac_{}.flv", std::process::id()));
        std::fs::write(&path, &flv).unwrap();
        let result = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(&path)
            .args(["-af", "volumedetect", "-f", "null", "-"])
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&path);
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(result.status.success() && stderr.trim().is_empty(), "ffmpeg: {stderr}");
    }

    /// The CPU cost of each direction on 10 s of audio (printed; run with
    /// `--nocapture`). Bounded loosely so a debug build on a busy machine
    /// passes; the figures to report come from a release build.
    #[test]
    fn transcoding_cpu_cost() {
        // AAC → Opus: small.flv's 48 kHz mono AAC, five times (10 s), and
        // small_bframes.flv's 44.1 kHz stereo, ten times (10 s).
        for (file, loops, rate) in [("media/small.flv", 5u32, 48_000), ("media/small_bframes.flv", 10, 44_100)] {
            let tags = audio_tags(file);
            let duration_ms = (tags.len() as u32 - 1) * 1024 * 1000 / rate;
            let mut t = AacToOpus::new(AacToOpusConfig::default());
            let started = Instant::now();
            t.handle_audio_tag(0, &tags[0].1).unwrap();
            for l in 0..loops {
                for (ts, body) in &tags[1..] {
                    t.handle_audio_tag(ts + l * duration_ms, body).unwrap();
                    while t.poll_output().is_some() {}
                }
            }
            let elapsed = started.elapsed();
            let frames = t.stats().encoded_samples / 960;
            let per_frame = elapsed.as_secs_f64() * 1e6 / frames as f64;
            eprintln!(
                "AAC→Opus {file} ({} ch, {}): {frames} × 20 ms in {elapsed:?}: {per_frame:.0} µs per 20 ms frame ({:.2} % of one core)",
                t.channels().unwrap(),
                t.decoder().unwrap().backend_name(),
                per_frame / 200.0
            );
            assert!(frames >= 480);
            assert_eq!((t.stats().silence_samples, t.stats().discontinuities), (0, 0));
            assert!(per_frame < 20_000.0, "slower than real time");
        }
        for channels in [1, 2] {
            let packets = opus_tone(channels, 10, 0, None);
            let mut t = OpusToAac::new(OpusToAacConfig::default());
            let started = Instant::now();
            let frames = run(&mut t, &packets);
            let elapsed = started.elapsed();
            let per_frame = elapsed.as_secs_f64() * 1e6 / packets.len() as f64;
            eprintln!(
                "Opus→AAC ({channels} ch): {} × 20 ms in {elapsed:?}: {per_frame:.0} µs per 20 ms frame ({:.2} % of one core)",
                packets.len(),
                per_frame / 200.0
            );
            assert!(frames.len() >= 460);
            assert!(per_frame < 20_000.0, "slower than real time");
        }
    }
}
