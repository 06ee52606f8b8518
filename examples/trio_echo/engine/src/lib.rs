//! TrioEcho's engine: a tempo-synced stereo delay with filtered feedback, a sidechain
//! ducker and a lookahead limiter ([`echo::Echo`]), driven by the SDK's blocks.
//!
//! Every parameter change is applied at its sample (the block is rendered up to each
//! event, then the event applied). The delay time is resolved from the host's tempo at
//! the start of each block and at every parameter change. The limiter's lookahead is the
//! plugin's latency: reported when the engine is created and activated (from the current
//! parameter values, before anything is processed) and whenever the Lookahead parameter
//! changes it. The tail (the repeats decaying to -80 dB, plus the latency) is reported
//! likewise and whenever it changes. Nothing here allocates after `activate`.
//!
//! An effect fed silence should cost next to nothing. Once the input has been exactly
//! silent for [`Echo::quiet_after`] samples (the repeats are below -80 dB of what went
//! in), the engine clears the effect's state and goes *dormant*: it runs no DSP and
//! reports its blocks silent until the first non-zero input sample, where it wakes up as
//! a freshly reset effect. Right after a reset it is dormant already (its state is
//! clear). Both moments fall on exact samples found by scanning the input
//! ([`trio_dsp::buffer::first_sound`], [`trio_dsp::buffer::last_sound`]), so the output
//! does not depend on how the host splits its blocks: offline and real-time renders stay
//! bit for bit the same.
#![forbid(unsafe_code)]

pub mod echo;

use trio::engine::{Block, Engine, EngineContext, Event, Params, Tail};
use trio_dsp::buffer::{first_sound, last_sound};
use trio_echo_common::{delay_seconds, id};

use crate::echo::{CHANNELS, Echo, EchoParams};

/// The engine of one TrioEcho instance.
pub struct EchoEngine {
    echo: Echo,
    /// The host's tempo as of the current block.
    tempo: Option<f64>,
    /// Whether nothing has been processed since the last reset: the first block jumps to
    /// its delay time instead of gliding there from the free time.
    fresh: bool,
    /// The latency and tail last reported.
    latency: u32,
    tail: u32,
    /// Samples processed since the last reset, at the start of the current block.
    clock: u64,
    /// The clock just after the last non-zero input sample.
    sound_until: u64,
    /// The input has been silent long enough: the state is cleared and no DSP runs until
    /// the input sounds again.
    dormant: bool,
}

trio::export_engine!(EchoEngine);

/// The effect's settings from the parameters' plain values and the host's tempo.
pub fn echo_params(p: &Params, tempo: Option<f64>) -> EchoParams {
    let plain = |id: u32| p.plain(id) as f32;
    EchoParams {
        mix: plain(id::MIX),
        delay_s: delay_seconds(p.is_on(id::SYNC), p.plain(id::TIME), p.index(id::DIVISION), tempo),
        feedback: plain(id::FEEDBACK),
        tone_hz: plain(id::TONE),
        low_cut_hz: plain(id::LOW_CUT),
        duck: plain(id::DUCK),
        duck_threshold_db: plain(id::DUCK_THRESHOLD),
        duck_release_s: plain(id::DUCK_RELEASE),
        ceiling_db: plain(id::CEILING),
        lookahead_s: p.plain(id::LOOKAHEAD),
        bypass: p.is_on(id::BYPASS),
    }
}

impl EchoEngine {
    /// A new effect at the context's sample rate with the current parameter values;
    /// reports its latency and tail.
    fn build(ctx: &mut EngineContext<'_, ()>) -> Self {
        let mut echo = Echo::new(ctx.sample_rate());
        echo.set_params(&echo_params(ctx.params(), None));
        echo.reset();
        let latency = echo.latency() as u32;
        let tail = echo.tail_samples();
        ctx.set_latency(latency);
        ctx.set_tail(Tail::Samples(tail));
        Self { echo, tempo: None, fresh: true, latency, tail, clock: 0, sound_until: 0, dormant: true }
    }

    /// Renders samples `from..to` of the block, going dormant where the input has been
    /// silent long enough and waking where it sounds again. Returns whether the DSP ran.
    fn render(&mut self, block: &mut Block<'_, ()>, from: usize, to: usize) -> bool {
        let clock = self.clock;
        let (main, sidechain, _) = block.parts();
        let n = main.len().min(CHANNELS);
        let mut ran = false;
        let mut at = from;
        while at < to {
            if self.dormant {
                // Silent input gives silent output: nothing to run until the input sounds.
                let Some(wake) = first_sound_in(&main[..n], at, to) else {
                    silence_extra_channels(main, at, to);
                    break;
                };
                silence_extra_channels(main, at, wake);
                self.dormant = false;
                self.sound_until = clock + wake as u64 + 1;
                at = wake;
                continue;
            }
            // Where the input will have been silent for `quiet` samples, unless it sounds
            // before: follow the last sound up to that point until it stays silent.
            let quiet = self.echo.quiet_after();
            let mut scanned = at;
            let sleep = loop {
                let sleep = self.sound_until.saturating_add(quiet).saturating_sub(clock).max(at as u64);
                let end = sleep.min(to as u64) as usize;
                match last_sound_in(&main[..n], scanned, end) {
                    Some(last) => {
                        self.sound_until = clock + last as u64 + 1;
                        scanned = end;
                    }
                    None => break sleep,
                }
            };
            let until = sleep.min(to as u64) as usize;
            if until > at {
                if self.fresh {
                    self.echo.snap_delay();
                    self.fresh = false;
                }
                self.echo.process(main, sidechain, at, until);
                ran = true;
            }
            if sleep <= to as u64 {
                // Everything the effect holds is below -80 dB of what went in: clear it.
                self.echo.reset();
                self.dormant = true;
            }
            at = until;
        }
        ran
    }

    /// Applies the current parameter values; reports a new latency. A dormant effect
    /// jumps to the new values: nothing sounds that a glide would be heard in.
    fn apply(&mut self, block: &mut Block<'_, ()>) {
        if self.echo.set_params(&echo_params(block.params(), self.tempo)) {
            self.latency = self.echo.latency() as u32;
            block.set_latency(self.latency);
        }
        if self.dormant {
            self.echo.snap_clear();
        }
    }
}

/// The first sample in `from..to` where any of `channels` is not zero.
fn first_sound_in(channels: &[&mut [f32]], from: usize, to: usize) -> Option<usize> {
    channels.iter().filter_map(|c| c.get(from..to).and_then(first_sound)).min().map(|i| from + i)
}

/// The last sample in `from..to` where any of `channels` is not zero.
fn last_sound_in(channels: &[&mut [f32]], from: usize, to: usize) -> Option<usize> {
    channels.iter().filter_map(|c| c.get(from..to).and_then(last_sound)).max().map(|i| from + i)
}

/// Zeros samples `from..to` of the channels beyond the ones the effect processes.
fn silence_extra_channels(main: &mut [&mut [f32]], from: usize, to: usize) {
    for extra in main.iter_mut().skip(CHANNELS) {
        if let Some(s) = extra.get_mut(from..to) {
            s.fill(0.0);
        }
    }
}

impl Engine for EchoEngine {
    type Area = ();

    fn new(ctx: &mut EngineContext<'_, ()>) -> Self {
        Self::build(ctx)
    }

    fn activate(&mut self, ctx: &mut EngineContext<'_, ()>) {
        // The delay lines and the limiter are sized for the sample rate: allocated here.
        *self = Self::build(ctx);
    }

    fn reset(&mut self) {
        self.echo.reset();
        self.fresh = true;
        self.clock = 0;
        self.sound_until = 0;
        // The state is clear: nothing sounds until the input does.
        self.dormant = true;
    }

    fn process(&mut self, block: &mut Block<'_, ()>) {
        let len = block.len();
        // The tempo may move from block to block: resolve the delay time anew.
        self.tempo = block.transport().tempo();
        self.apply(block);
        let mut pos = 0;
        let mut ran = false;
        while let Some(timed) = block.next_event() {
            if timed.offset > pos {
                ran |= self.render(block, pos, timed.offset);
                pos = timed.offset;
            }
            if let Event::Param { .. } = timed.event {
                self.apply(block);
            }
        }
        if pos < len {
            ran |= self.render(block, pos, len);
        }
        self.clock += len as u64;
        if !ran && self.dormant {
            // Dormant throughout: the input was silent and is the output.
            block.set_silent();
        }
        let tail = self.echo.tail_samples();
        if tail != self.tail {
            self.tail = tail;
            block.set_tail(Tail::Samples(tail));
        }
    }
}
