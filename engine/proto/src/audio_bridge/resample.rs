//! A streaming polyphase windowed-sinc resampler for rational rate ratios
//! (every AAC sampling rate to Opus' 48 kHz: 44.1 kHz is 160/147).
//!
//! Design: the input is conceptually upsampled by `L`, low-pass filtered by
//! one Kaiser-windowed sinc prototype (cut-off at the lower Nyquist rate,
//! transition band inside it, about 80 dB stop band) and decimated by `M`;
//! only the `L` polyphase branches that produce output samples are computed.
//! Each output sample costs `TAPS` multiply-adds per channel. Equal rates pass
//! through untouched.

/// Filter taps per polyphase branch (input samples per output sample).
const TAPS: usize = 64;
/// Kaiser β for about 80 dB stop-band attenuation.
const KAISER_BETA: f64 = 7.857;
/// Most polyphase branches (coefficient memory TAPS × L floats).
const MAX_PHASES: usize = 1024;

/// A streaming resampler for interleaved `f32` audio.
#[derive(Debug, Clone)]
pub struct Resampler {
    input_rate: u32,
    output_rate: u32,
    channels: usize,
    /// Upsampling factor L and decimation factor M (reduced).
    up: usize,
    down: usize,
    /// `coefficients[p * TAPS + j]` multiplies the input sample `j` places
    /// after the oldest of the window, for branch `p`.
    coefficients: Vec<f32>,
    /// Per channel, input samples not yet fully consumed.
    history: Vec<Vec<f32>>,
    /// Position of the next output sample in upsampled units, relative to
    /// `history[_][0]` (the sample at index i sits at `i * L`).
    position: usize,
}

/// Greatest common divisor.
fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Zeroth-order modified Bessel function of the first kind (series).
fn bessel_i0(x: f64) -> f64 {
    let (mut sum, mut term, half) = (1.0, 1.0, x / 2.0);
    for k in 1..50 {
        term *= (half / k as f64) * (half / k as f64);
        sum += term;
        if term < sum * 1e-12 {
            break;
        }
    }
    sum
}

impl Resampler {
    /// A resampler from `input_rate` to `output_rate` Hz for `channels`
    /// interleaved channels. `None` when a rate is zero, there are no
    /// channels, or the reduced ratio needs more than 1024 branches.
    pub fn new(input_rate: u32, output_rate: u32, channels: usize) -> Option<Resampler> {
        if input_rate == 0 || output_rate == 0 || channels == 0 {
            return None;
        }
        let g = gcd(u64::from(input_rate), u64::from(output_rate));
        let up = (u64::from(output_rate) / g) as usize;
        let down = (u64::from(input_rate) / g) as usize;
        if up > MAX_PHASES {
            return None;
        }
        let mut r = Resampler {
            input_rate,
            output_rate,
            channels,
            up,
            down,
            coefficients: Vec::new(),
            history: vec![Vec::new(); channels],
            position: 0,
        };
        if !r.is_passthrough() {
            r.coefficients = prototype(up, down);
            // Start with TAPS - 1 zeros of history so the first output
            // sample lines up with the filter's centre.
            for h in &mut r.history {
                h.resize(TAPS - 1, 0.0);
            }
            r.position = (TAPS - 1) * up;
        }
        Some(r)
    }

    /// The input rate in Hz.
    pub fn input_rate(&self) -> u32 {
        self.input_rate
    }

    /// The output rate in Hz.
    pub fn output_rate(&self) -> u32 {
        self.output_rate
    }

    /// Channel count.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// True when the rates are equal (samples are copied as they are).
    pub fn is_passthrough(&self) -> bool {
        self.up == self.down
    }

    /// The delay the filter adds, in output samples (half the filter length).
    pub fn delay(&self) -> usize {
        if self.is_passthrough() {
            0
        } else {
            // Group delay of the linear-phase prototype, (TAPS*L - 1)/2 in
            // upsampled units, measured from the first real input sample.
            ((TAPS * self.up) / 2).div_ceil(self.down)
        }
    }

    /// Resamples interleaved `input` (a whole number of frames), appending
    /// interleaved output to `out`. Returns the output frames appended.
    pub fn process(&mut self, input: &[f32], out: &mut Vec<f32>) -> usize {
        let ch = self.channels;
        if self.is_passthrough() {
            let usable = input.len() - input.len() % ch;
            out.extend_from_slice(&input[..usable]);
            return usable / ch;
        }
        for (i, sample) in input.iter().enumerate() {
            self.history[i % ch].push(*sample);
        }
        let available = self.history[0].len();
        let mut produced = 0;
        out.reserve(((input.len() / ch) * self.up / self.down + 2) * ch);
        loop {
            // The newest input sample the output at `position` needs.
            let newest = self.position / self.up;
            if newest >= available {
                break;
            }
            let phase = self.position % self.up;
            let coefficients = &self.coefficients[phase * TAPS..(phase + 1) * TAPS];
            // newest >= TAPS - 1: the history starts with TAPS - 1 samples
            // before the first position, and only consumed samples are removed.
            let oldest = newest + 1 - TAPS;
            for h in &self.history {
                out.push(dot(&h[oldest..=newest], coefficients));
            }
            produced += 1;
            self.position += self.down;
        }
        // Drop input no future output needs (keep TAPS - 1 before the next).
        let next_newest = self.position / self.up;
        let keep_from = (next_newest + 1).saturating_sub(TAPS);
        if keep_from > 0 {
            for h in &mut self.history {
                h.drain(..keep_from.min(h.len()));
            }
            self.position -= keep_from * self.up;
        }
        produced
    }

    /// Clears the history (a discontinuity); the delay stays the same.
    pub fn reset(&mut self) {
        if self.is_passthrough() {
            return;
        }
        for h in &mut self.history {
            h.clear();
            h.resize(TAPS - 1, 0.0);
        }
        self.position = (TAPS - 1) * self.up;
    }
}

/// A dot product with eight independent sums, so the compiler can use SIMD
/// (a single running float sum cannot be reordered). `TAPS` is a multiple of 8.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum()
}

/// The polyphase branches of a Kaiser-windowed sinc low-pass, gain `up`,
/// arranged so branch `p` tap `j` multiplies the `j`-th oldest input sample
/// of the window ending at the newest sample an output of phase `p` needs.
fn prototype(up: usize, down: usize) -> Vec<f32> {
    let n = TAPS * up;
    // Cut-off (-6 dB) just below the lower Nyquist frequency, as a fraction of
    // the upsampled rate; the transition band of a 64-tap Kaiser filter is
    // about 8 % of the input rate wide.
    let nyquist = 0.5 / up.max(down) as f64;
    let cutoff = nyquist * 0.92;
    let centre = (n - 1) as f64 / 2.0;
    let denom = bessel_i0(KAISER_BETA);
    let h: Vec<f64> = (0..n)
        .map(|k| {
            let t = k as f64 - centre;
            let x = 2.0 * cutoff * t;
            let sinc =
                if x.abs() < 1e-12 { 1.0 } else { (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x) };
            let r = t / centre.max(1.0);
            let window = bessel_i0(KAISER_BETA * (1.0 - r * r).max(0.0).sqrt()) / denom;
            2.0 * cutoff * sinc * window * up as f64
        })
        .collect();
    // Output at upsampled position t uses input i (at i*L) with weight
    // h[t - i*L]. With newest = t / L and phase p = t % L, input newest - d
    // gets h[p + d*L], d = 0..TAPS; stored oldest first (j = TAPS-1-d).
    let mut coefficients = vec![0.0f32; n];
    for p in 0..up {
        for d in 0..TAPS {
            coefficients[p * TAPS + (TAPS - 1 - d)] = h[p + d * up] as f32;
        }
    }
    coefficients
}

#[cfg(test)]
mod tests;
