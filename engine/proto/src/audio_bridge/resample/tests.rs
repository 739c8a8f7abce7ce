use super::*;

fn sine(rate: u32, freq: f64, frames: usize, channels: usize) -> Vec<f32> {
    (0..frames * channels)
        .map(|i| {
            let t = (i / channels) as f64 / f64::from(rate);
            (0.5 * (2.0 * std::f64::consts::PI * freq * t).sin()) as f32
        })
        .collect()
}

/// Amplitude of `freq` in a mono signal (single-bin DFT).
fn amplitude(signal: &[f32], rate: u32, freq: f64) -> f64 {
    let (mut re, mut im) = (0.0, 0.0);
    for (i, &s) in signal.iter().enumerate() {
        let w = 2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate);
        re += f64::from(s) * w.cos();
        im += f64::from(s) * w.sin();
    }
    2.0 * (re * re + im * im).sqrt() / signal.len() as f64
}

#[test]
fn converts_44100_to_48000_in_any_chunking() {
    let input = sine(44_100, 1000.0, 44_100, 2);
    let mut r = Resampler::new(44_100, 48_000, 2).unwrap();
    assert_eq!((r.up, r.down), (160, 147));
    let mut out = Vec::new();
    let mut produced = 0;
    for chunk in input.chunks(2 * 1024) {
        produced += r.process(chunk, &mut out);
    }
    // One second in, one second (less the filter delay) out.
    assert!((48_000 - produced as i64).abs() <= r.delay() as i64 + 2, "{produced}");
    assert_eq!(out.len(), produced * 2);
    // In a different chunking, the same samples.
    let mut r2 = Resampler::new(44_100, 48_000, 2).unwrap();
    let mut out2 = Vec::new();
    for chunk in input.chunks(2 * 77) {
        r2.process(chunk, &mut out2);
    }
    assert_eq!(out, out2);
    // The tone keeps its amplitude (0.5) and its frequency.
    let left: Vec<f32> = out.iter().step_by(2).skip(r.delay() + 100).copied().collect();
    let a = amplitude(&left, 48_000, 1000.0);
    assert!((a - 0.5).abs() < 0.01, "amplitude {a}");
    assert!(amplitude(&left, 48_000, 1088.4) < 0.02, "no tone at the wrong rate");
}

#[test]
fn delay_matches_the_filter() {
    // A click comes out `delay()` samples later.
    for (from, to) in [(44_100, 48_000), (24_000, 48_000), (96_000, 48_000), (22_050, 48_000)] {
        let mut r = Resampler::new(from, to, 1).unwrap();
        let mut input = vec![0.0f32; from as usize / 10];
        input[100] = 1.0;
        let mut out = Vec::new();
        r.process(&input, &mut out);
        let peak = out.iter().enumerate().max_by(|a, b| a.1.abs().total_cmp(&b.1.abs())).unwrap().0;
        let expected = 100.0 * f64::from(to) / f64::from(from) + r.delay() as f64;
        assert!((peak as f64 - expected).abs() <= 1.5, "{from}->{to}: {peak} vs {expected}");
    }
}

#[test]
fn suppresses_aliases_when_downsampling() {
    // 30 kHz at 96 kHz must vanish at 48 kHz (it would alias to 18 kHz).
    let mut r = Resampler::new(96_000, 48_000, 1).unwrap();
    let mut out = Vec::new();
    r.process(&sine(96_000, 30_000.0, 96_000, 1), &mut out);
    assert!(amplitude(&out[200..], 48_000, 18_000.0) < 0.001);
    let mut pass = Resampler::new(48_000, 48_000, 2).unwrap();
    let mut out = Vec::new();
    assert_eq!(pass.process(&[1.0, 2.0, 3.0, 4.0, 5.0], &mut out), 2);
    assert_eq!(out, [1.0, 2.0, 3.0, 4.0]);
    assert_eq!(pass.delay(), 0);
    assert!(Resampler::new(0, 48_000, 1).is_none());
    assert!(Resampler::new(48_000, 48_001, 1).is_none());
}
