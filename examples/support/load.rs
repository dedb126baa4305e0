//! What the load clients (`echo_client`, `udp_echo_client`) share: duration flags, the
//! measured window, latency histograms, the process's CPU time, and the byte patterns each
//! connection or client sends (so every echoed byte can be checked).

use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;

/// Parse `5`, `5s`, `2.5`, `2.5s` or `500ms` into a duration.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, scale) = if let Some(ms) = s.strip_suffix("ms") {
        (ms, 1e-3)
    } else if let Some(secs) = s.strip_suffix('s') {
        (secs, 1.0)
    } else {
        (s, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a duration: write e.g. 5, 5s, 2.5s or 500ms"))?;
    if !value.is_finite() || !(0.0..=86_400.0).contains(&(value * scale)) {
        return Err(format!("`{s}` is out of range (0 to 86400 s)"));
    }
    Ok(Duration::from_secs_f64(value * scale))
}

/// The run's times: warm-up ends at `warm_end`, the measured window at `deadline`.
#[derive(Clone, Copy)]
pub(crate) struct Window {
    pub(crate) warm_end: Instant,
    pub(crate) deadline: Instant,
}

/// A latency histogram in µs, 1 µs to 100 s, 3 significant digits.
pub(crate) fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000, 3).expect("valid histogram bounds")
}

/// User + system CPU seconds this process has used so far.
pub(crate) fn cpu_time() -> f64 {
    use nix::sys::resource::{getrusage, UsageWho};
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(usage) => {
            let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 * 1e-6;
            secs(usage.user_time()) + secs(usage.system_time())
        }
        Err(_) => 0.0,
    }
}

/// `size` pseudo-random bytes that depend on `id` (splitmix64): each connection or client
/// sends its own, so a reply meant for another is caught.
pub(crate) fn pattern_block(id: u64, size: usize) -> Vec<u8> {
    let mut state = id.wrapping_mul(0xA076_1D64_78BD_642F) ^ 0x5EED_0EC0_5EED_0EC0;
    let mut block = Vec::with_capacity(size + 8);
    while block.len() < size {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        block.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    block.truncate(size);
    block
}

/// Fills `message` with `base` rotated by an offset that depends on `n`, so that a stale or
/// repeated buffer differs from the expected one beyond any header.
pub(crate) fn rotate_into(message: &mut [u8], base: &[u8], n: u64) {
    let size = base.len();
    let offset = ((n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % size as u64) as usize;
    message[..size - offset].copy_from_slice(&base[offset..]);
    message[size - offset..].copy_from_slice(&base[..offset]);
}
