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
//! a freshly reset effect (which also means the sidechain ducker's envelope starts from
//! zero, as in a new instance). Right after a reset it is dormant already (its state is
//! clear). [`trio_dsp::Dormancy`] finds both moments on exact samples by scanning the
//! input, so the output does not depend on how the host splits its blocks: offline and
//! real-time renders stay bit for bit the same. A block that ends dormant also declares
//! the engine asleep (`Block::set_asleep`): the framework then does not call it for
//! blocks of silent input with no events, and the dormancy clock catches up by
//! `Block::slept` when it next runs.
#![forbid(unsafe_code)]

pub mod echo;

use trio::engine::{Block, Engine, EngineContext, Event, Params, Tail};
use trio_dsp::Dormancy;
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
    /// Whether the input has been silent long enough for the effect to sleep (its state
    /// cleared, no DSP running) until the input sounds again.
    sleep: Dormancy,
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
        Self { echo, tempo: None, fresh: true, latency, tail, sleep: Dormancy::new() }
    }

    /// Renders samples `from..to` of the block, going dormant where the input has been
    /// silent long enough and waking where it sounds again. Returns whether the DSP ran.
    fn render(&mut self, block: &mut Block<'_, ()>, from: usize, to: usize) -> bool {
        let (main, sidechain, _) = block.parts();
        let n = main.len().min(CHANNELS);
        let mut ran = false;
        let mut at = from;
        while at < to {
            let span = self.sleep.next_span(&main[..n], at, to, self.echo.quiet_after());
            let (a, b) = (span.range.start, span.range.end);
            if span.clear {
                // Everything the effect holds is below -80 dB of what went in.
                self.echo.reset();
            }
            if span.asleep {
                // Silent input, silent output: nothing to run.
                silence_extra_channels(main, a, b);
            } else {
                if self.fresh {
                    self.echo.snap_delay();
                    self.fresh = false;
                }
                self.echo.process(main, sidechain, a, b);
                ran = true;
            }
            at = b;
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
        if self.sleep.is_asleep() {
            self.echo.snap_clear();
        }
    }
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
        // The state is clear: nothing sounds until the input does.
        self.sleep.reset();
    }

    fn process(&mut self, block: &mut Block<'_, ()>) {
        let len = block.len();
        // Blocks the framework skipped while this effect slept (see the end): silent
        // input, nothing run; only the dormancy clock moves on.
        self.sleep.advance(block.slept() as usize);
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
        self.sleep.advance(len);
        if !ran {
            // Dormant throughout: the input was silent and is the output.
            block.set_silent();
            if self.sleep.is_asleep() {
                // And it stays so until the input sounds or a parameter moves: the
                // framework need not call it for blocks of silence. A tempo change in
                // between is picked up on waking, when a dormant effect snaps to it.
                block.set_asleep();
            }
        }
        let tail = self.echo.tail_samples();
        if tail != self.tail {
            self.tail = tail;
            block.set_tail(Tail::Samples(tail));
        }
    }
}
