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
#![forbid(unsafe_code)]

pub mod echo;

use trio::engine::{Block, Engine, EngineContext, Event, Params, Tail};
use trio_echo_common::{delay_seconds, id};

use crate::echo::{Echo, EchoParams};

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
        Self { echo, tempo: None, fresh: true, latency, tail }
    }

    fn render(&mut self, block: &mut Block<'_, ()>, from: usize, to: usize) {
        if self.fresh {
            self.echo.snap_delay();
            self.fresh = false;
        }
        let (main, sidechain, _) = block.parts();
        self.echo.process(main, sidechain, from, to);
    }

    /// Applies the current parameter values; reports a new latency.
    fn apply(&mut self, block: &mut Block<'_, ()>) {
        if self.echo.set_params(&echo_params(block.params(), self.tempo)) {
            self.latency = self.echo.latency() as u32;
            block.set_latency(self.latency);
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
    }

    fn process(&mut self, block: &mut Block<'_, ()>) {
        let len = block.len();
        // The tempo may move from block to block: resolve the delay time anew.
        self.tempo = block.transport().tempo();
        self.apply(block);
        let mut pos = 0;
        while let Some(timed) = block.next_event() {
            if timed.offset > pos {
                self.render(block, pos, timed.offset);
                pos = timed.offset;
            }
            if let Event::Param { .. } = timed.event {
                self.apply(block);
            }
        }
        if pos < len {
            self.render(block, pos, len);
        }
        let tail = self.echo.tail_samples();
        if tail != self.tail {
            self.tail = tail;
            block.set_tail(Tail::Samples(tail));
        }
    }
}
