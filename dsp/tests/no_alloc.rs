//! Proves the no-allocation rule: every processor is constructed first, then
//! run for thousands of samples (and re-parameterised) under a global
//! allocator that counts allocations, reallocations and frees made by this
//! thread while counting is switched on. The count must be zero. Counts are kept per
//! thread, so tests that run at the same time do not see each other's events.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use trio_dsp::biquad::{Biquad, BiquadKind};
use trio_dsp::buffer;
use trio_dsp::delay::{DelayLine, Interpolation};
use trio_dsp::env::Adsr;
use trio_dsp::limiter::Limiter;
use trio_dsp::osc::{Oscillator, Waveform};
use trio_dsp::smooth::{OnePole, Smoother};
use trio_dsp::svf::{LowpassBlock, Svf, SvfMode, step_coefs};

thread_local! {
    /// Whether this thread's allocator events are counted. `const`
    /// initialised and without a destructor, so reading it never allocates.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    /// This thread's allocator events (alloc, realloc, dealloc) seen while counting.
    static EVENTS: Cell<usize> = const { Cell::new(0) };
}

fn note_event() {
    if COUNTING.with(|c| c.get()) {
        EVENTS.with(|e| e.set(e.get() + 1));
    }
}

/// `System`, counting the events of threads that switched counting on.
struct CountingAlloc;

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees hold; the counting touches only
// const thread-local `Cell`s, which do not allocate.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_event();
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_event();
        // SAFETY: forwarded unchanged; the caller upholds `alloc_zeroed`'s contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_event();
        // SAFETY: forwarded unchanged; `ptr` was allocated by `System` through
        // this allocator with `layout`, as the caller guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note_event();
        // SAFETY: forwarded unchanged; `ptr` was allocated by `System` through
        // this allocator with `layout`, as the caller guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Runs `f` with counting on and returns the number of allocator events.
fn count_events(f: impl FnOnce()) -> usize {
    let before = EVENTS.with(|e| e.get());
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    EVENTS.with(|e| e.get()) - before
}

/// Deterministic noise in `[-1, 1)`.
struct Lcg(u64);

impl Lcg {
    fn next_f32(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 40) as f64 / (1u64 << 23) as f64 - 1.0) as f32
    }
}

const SR: f32 = 48_000.0;
const BLOCK: usize = 256;
const BLOCKS: usize = 32; // 8192 samples per processor

#[test]
fn the_counter_sees_allocations() {
    let n = count_events(|| {
        let v: Vec<f32> = Vec::with_capacity(std::hint::black_box(16));
        std::hint::black_box(v);
    });
    assert_eq!(n, 2, "one allocation and one free");
}

#[test]
fn processing_does_not_allocate() {
    // Construction (may allocate).
    let mut oscs: Vec<Oscillator> =
        [Waveform::Saw, Waveform::Square, Waveform::Triangle, Waveform::Sine].map(Oscillator::new).to_vec();
    let mut adsr = Adsr::new(SR);
    let mut svf = Svf::new(SvfMode::LowPass);
    let mut biquad = Biquad::new(BiquadKind::Peaking, 1_000.0, 2.0, 6.0, SR);
    let mut delay = DelayLine::new(4_800);
    let mut smoother = Smoother::new(0.0, 480);
    let mut one_pole = OnePole::new(0.01, SR);
    let mut limiter = Limiter::new(480, 2);
    let mut lp_block = LowpassBlock::default();
    let mut seg_block = trio_dsp::env::SegmentBlock::default();
    let coefs = *Adsr::new(SR).coefs();
    let mut block_state = (0.0f32, 0.0f32);
    let mut rng = Lcg(1);
    let mut buf = vec![0.0f32; BLOCK];
    let mut left = vec![0.0f32; BLOCK];
    let mut right = vec![0.0f32; BLOCK];
    let mut scratch = vec![0.0f32; BLOCK];
    let mut sink = 0.0f32;
    let mut limited_ok = true;

    let events = count_events(|| {
        for b in 0..BLOCKS {
            // Parameter changes every block, including awkward values.
            let hz = 50.0 * (b as f32 + 1.0);
            for (i, o) in oscs.iter_mut().enumerate() {
                o.set_frequency(if b == 7 { f32::NAN } else { hz * (i as f32 + 1.0) }, SR);
                if b == 3 {
                    o.set_phase(-1.25);
                }
            }
            adsr.set(0.002, 0.01, 0.5, 0.02);
            match b % 8 {
                0 => adsr.gate_on(0.8),
                4 => adsr.gate_off(),
                6 => adsr.fade_out(),
                _ => {}
            }
            svf.set(hz * 10.0, 0.5 + b as f32, SR);
            svf.set_mode([SvfMode::LowPass, SvfMode::Bell, SvfMode::HighShelf, SvfMode::Notch][b % 4]);
            svf.set_gain_db(b as f32 - 10.0);
            let kind = [BiquadKind::LowPass, BiquadKind::AllPass, BiquadKind::LowShelf, BiquadKind::Peaking][b % 4];
            biquad.set(kind, hz * 5.0, 0.7 + b as f32 * 0.3, 6.0, SR);
            delay.set_interpolation(if b % 2 == 0 { Interpolation::Linear } else { Interpolation::Cubic });
            smoother.set_target(b as f32 / BLOCKS as f32);
            one_pole.set_target(1.0 - b as f32 / BLOCKS as f32);
            // Changing the lookahead re-sizes inside the preallocated rings.
            limiter.set([480, 10, 0, 240, 9999][b % 5], 0.5, 0.01, SR);

            for i in 0..BLOCK {
                let mut x = 0.0;
                for o in oscs.iter_mut() {
                    x += o.next_sample();
                }
                x *= adsr.next_sample();
                x = svf.process(x);
                let o = svf.process_all(x);
                x = biquad.process(x + 1e-3 * o.band);
                let d = delay.process(x, 1_000.5 + 3_000.0 * (i as f32 / BLOCK as f32));
                x += 0.5 * d + delay.read_integer(2);
                buf[i] = x * smoother.next_value() * one_pole.next_value();
                left[i] = 4.0 * rng.next_f32() + buf[i];
                right[i] = if i == 17 { f32::NAN } else { rng.next_f32() };
            }
            // The block forms (tables recomputed whenever the coefficients change).
            let fc = trio_dsp::svf::FilterControl {
                log2_cutoff: hz.log2(),
                env_octaves: 2.0,
                log2_min: 20f32.log2(),
                log2_max: (0.45 * SR).log2(),
                angle_scale: trio_dsp::svf::angle_scale(SR),
                k: trio_dsp::svf::resonance_to_k((b % 3) as f32 / 2.0),
            };
            let (m, q, d) = step_coefs(0.5, &fc);
            lp_block.prepare(m, q, d);
            seg_block.prepare(coefs.release().mul);
            for chunk in buf.chunks_exact(trio_dsp::BLOCK) {
                let (mut x, mut y) = ([0.0f32; trio_dsp::BLOCK], [0.0f32; trio_dsp::BLOCK]);
                x.copy_from_slice(chunk);
                block_state = lp_block.run(block_state.0, block_state.1, &x, &mut y, b % 17);
                seg_block.run(0.7, coefs.release(), &mut x);
                sink += y[0] + x[15];
            }
            // Block methods.
            oscs[0].fill(&mut scratch);
            adsr.fill(&mut scratch);
            svf.process_block(&mut buf);
            biquad.process_block(&mut buf);
            smoother.apply_gain(&mut buf);
            one_pole.apply_gain(&mut buf);
            limiter.process(&mut [&mut left[..], &mut right[..]]);
            limited_ok &= left.iter().chain(&right).all(|y| y.abs() <= 0.5 * (1.0 + 1e-6));
            let mut frame = [left[0], right[0]];
            limiter.process_frame(&mut frame);
            // Buffer operations.
            buffer::add(&mut scratch, &buf);
            buffer::add_scaled(&mut scratch, &left, 0.5);
            buffer::scale(&mut scratch, 0.25);
            buffer::ramp_gain(&mut scratch, 0.0, 1.0);
            buffer::mix(&mut buf, &left, &right, 0.3);
            buffer::copy(&mut right, &scratch);
            buffer::sanitize(&mut buf);
            sink += buffer::peak(&buf) + buffer::rms(&left) + buffer::db_to_gain(-6.0) + buffer::gain_to_db(0.5);
            sink += if buffer::is_silent(&right, 1e-9) { 1.0 } else { 0.0 };
            sink += trio_dsp::math::exp2_fast(0.3) + trio_dsp::math::sin_cos_fast(0.2).0;
            if b == BLOCKS - 1 {
                delay.clear();
                limiter.reset();
                buffer::clear(&mut scratch);
            }
        }
    });
    assert!(sink.is_finite());
    assert!(limited_ok, "limiter output above the ceiling");
    assert_eq!(events, 0, "allocator events during processing");
}
