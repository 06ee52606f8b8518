//! [`Dormancy`]: when an effect fed silence may stop working, at exact samples.
//!
//! An effect on a silent track should cost next to nothing. Once its input has been
//! exactly silent for as long as the effect rings (its tail), what it still holds is
//! below the level the tail is defined by, and it may clear its state and stop running
//! its DSP; at the first non-zero input sample it starts again as a fresh instance would.
//!
//! [`Dormancy`] finds both moments on exact samples by scanning the input
//! ([`first_sound`], [`last_sound`]) and counting samples, never per block, so the
//! output does not depend on how the host splits its blocks: an offline render and a
//! real-time one give the same bits. It splits each stretch of a block into spans:
//!
//! ```
//! use trio_dsp::dormancy::Dormancy;
//! let mut sleep = Dormancy::new();
//! let mut input = vec![0.0f32; 1000];
//! input[10] = 0.5;
//! let quiet = 300; // samples of silent input after which the effect is silent too
//! let (mut at, mut processed) = (0, 0);
//! while at < input.len() {
//!     let span = sleep.next_span(&[&input[..]], at, input.len(), quiet);
//!     if span.clear {
//!         // Clear the effect's state here (delay lines, filters, ...).
//!     }
//!     if !span.asleep {
//!         processed += span.range.len(); // run the effect over `span.range`
//!     }
//!     at = span.range.end;
//! }
//! sleep.advance(input.len());
//! // Asleep until sample 10, awake from the sound until 300 silent samples have
//! // followed it (samples 10 to 310), asleep again.
//! assert_eq!(processed, 301);
//! assert!(sleep.is_asleep());
//! ```

use core::ops::Range;

use crate::buffer::{first_sound, last_sound};

/// Where a span of a block stands: see [`Dormancy::next_span`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    /// The samples of the block this span covers (never empty).
    pub range: Range<usize>,
    /// The effect sleeps through these samples: its input is silent, its output must be
    /// too (an in-place effect leaves the buffers as they are), and no DSP needs to run.
    pub asleep: bool,
    /// The effect's input has been silent long enough before this span: clear the
    /// effect's state (delay lines, filters, envelopes) before it.
    pub clear: bool,
}

/// Tracks how long an effect's input has been silent, and whether the effect sleeps.
///
/// A new tracker (and one after [`Dormancy::reset`]) is asleep: a freshly reset effect
/// holds nothing. Allocation-free and `Copy`; every method is real-time safe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dormancy {
    /// Samples since the reset at the start of the current block.
    clock: u64,
    /// The clock just after the last non-zero input sample.
    sound_until: u64,
    asleep: bool,
}

impl Default for Dormancy {
    fn default() -> Self {
        Self::new()
    }
}

/// The first (`first_sound`, `usize::min`) or last (`last_sound`, `usize::max`) non-zero
/// sample of `from..end` over `channels`.
fn scan<C: AsRef<[f32]>>(
    channels: &[C],
    from: usize,
    end: usize,
    find: fn(&[f32]) -> Option<usize>,
    pick: fn(usize, usize) -> usize,
) -> Option<usize> {
    channels
        .iter()
        .filter_map(|c| c.as_ref().get(from..end.min(c.as_ref().len()).max(from)).and_then(find))
        .reduce(pick)
        .map(|i| from + i)
}

impl Dormancy {
    /// A tracker for an effect whose state is clear: asleep.
    pub const fn new() -> Self {
        Self { clock: 0, sound_until: 0, asleep: true }
    }

    /// Back to [`Dormancy::new`] (call it when the effect is reset).
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// Whether the effect sleeps at the current position.
    pub fn is_asleep(&self) -> bool {
        self.asleep
    }

    /// The next span of the block from sample `at` (before `to`, `at < to`), given the
    /// block's input `channels` as they are before the effect writes into them (an
    /// in-place effect calls this before processing the span: it reads samples from `at`
    /// on) and `quiet`: how many samples of silent input the effect needs to fall silent
    /// itself (its tail). `quiet` must depend only on the settings the effect was given,
    /// not on how far a ramp has come, for the spans not to depend on the block sizes.
    ///
    /// An awake effect's span runs until the sample where its input will have been silent
    /// for `quiet` samples, or to `to`; an asleep effect's span runs until the input's
    /// first non-zero sample, or to `to`. Call [`Dormancy::advance`] once at the end of
    /// each block.
    pub fn next_span<C: AsRef<[f32]>>(&mut self, channels: &[C], at: usize, to: usize, quiet: u64) -> Span {
        debug_assert!(at < to, "next_span needs a non-empty stretch: {at}..{to}");
        // A caller's empty stretch still gets a span of one sample (never zero: a loop
        // over spans always moves on).
        let to = to.max(at + 1);
        let mut clear = false;
        if !self.asleep {
            let sleep = self.sleep_point(channels, at, to, quiet);
            if sleep > at as u64 {
                return Span { range: at..sleep.min(to as u64) as usize, asleep: false, clear: false };
            }
            // Silent for `quiet` samples up to here: what the effect holds has died away.
            self.asleep = true;
            clear = true;
        }
        match scan(channels, at, to, first_sound, usize::min) {
            Some(wake) if wake > at => Span { range: at..wake, asleep: true, clear },
            None => Span { range: at..to, asleep: true, clear },
            Some(_) => {
                // The input sounds here: awake from this sample, as a fresh effect.
                self.asleep = false;
                self.sound_until = self.clock + at as u64 + 1;
                let sleep = self.sleep_point(channels, at, to, quiet);
                Span { range: at..sleep.min(to as u64) as usize, asleep: false, clear }
            }
        }
    }

    /// The sample (relative to the block, at least `at`) where the input will have been
    /// silent for `quiet` samples unless it sounds before: follows the input's last sound
    /// in `at..to` up to that point until it stays silent.
    fn sleep_point<C: AsRef<[f32]>>(&mut self, channels: &[C], at: usize, to: usize, quiet: u64) -> u64 {
        let mut scanned = at;
        loop {
            let sleep = self.sound_until.saturating_add(quiet).saturating_sub(self.clock).max(at as u64);
            let end = sleep.min(to as u64) as usize;
            match scan(channels, scanned, end, last_sound, usize::max) {
                Some(last) => {
                    self.sound_until = self.clock + last as u64 + 1;
                    scanned = end;
                }
                None => return sleep,
            }
        }
    }

    /// Moves the clock past a block of `len` samples (after its last span).
    pub fn advance(&mut self, len: usize) {
        self.clock += len as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::Lcg;

    /// Per sample: whether the effect sleeps through it, and the samples before which it
    /// clears its state; the rule written out one sample at a time.
    fn reference(x: &[f32], quiet: u64) -> (Vec<bool>, Vec<usize>) {
        let (mut asleep, mut sound_until, mut clears) = (true, 0u64, Vec::new());
        let mut states = Vec::with_capacity(x.len());
        for (i, &v) in x.iter().enumerate() {
            if !asleep && i as u64 >= sound_until + quiet {
                asleep = true;
                clears.push(i);
            }
            if v != 0.0 {
                asleep = false;
                sound_until = i as u64 + 1;
            }
            states.push(asleep);
        }
        (states, clears)
    }

    /// The same through `Dormancy`, in blocks whose sizes cycle through `sizes`, each
    /// block cut at `cuts` (event positions) too.
    fn spans(x: &[f32], quiet: u64, sizes: &[usize], cut_every: usize) -> (Vec<bool>, Vec<usize>) {
        let mut d = Dormancy::new();
        let (mut states, mut clears) = (Vec::new(), Vec::new());
        let (mut start, mut b) = (0, 0);
        while start < x.len() {
            let end = (start + sizes[b % sizes.len()]).min(x.len());
            b += 1;
            let block = &x[start..end];
            let mut at = 0;
            while at < block.len() {
                let stop = (at + cut_every).min(block.len());
                while at < stop {
                    let span = d.next_span(&[block, block], at, stop, quiet);
                    assert!(span.range.start == at && span.range.end > at && span.range.end <= stop, "{span:?}");
                    if span.asleep {
                        assert!(block[span.range.clone()].iter().all(|&v| v == 0.0), "asleep over sound: {span:?}");
                    }
                    if span.clear {
                        clears.push(start + at);
                    }
                    states.extend(span.range.clone().map(|_| span.asleep));
                    at = span.range.end;
                }
            }
            d.advance(block.len());
            start = end;
        }
        (states, clears)
    }

    #[test]
    fn spans_follow_the_rule_sample_for_sample_for_any_block_sizes() {
        let mut rng = Lcg(3);
        let mut checked = 0;
        for case in 0..60 {
            // Bursts of sound (noise, single clicks) between silences of random lengths.
            let mut x = Vec::new();
            while x.len() < 6000 {
                let silence = (rng.next_f32().abs() * 700.0) as usize;
                x.extend(std::iter::repeat_n(0.0, silence));
                let sound = 1 + (rng.next_f32().abs() * 60.0) as usize;
                for k in 0..sound {
                    x.push(if case % 3 == 0 && k > 0 { 0.0 } else { rng.next_f32() });
                }
            }
            let quiet = [0u64, 1, 50, 333, 1000][case % 5];
            let want = reference(&x, quiet);
            for (sizes, cut) in [(&[64usize][..], 64usize), (&[512], 100), (&[1, 7, 300, 4096], 13), (&[4096], 4096)] {
                assert_eq!(
                    spans(&x, quiet, sizes, cut),
                    want,
                    "case {case}, quiet {quiet}, blocks {sizes:?}, cut {cut}"
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 240);
    }

    #[test]
    fn a_new_tracker_sleeps_and_wakes_at_the_first_sound() {
        let mut d = Dormancy::new();
        assert!(d.is_asleep());
        let x = [0.0f32, -0.0, 0.0, 0.25, 0.0];
        assert_eq!(d.next_span(&[&x[..]], 0, 5, 1), Span { range: 0..3, asleep: true, clear: false });
        assert_eq!(d.next_span(&[&x[..]], 3, 5, 1), Span { range: 3..5, asleep: false, clear: false });
        d.advance(5);
        // One silent sample after the sound has already passed: asleep at once, cleared.
        let silence = [0.0f32; 4];
        assert_eq!(d.next_span(&[&silence[..]], 0, 4, 1), Span { range: 0..4, asleep: true, clear: true });
        d.reset();
        assert_eq!(d, Dormancy::new());
    }
}
