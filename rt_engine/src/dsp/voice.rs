//! Voice state: hot per-sample state of a group of [`LANES`] voices as a
//! struct of arrays, cold per-voice bookkeeping, and the inner render loop.

use super::envelope::{Segment, SegmentBlock, Stage};
use super::filter::{self, FilterControl};
use super::osc::{self, Oscillator};
use super::{CONTROL_PERIOD, LANES, set_bits};
use trio_dsp::BLOCK;
use trio_dsp::svf::{LowpassBlock, LowpassPairs};

// A lane rendered on its own computes a control period as one block.
const _: () = assert!(CONTROL_PERIOD == BLOCK);

/// A read-only view of one voice, for metering and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct VoiceSnapshot {
    /// Whether the voice is sounding (including release and steal fade).
    pub active: bool,
    /// MIDI note number.
    pub note: u8,
    /// The host's note id, or -1.
    pub note_id: i32,
    /// Note-on velocity, `0..=1`.
    pub velocity: f32,
    /// Current envelope level times velocity gain, `0..=1`.
    pub level: f32,
    /// Samples rendered since the note started.
    pub age_samples: u64,
    /// Whether the voice is releasing (after note-off, or being stolen).
    pub releasing: bool,
}

/// A note waiting for its (stolen) voice to finish fading out.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct PendingNote {
    pub note: u8,
    pub velocity: f32,
    pub note_id: i32,
    pub serial: u64,
}

/// Bookkeeping of one voice; not touched by the per-sample loop.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct VoiceCtl {
    pub stage: Stage,
    pub note: u8,
    pub note_id: i32,
    pub velocity: f32,
    /// Synth sample clock when the note started sounding.
    pub start_clock: u64,
    /// Note-on sequence number (lower = older).
    pub serial: u64,
    /// Decay multiplier latched when the decay stage started.
    pub decay_mul: f32,
    /// Note to start once the steal fade is over.
    pub pending: Option<PendingNote>,
}

impl VoiceCtl {
    /// Whether the note is held (not releasing, not being stolen).
    pub fn is_held(&self) -> bool {
        matches!(self.stage, Stage::Attack | Stage::Decay)
    }
}

/// A group with at most this many active lanes is processed lane by lane (a voice alone
/// does not pay for the silent lanes of its vector); more, and all lanes go together. A
/// held lane alone costs about a fifth of a whole group, one whose envelope moves less.
pub(crate) const SPARSE_LANES: usize = 3;

/// Whether the lanes of `mask` are few enough to render on their own (at most
/// [`SPARSE_LANES`]): a table lookup, cheaper than counting the bits, which the baseline
/// x86-64 target does without `popcnt`.
#[inline(always)]
pub(crate) fn is_sparse(mask: u32) -> bool {
    const SPARSE: [bool; 1 << LANES] = {
        let mut t = [false; 1 << LANES];
        let mut m = 0;
        while m < t.len() {
            t[m] = (m as u32).count_ones() as usize <= SPARSE_LANES;
            m += 1;
        }
        t
    };
    SPARSE.get(mask as usize).copied().unwrap_or(false)
}

/// The block of one lane rendered on its own ([`Group::render_sparse`]): its tables, and
/// the block computed from the lane's anchor, which the later calls of the period read
/// (a host that splits a period into many calls pays for the block once).
// In this order (`repr(C)`, the sample arrays first): the compiled filter was seen to
// depend on the field order, by some 25 instructions a block.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(C)]
pub(crate) struct LaneBlock {
    /// Filter inputs, filter states `ic2` after each sample (only in a block not stepped),
    /// envelope levels and output of each sample from the anchor.
    x: [f32; BLOCK],
    ic2: [f32; BLOCK],
    env_out: [f32; BLOCK],
    out: [f32; BLOCK],
    filter: LowpassBlock,
    /// The anchor (`Group::anchor`) the block was computed from; 0 for none.
    serial: u64,
    env: SegmentBlock,
    /// The filter state after the whole block (`ic2` only in a stepped block).
    ic1_end: f32,
    ic2_end: f32,
    /// The filter of a stepped block, with which its state after some of its samples is
    /// computed anew.
    pairs: LowpassPairs,
    /// Whether the block was computed by stepping the filter (see [`LaneBlock::compute`]).
    stepped: bool,
}

/// What stands over a lane's block: the pitch, gain, envelope segment and filter
/// coefficients (changing any takes a new anchor).
#[derive(Clone, Copy, Debug)]
pub(crate) struct LaneSetup {
    step: u32,
    inv_inc: f32,
    amp: f32,
    seg: Segment,
    coefs: (f32, f32, f32),
}

/// A lane's state at a block's first sample: what each block changes for the next. Kept
/// apart from [`LaneSetup`] and passed by value: as fields of one struct, stored one by one
/// after a block and read back by the next in one wide load, it stalled that load (the
/// store could not be forwarded): 3.5 % of a lone held voice's time.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LaneState {
    phase: u32,
    env: f32,
    ic1: f32,
    ic2: f32,
}

impl LaneBlock {
    /// Computes the block's samples from the state `at` under `setup`, with the filter
    /// `stepped` through the samples ([`LowpassPairs`], two samples per step) or run as a
    /// block from its tables ([`LowpassBlock`]). A lane steps when its coefficients changed
    /// since its last block (an envelope in attack, decay or release, a moving cutoff):
    /// building tables for one block costs about three times the block. Held at a steady
    /// level, it runs from the tables, built once.
    #[inline(always)]
    fn compute<O: Oscillator>(&mut self, setup: &LaneSetup, at: LaneState, stepped: bool) {
        if stepped { self.compute_stepped::<O>(setup, at) } else { self.compute_tabled::<O>(setup, at) }
    }

    /// [`LaneBlock::compute`] with the filter run as a block from its tables (computed
    /// unless they are those of its coefficients already). Not inlined: one compiled form
    /// serves every caller (inlined into a larger loop, the compiler kept the inputs in
    /// registers and shuffled them into the filter's broadcasts, at twice the instructions).
    #[inline(never)]
    fn compute_tabled<O: Oscillator>(&mut self, setup: &LaneSetup, at: LaneState) {
        let (m, q, d) = setup.coefs;
        self.filter.prepare(m, q, d);
        self.stepped = false;
        self.compute_with::<O>(setup, at, |b, y| (b.ic2, b.ic1_end) = b.filter.outputs(at.ic1, at.ic2, &b.x, y));
    }

    /// [`LaneBlock::compute`] with the filter stepped through the samples.
    #[inline(never)]
    fn compute_stepped<O: Oscillator>(&mut self, setup: &LaneSetup, at: LaneState) {
        let (m, q, d) = setup.coefs;
        self.pairs = LowpassPairs::new(m, q, d);
        self.stepped = true;
        self.compute_with::<O>(setup, at, |b, y| (b.ic1_end, b.ic2_end) = b.pairs.run(at.ic1, at.ic2, &b.x, y));
    }

    /// The oscillator and envelope of the block from `at` under `setup`, the low-pass
    /// outputs `filter` writes from the inputs, and their product.
    #[inline(always)]
    fn compute_with<O: Oscillator>(
        &mut self,
        setup: &LaneSetup,
        at: LaneState,
        filter: impl FnOnce(&mut Self, &mut [f32; BLOCK]),
    ) {
        self.env.prepare(setup.seg.mul);
        O::fill(at.phase, setup.step, setup.inv_inc, setup.amp, &mut self.x);
        self.env.run(at.env, setup.seg, &mut self.env_out);
        let mut y = [0.0f32; BLOCK];
        filter(self, &mut y);
        for ((o, y), e) in self.out.iter_mut().zip(&y).zip(self.env_out.iter()) {
            *o = y * e;
        }
    }

    /// Whether the block was computed by stepping the filter.
    #[cfg(test)]
    pub fn stepped(&self) -> bool {
        self.stepped
    }

    /// The filter state `(ic1, ic2)` after the whole block.
    #[inline(always)]
    fn end(&self) -> (f32, f32) {
        (self.ic1_end, if self.stepped { self.ic2_end } else { self.ic2[BLOCK - 1] })
    }

    /// The filter state `(ic1, ic2)` after the first `n` samples (`1..=BLOCK`) of the
    /// block computed from the state `start`: the same operations that computed the block
    /// give the same values.
    #[inline(always)]
    fn state_after(&self, start: (f32, f32), n: usize) -> (f32, f32) {
        let n = n.clamp(1, BLOCK);
        if n == BLOCK {
            self.end()
        } else if self.stepped {
            self.pairs.run(start.0, start.1, &self.x[..n], &mut [0.0; BLOCK])
        } else {
            (self.filter.ic1_after(start.0, start.1, &self.x, n), self.ic2[n - 1])
        }
    }
}

/// A lane's part in the mix when lanes rendered on their own write whole periods straight
/// to the output ([`Group::render_lane_periods`]), as the mix writes it: the first lane
/// writes, the next ones add, and the last (or the only) one scales the sum,
/// `(sum + 0.0) * headroom * gain`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Part {
    Only,
    First,
    Middle,
    Last,
}

impl Part {
    /// The part of lane `k` (from 0) of `lanes`.
    pub fn of(k: usize, lanes: usize) -> Part {
        match (k == 0, k + 1 >= lanes) {
            (true, true) => Part::Only,
            (true, false) => Part::First,
            (false, false) => Part::Middle,
            (false, true) => Part::Last,
        }
    }

    /// Mixes the lane's samples `v` into `out`.
    #[inline(always)]
    fn mix(self, out: &mut [f32; BLOCK], v: &[f32; BLOCK], headroom: f32, gain: f32) {
        match self {
            // The mix adds the first lane to zeros (`0.0 + v`, which is `v` but for
            // `-0.0`, and the final `+ 0.0` turns that into `0.0` either way).
            Part::Only => out.iter_mut().zip(v).for_each(|(o, v)| *o = (v + 0.0) * headroom * gain),
            Part::First => *out = *v,
            Part::Middle => add_into(out, v),
            Part::Last => out.iter_mut().zip(v).for_each(|(o, v)| *o = (*o + v + 0.0) * headroom * gain),
        }
    }
}

/// Per-sample state of [`LANES`] voices. A free lane has `env == 0`, a
/// silent envelope segment, a stopped oscillator, a velocity gain of 0 and a
/// cleared filter, so it contributes exactly 0.0 (and its filter state stays
/// exactly 0, never decaying into denormals) when its group is rendered for
/// the other lanes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Group {
    /// Bit `l` set when lane `l` holds an active voice.
    pub active: u32,
    /// Oscillator phase, fixed point ([`osc::phase_step`]): it wraps by itself and
    /// advances exactly, so a block computes the phase `k` samples on as `phase + k step`
    /// bit for bit as stepping would.
    pub phase: [u32; LANES],
    /// Phase increment, fixed point.
    pub step: [u32; LANES],
    pub inc: [f32; LANES],
    pub inv_inc: [f32; LANES],
    pub env: [f32; LANES],
    pub env_mul: [f32; LANES],
    pub env_add: [f32; LANES],
    pub env_floor: [f32; LANES],
    pub ic1: [f32; LANES],
    pub ic2: [f32; LANES],
    /// Filter coefficients ([`filter::step_coefs`]).
    pub fm: [f32; LANES],
    pub fq: [f32; LANES],
    pub fd: [f32; LANES],
    /// The cutoff ([`filter::log2_cutoff_at`]) each lane's filter coefficients were
    /// computed for, and the synth's filter generation they were computed in: while both
    /// stand (a held note in its sustain, an envelope moving while the cutoff stays at a
    /// limit, no envelope amount; unchanged controls), the coefficients are not recomputed.
    pub coef_cutoff: [f32; LANES],
    pub coef_gen: u32,
    /// Velocity gain.
    pub amp: [f32; LANES],
    /// Each lane's anchor: where, in the current control period, a lane rendered on its
    /// own was last set up or changed (its phase, envelope and filter state there).
    /// [`Group::render_sparse`] computes each sample from it, so the samples do not depend
    /// on how the period is split. Anchors are numbered from 1 across the group's life (a
    /// lane's block is computed once per anchor); 0 means the lane takes a new one where it
    /// stands.
    pub anchor: [u64; LANES],
    pub anchors_taken: u64,
    pub anchor_pos: [u32; LANES],
    pub anchor_phase: [u32; LANES],
    pub anchor_env: [f32; LANES],
    pub anchor_ic1: [f32; LANES],
    pub anchor_ic2: [f32; LANES],
    /// Bit `l` set when lane `l`'s filter coefficients changed since its last block (set
    /// when a note starts, and by the control tick of a group rendered lane by lane): its
    /// next block steps the filter ([`LaneBlock::compute`]). Bit `l` of `anchor_stepped`:
    /// whether the block of its current anchor does.
    pub fresh: u32,
    pub anchor_stepped: u32,
    /// Block tables of the lanes rendered on their own, by rank among the active lanes
    /// (each checks that it was computed for its lane's coefficients).
    pub blocks: [LaneBlock; SPARSE_LANES],
}

impl Group {
    /// Sets the envelope segment of lane `l`.
    pub fn set_segment(&mut self, l: usize, s: Segment) {
        let l = l % LANES;
        self.anchor[l] = 0;
        self.env_mul[l] = s.mul;
        self.env_add[l] = s.add;
        self.env_floor[l] = s.floor;
    }

    /// Starts a note on lane `l`: phase 0, envelope 0 in attack, cleared
    /// filter, coefficients for the current control values.
    pub fn start(&mut self, l: usize, inc: f32, amp: f32, attack: Segment, fc: &FilterControl) {
        let l = l % LANES;
        self.active |= 1 << l;
        self.anchor[l] = 0;
        self.phase[l] = 0;
        self.set_inc(l, inc);
        self.env[l] = 0.0;
        self.set_segment(l, attack);
        self.ic1[l] = 0.0;
        self.ic2[l] = 0.0;
        self.set_coefs(l, 0.0, fc);
        // New to the note whatever the lane held before (the same coefficients left by an
        // earlier note must not make a note render otherwise than on a fresh synth).
        self.fresh |= 1 << l;
        self.amp[l] = amp;
    }

    /// Sets the phase increment of lane `l` (and its reciprocal, which the
    /// band-limited oscillators use), keeping its phase: the pitch changes
    /// from the next sample on, without a discontinuity.
    pub fn set_inc(&mut self, l: usize, inc: f32) {
        let l = l % LANES;
        self.anchor[l] = 0;
        self.inc[l] = inc;
        self.step[l] = osc::phase_step(inc);
        self.inv_inc[l] = osc::step_reciprocal(self.step[l]);
    }

    /// Makes every lane take a new anchor where it stands: at a period's start, after the
    /// group was rendered whole, and for a change that applies to all lanes from here on
    /// (the waveform).
    pub fn reanchor(&mut self) {
        self.anchor = [0; LANES];
    }

    /// Frees lane `l`, leaving it silent.
    pub fn free(&mut self, l: usize) {
        let l = l % LANES;
        self.active &= !(1 << l);
        self.anchor[l] = 0;
        self.phase[l] = 0;
        self.inc[l] = 0.0;
        self.step[l] = 0;
        self.inv_inc[l] = 0.0;
        self.env[l] = 0.0;
        self.set_segment(l, Segment::SILENT);
        self.ic1[l] = 0.0;
        self.ic2[l] = 0.0;
        self.amp[l] = 0.0;
    }

    /// Envelope level of lane `l`.
    pub fn env(&self, l: usize) -> f32 {
        self.env[l % LANES]
    }

    /// Velocity gain of lane `l`.
    pub fn amp(&self, l: usize) -> f32 {
        self.amp[l % LANES]
    }

    /// Computes lane `l`'s filter coefficients for envelope value `env`.
    #[inline(always)]
    fn set_coefs(&mut self, l: usize, env: f32, fc: &FilterControl) {
        let (m, q, d) = filter::step_coefs(env, fc);
        self.take_coefs(l, filter::log2_cutoff_at(env, fc), m, q, d);
    }

    /// Gives lane `l` the filter coefficients `(m, q, d)`, computed for the cutoff
    /// `cutoff`; they are new to its next block if they differ from those it has.
    #[inline(always)]
    fn take_coefs(&mut self, l: usize, cutoff: f32, m: f32, q: f32, d: f32) {
        let l = l % LANES;
        let same = [m, q, d].map(f32::to_bits) == [self.fm[l], self.fq[l], self.fd[l]].map(f32::to_bits);
        self.fresh |= u32::from(!same) << l;
        self.fm[l] = m;
        self.fq[l] = q;
        self.fd[l] = d;
        self.coef_cutoff[l] = cutoff;
        self.anchor[l] = 0;
    }

    /// Recomputes the filter coefficients of every active lane from its envelope, for the
    /// controls `fc` of filter generation `generation` (a free lane's input and state are
    /// exactly 0, so its coefficients do not matter; a lane gets fresh ones when it
    /// starts). A lane whose cutoff and generation are those its coefficients were
    /// computed for keeps them: they would come out the same.
    #[inline]
    pub fn update_filter(&mut self, fc: &FilterControl, generation: u32) {
        let same_controls = self.coef_gen == generation;
        self.coef_gen = generation;
        if !is_sparse(self.active) {
            self.update_filter_whole(fc, same_controls);
            return;
        }
        let mut stale = 0u32;
        for l in set_bits::<LANES>(self.active) {
            let cutoff = filter::log2_cutoff_at(self.env[l], fc);
            if !(same_controls && cutoff.to_bits() == self.coef_cutoff[l].to_bits()) {
                stale |= 1 << l;
            }
        }
        // The lanes of each half that holds a stale one at once, in one vector (the same
        // operations as one lane alone, so the same values, at about the cost of one).
        for half in 0..2 {
            let lanes = (stale >> (4 * half)) & 0xF;
            if lanes == 0 {
                continue;
            }
            let env: [f32; 4] = core::array::from_fn(|j| self.env[4 * half + j]);
            let (m, q, d) = all_coefs(&env, fc);
            for j in set_bits::<4>(lanes) {
                self.take_coefs(4 * half + j, filter::log2_cutoff_at(env[j], fc), m[j], q[j], d[j]);
            }
        }
    }

    /// [`Group::update_filter`] of a group where most lanes sound: all lanes at once, which
    /// vectorises.
    #[inline(never)]
    fn update_filter_whole(&mut self, fc: &FilterControl, same_controls: bool) {
        let cutoff = self.env.map(|e| filter::log2_cutoff_at(e, fc));
        if same_controls && (0..LANES).all(|l| cutoff[l].to_bits() == self.coef_cutoff[l].to_bits()) {
            return;
        }
        // A group rendered whole has no blocks: `fresh` is left as it is.
        (self.fm, self.fq, self.fd) = all_coefs(&self.env, fc);
        self.coef_cutoff = cutoff;
        self.anchor = [0; LANES];
    }

    /// Renders `out.len()` samples of the active lanes only, one lane at a time, from
    /// position `pos` of the control period on (the samples must not cross the period's
    /// end), adding each lane's output into `out`.
    ///
    /// Each lane computes its samples as one block from its anchor, the point in the period
    /// where it was last set up (or the period's start): fixed-point oscillator phases
    /// `anchor + k step` (exactly the phases stepping gives), envelope levels by
    /// [`SegmentBlock`] and filter outputs by [`LowpassBlock`], independently of one
    /// another, so a voice alone uses the vector across time instead of one lane of it (or,
    /// for a lane whose coefficients are new, by [`LowpassPairs`], two samples per step). The results equal those of [`Group::render`]
    /// up to rounding (test `sparse_groups_render_like_whole_groups`) and do not depend on
    /// how the period is split into calls.
    #[inline(always)]
    pub fn render_sparse<O: Oscillator>(&mut self, pos: usize, out: &mut [f32]) {
        if out.is_empty() {
            return;
        }
        if pos == 0 {
            self.reanchor();
        }
        for (rank, l) in set_bits::<LANES>(self.active).enumerate() {
            if self.anchor[l] == 0 {
                self.anchors_taken += 1;
                self.anchor[l] = self.anchors_taken;
                self.anchor_pos[l] = pos as u32;
                self.anchor_phase[l] = self.phase[l];
                self.anchor_env[l] = self.env[l];
                self.anchor_ic1[l] = self.ic1[l];
                self.anchor_ic2[l] = self.ic2[l];
                self.anchor_stepped = (self.anchor_stepped & !(1 << l)) | (self.fresh & (1 << l));
                self.fresh &= !(1 << l);
            }
            // Samples `skip..n` of the block from the anchor are this call's.
            let skip = pos.saturating_sub(self.anchor_pos[l] as usize).min(BLOCK - 1);
            let n = (skip + out.len()).min(BLOCK);
            let (phase, step) = (self.anchor_phase[l], self.step[l]);
            let setup = self.lane_setup(l);
            let at = LaneState { phase, env: self.anchor_env[l], ic1: self.anchor_ic1[l], ic2: self.anchor_ic2[l] };
            let block = &mut self.blocks[rank % SPARSE_LANES];
            if block.serial != self.anchor[l] {
                // The lane's coefficients, segment, pitch and gain stand while its anchor
                // does (changing any takes a new anchor).
                block.serial = self.anchor[l];
                block.compute::<O>(&setup, at, self.anchor_stepped & (1 << l) != 0);
            }
            if let (Ok(whole), 0) = (<&mut [f32; BLOCK]>::try_from(&mut *out), skip) {
                // The whole period in one call (the common case): a fixed-length loop.
                add_into(whole, &block.out);
            } else {
                add_into(out, &block.out[skip..n]);
            }
            self.phase[l] = phase.wrapping_add(step.wrapping_mul(n as u32));
            self.env[l] = block.env_out[n - 1];
            (self.ic1[l], self.ic2[l]) = block.state_after((at.ic1, at.ic2), n);
        }
    }

    /// Renders lane `l` (of rank `rank` among the group's active lanes) over the whole
    /// control periods of `out` (its length a multiple of [`BLOCK`]) from where it stands,
    /// mixing it into `out` as its `part` says. The caller guarantees that no control tick
    /// falls inside (it would change nothing) and that every lane of the mix is rendered
    /// this way, in the order the mix adds them. Bit for bit what [`Group::render_sparse`]
    /// period by period followed by the mix gives (the same block computations, without
    /// the anchor bookkeeping a period split into calls needs, and without the mix buffer
    /// in between): a few voices pay for little but their own samples.
    #[inline(always)]
    pub fn render_lane_periods<O: Oscillator>(
        &mut self,
        l: usize,
        rank: usize,
        part: Part,
        headroom: f32,
        gain: f32,
        out: &mut [f32],
    ) {
        let l = l % LANES;
        // Neither the anchor nor the block's samples are this period's: a later call takes
        // a new anchor and computes anew (the block's tables stay, keyed by coefficients).
        self.anchor[l] = 0;
        let setup = self.lane_setup(l);
        let mut at = self.lane_state(l);
        let stepped = self.fresh & (1 << l) != 0;
        self.fresh &= !(1 << l);
        let block = &mut self.blocks[rank % SPARSE_LANES];
        block.serial = 0;
        let mut periods = out.chunks_exact_mut(BLOCK).filter_map(|o| <&mut [f32; BLOCK]>::try_from(o).ok());
        let advance = |at: &mut LaneState, block: &LaneBlock| {
            at.phase = at.phase.wrapping_add(setup.step.wrapping_mul(BLOCK as u32));
            at.env = block.env_out[BLOCK - 1];
            (at.ic1, at.ic2) = block.end();
        };
        if stepped && let Some(out) = periods.next() {
            block.compute_stepped::<O>(&setup, at);
            part.mix(out, &block.out, headroom, gain);
            advance(&mut at, block);
        }
        // The periods after the first have idle ticks: no new coefficients, no stepping.
        for out in periods {
            block.compute_tabled::<O>(&setup, at);
            part.mix(out, &block.out, headroom, gain);
            advance(&mut at, block);
        }
        self.phase[l] = at.phase;
        self.env[l] = at.env;
        self.ic1[l] = at.ic1;
        self.ic2[l] = at.ic2;
    }

    /// What stands over lane `l`'s blocks now.
    #[inline(always)]
    fn lane_setup(&self, l: usize) -> LaneSetup {
        let l = l % LANES;
        LaneSetup {
            step: self.step[l],
            inv_inc: self.inv_inc[l],
            amp: self.amp[l],
            seg: Segment { mul: self.env_mul[l], add: self.env_add[l], floor: self.env_floor[l] },
            coefs: (self.fm[l], self.fq[l], self.fd[l]),
        }
    }

    /// Where lane `l` stands now.
    #[inline(always)]
    fn lane_state(&self, l: usize) -> LaneState {
        let l = l % LANES;
        LaneState { phase: self.phase[l], env: self.env[l], ic1: self.ic1[l], ic2: self.ic2[l] }
    }

    /// Renders `acc.len()` samples of all lanes, adding lane `l` of each
    /// output frame into `acc[i][l]`.
    #[inline(always)]
    pub fn render<O: Oscillator>(&mut self, acc: &mut [[f32; LANES]]) {
        let mut phase = self.phase;
        let mut env = self.env;
        let mut ic1 = self.ic1;
        let mut ic2 = self.ic2;
        let step = self.step;
        let inv_inc = self.inv_inc;
        let env_mul = self.env_mul;
        let env_add = self.env_add;
        let env_floor = self.env_floor;
        let fm = self.fm;
        let fq = self.fq;
        let fd = self.fd;
        let amp = self.amp;
        for frame in acc.iter_mut() {
            for l in 0..LANES {
                // Velocity gain before the (linear) filter: a free lane has
                // gain 0, so its filter input and state stay exactly 0.
                let x = O::sample(osc::phase_to_unit(phase[l]), inv_inc[l]) * amp[l];
                phase[l] = phase[l].wrapping_add(step[l]);
                let e = Segment::step(env[l], env_mul[l], env_add[l], env_floor[l]);
                env[l] = e;
                let y = filter::lowpass_step(x, &mut ic1[l], &mut ic2[l], fm[l], fq[l], fd[l]);
                frame[l] += y * e;
            }
        }
        self.phase = phase;
        self.env = env;
        self.ic1 = ic1;
        self.ic2 = ic2;
        self.reanchor();
    }
}

/// The filter coefficients ([`filter::step_coefs`]) for each of the envelope values `env`,
/// as three arrays (which vectorises).
#[inline(always)]
fn all_coefs<const N: usize>(env: &[f32; N], fc: &FilterControl) -> ([f32; N], [f32; N], [f32; N]) {
    let (mut m, mut q, mut d) = ([0.0; N], [0.0; N], [0.0; N]);
    for l in 0..N {
        (m[l], q[l], d[l]) = filter::step_coefs(env[l], fc);
    }
    (m, q, d)
}

/// Adds `src` into `out`, sample by sample. Inlined, so a caller that passes a whole
/// period gets a loop of fixed length.
#[inline(always)]
fn add_into(out: &mut [f32], src: &[f32]) {
    for (o, v) in out.iter_mut().zip(src) {
        *o += v;
    }
}
