//! The caller's side of a sleeping engine ([`Block::set_asleep`]).
//!
//! An engine that declares itself asleep promises that, until an event reaches it or its
//! input holds a non-zero sample, a block would leave its output silent and change
//! nothing in it but the time. Whatever calls the engine's `process` export (the bridge
//! in a host, [`crate::testing::Rig`] in a plugin's tests) keeps a [`SleepGate`] and asks
//! it before each block: a block that brings the sleeping engine nothing is answered in
//! its place (silent output, the sample clock, the transport for the control module, the
//! block statistics) without calling it, and the engine learns from [`Block::slept`] how
//! many samples went by when it next runs.
//!
//! What wakes it: a host event in the block, anything the control module queued for the
//! engine, a parameter value set since it fell asleep (the table's `values_epoch`), a
//! change of the host's tempo, time signature or play state (a tempo-synced effect's
//! tail follows the tempo), a reset or activation ([`SleepGate::wake`]) and, when the main
//! bus carries input (an effect's), any sample of the main input or the sidechain whose
//! bits are not all zero. A block the engine would refuse (longer than the setup's
//! largest, or without its channels) is passed on for it to refuse. The position moving
//! on with the transport does not wake it, nor does data the control module writes into
//! the plugin area.
//!
//! [`Block::set_asleep`]: crate::engine::Block::set_asleep
//! [`Block::slept`]: crate::engine::Block::slept

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::abi::{ProcessData, engine_state, status};
use crate::block::{SharedBlock, Transport};

/// Whether the engine sleeps, and the settings of the caller that skips its blocks.
/// Atomics, so a caller that hands out `&self` (the bridge) can keep one; the engine's
/// own state is read and written only by the thread processing, one at a time.
#[derive(Debug)]
pub struct SleepGate {
    /// The engine's last block declared it asleep.
    asleep: AtomicBool,
    /// The table's `values_epoch` read before the call that put it to sleep.
    epoch: AtomicU64,
    /// The host's tempo, time signature and play state of the block that put it to
    /// sleep ([`host_key`]).
    host: [AtomicU64; 2],
    /// Whether blocks of a sleeping engine may be answered (on unless switched off).
    allowed: AtomicBool,
    /// Whether the main bus carries input that wakes the engine (an effect's).
    main_input: AtomicBool,
    /// Blocks answered in the engine's place.
    slept_blocks: AtomicU64,
}

impl Default for SleepGate {
    fn default() -> Self {
        Self::new()
    }
}

/// What [`SleepGate::before`] hands back when the engine must be called: pass it to
/// [`SleepGate::after`] with the engine's status.
#[derive(Clone, Copy, Debug)]
#[must_use = "pass it to SleepGate::after once the engine has processed the block"]
pub struct Call {
    epoch: u64,
}

impl SleepGate {
    /// An awake engine, sleep allowed, a main bus that carries input.
    pub const fn new() -> Self {
        Self {
            asleep: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            host: [AtomicU64::new(0), AtomicU64::new(0)],
            allowed: AtomicBool::new(true),
            main_input: AtomicBool::new(true),
            slept_blocks: AtomicU64::new(0),
        }
    }

    /// Whether blocks a sleeping engine needs not see skip it (`true`, the default).
    /// `false` calls the engine for every block: for comparing the two, or while
    /// debugging an engine's claim to sleep.
    pub fn set_allowed(&self, allowed: bool) {
        // Relaxed: a setting, read by the processing thread at the next block.
        self.allowed.store(allowed, Ordering::Relaxed);
    }

    /// Whether the main bus carries the host's input (`true`, the default, an effect's):
    /// then a non-zero sample there wakes the engine. An instrument, whose main bus holds
    /// zeros, says `false` and saves the scan.
    pub fn set_main_input(&self, carries_input: bool) {
        // Relaxed: a setting, read by the processing thread at the next block.
        self.main_input.store(carries_input, Ordering::Relaxed);
    }

    /// Blocks answered in the sleeping engine's place so far.
    pub fn slept_blocks(&self) -> u64 {
        // Relaxed: a counter.
        self.slept_blocks.load(Ordering::Relaxed)
    }

    /// Forgets that the engine sleeps: call before its `reset` or `activate`, after which
    /// its next block runs.
    pub fn wake(&self) {
        // Relaxed: read and written by the thread that calls the engine, one at a time.
        self.asleep.store(false, Ordering::Relaxed);
    }

    /// Before calling the engine for `data` on `block`: if it sleeps and the block brings
    /// nothing that wakes it, answers the block in its place and returns `None` (do not
    /// call it). Otherwise clears `data.engine_state` and returns the [`Call`] to pass to
    /// [`SleepGate::after`].
    pub fn before(&self, block: &SharedBlock, data: &mut ProcessData) -> Option<Call> {
        // Relaxed: the engine's state is read and written by one thread at a time (the
        // caller serialises its calls); the epoch is a hint, ordered by the engine's own
        // Acquire read of it.
        if self.asleep.load(Ordering::Relaxed) && self.nothing_wakes(block, data) {
            self.answer(block, data);
            return None;
        }
        data.engine_state = 0;
        Some(Call { epoch: block.params.values_epoch.load(Ordering::Relaxed) })
    }

    /// After the engine processed the block of `call` and returned `code`: whether it
    /// declared itself asleep (and a faulted or failing engine never sleeps).
    pub fn after(&self, call: Call, data: &ProcessData, code: i32) {
        // Relaxed: as in `before`.
        let asleep =
            code == status::OK && data.engine_state & engine_state::ASLEEP != 0 && self.allowed.load(Ordering::Relaxed);
        self.asleep.store(asleep, Ordering::Relaxed);
        if asleep {
            self.epoch.store(call.epoch, Ordering::Relaxed);
            for (slot, value) in self.host.iter().zip(host_key(&data.transport)) {
                slot.store(value, Ordering::Relaxed);
            }
        }
    }

    /// Whether a block brings nothing that wakes a sleeping engine.
    fn nothing_wakes(&self, block: &SharedBlock, data: &ProcessData) -> bool {
        // Relaxed: as in `before`.
        let len = data.num_samples as usize;
        let host = host_key(&data.transport);
        if data.num_events > 0
            || !self.allowed.load(Ordering::Relaxed)
            || !block.to_engine.is_empty()
            || block.params.values_epoch.load(Ordering::Relaxed) != self.epoch.load(Ordering::Relaxed)
            || self.host.iter().zip(host).any(|(slot, value)| slot.load(Ordering::Relaxed) != value)
            || data.num_samples > block.header.max_block_size.load(Ordering::Relaxed)
            || (len > 0 && data.num_main > 0 && data.main.is_null())
        {
            return false;
        }
        let all_zero = |ptrs: *const *const f32, count: u32| {
            if ptrs.is_null() || len == 0 {
                return true;
            }
            // SAFETY: the caller's `ProcessData` holds `count` channel pointers, each null
            // or valid for `num_samples` floats (its documented contract).
            let ptrs = unsafe { core::slice::from_raw_parts(ptrs, count as usize) };
            // SAFETY: as above.
            unsafe { all_bits_zero(ptrs, len) }
        };
        let main_input = self.main_input.load(Ordering::Relaxed);
        (!main_input || all_zero(data.main.cast(), data.num_main)) && all_zero(data.sidechain, data.num_sidechain)
    }

    /// Answers a block in the sleeping engine's place: its output stays as it is (an
    /// instrument's main bus holds zeros, an effect's its silent input) and is reported
    /// silent; the sample clock, the transport and the statistics move on as the engine
    /// would have moved them.
    fn answer(&self, block: &SharedBlock, data: &mut ProcessData) {
        let n = u64::from(data.num_samples);
        data.silence_flags = crate::engine::all_channels(data.num_main as usize);
        // Relaxed: only the processing thread writes the clock (the engine, or this in its
        // place); the Release store below publishes it.
        let clock = block.header.sample_clock.load(Ordering::Relaxed);
        block.transport.publish(&Transport::of_host(clock, &data.transport));
        // Release: pairs with the control module's Acquire load, as the engine's own store.
        block.header.sample_clock.store(clock.wrapping_add(n), Ordering::Release);
        // Relaxed loads and stores: counters with one writer at a time (the processing
        // thread), as the engine's.
        let add = |counter: &AtomicU64, by: u64| {
            counter.store(counter.load(Ordering::Relaxed).wrapping_add(by), Ordering::Relaxed);
        };
        add(&block.stats.blocks_processed, 1);
        add(&block.stats.samples_processed, n);
        add(&self.slept_blocks, 1);
        // The meters read silence: the block that declared sleep may have ended a sound.
        // Relaxed: telemetry, as the engine's.
        let meters = &block.meters;
        for (peak, rms) in meters.peak.iter().zip(&meters.rms).take(data.num_main as usize) {
            peak.store(0.0, Ordering::Relaxed);
            rms.store(0.0, Ordering::Relaxed);
        }
    }
}

/// The host's tempo, time signature and play state, as the transport published for the
/// control module gives them (the position left out: it moves with every block).
fn host_key(transport: &crate::abi::TransportInfo) -> [u64; 2] {
    let t = Transport::of_host(0, transport);
    let sig = (u64::from(t.time_sig.0) << 32) | u64::from(t.time_sig.1);
    [t.tempo_bpm.to_bits(), (sig << 1) | u64::from(t.playing)]
}

crate::cpu::with_cpu_feature!(
    "avx2",
    /// Whether every sample of the channels `ptrs` (null ones skipped) is `+0.0`: all their
    /// bits zero, so `-0.0`, a denormal or a NaN wakes a sleeping engine too. A sleeping
    /// effect pays this per block for its whole input: in 256-bit vectors on a CPU with
    /// AVX2 (half the instructions of the baseline's 128-bit ones), with the same answer.
    ///
    /// # Safety
    /// Each non-null pointer is valid for reading `len` floats.
    unsafe fn all_bits_zero(ptrs: &[*const f32], len: usize) -> bool = all_bits_zero_of
);

/// [`all_bits_zero`] channel by channel ([`bits_or`]); the first with a bit set ends it.
///
/// # Safety
/// As for [`all_bits_zero`].
#[inline(always)]
unsafe fn all_bits_zero_of(ptrs: &[*const f32], len: usize) -> bool {
    // Plain loops (see `with_cpu_feature!`).
    for &p in ptrs {
        if p.is_null() {
            continue;
        }
        // SAFETY: non-null, and valid for `len` floats (the caller's promise).
        let channel = unsafe { core::slice::from_raw_parts(p, len) };
        if bits_or(channel) != 0 {
            return false;
        }
    }
    true
}

/// The bits of `channel` ORed together in 32 independent lanes (eight 128-bit vectors on
/// the baseline target, four 256-bit ones with AVX2), then its tail.
#[inline(always)]
fn bits_or(channel: &[f32]) -> u32 {
    const W: usize = 32;
    let mut acc = [0u32; W];
    let mut chunks = channel.chunks_exact(W);
    for chunk in &mut chunks {
        for (a, s) in acc.iter_mut().zip(chunk) {
            *a |= s.to_bits();
        }
    }
    let tail = chunks.remainder().iter().fold(0u32, |a, s| a | s.to_bits());
    acc.iter().fold(tail, |a, b| a | b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_is_every_bit_zero_at_any_length_and_position() {
        let both = |a: &[f32], b: &[f32], len: usize| {
            let ptrs = [a.as_ptr(), core::ptr::null(), b.as_ptr()];
            // SAFETY: each pointer is null or to `len` live floats.
            let (wide, base) = unsafe { (all_bits_zero(&ptrs, len), all_bits_zero_of(&ptrs, len)) };
            assert_eq!(wide, base, "the dispatched check and the baseline disagree at length {len}");
            wide
        };
        for len in [0, 1, 7, 8, 15, 16, 31, 32, 33, 63, 64, 65, 100, 511, 512, 513, 1024] {
            let silent = vec![0.0f32; len];
            assert!(both(&silent, &silent, len), "length {len}");
            for at in 0..len {
                for odd in [-0.0f32, f32::from_bits(1), 1e-30, -3.0, f32::NAN] {
                    let mut x = silent.clone();
                    x[at] = odd;
                    assert!(!both(&x, &silent, len), "first channel, length {len}, {odd:?} at {at}");
                    assert!(!both(&silent, &x, len), "last channel, length {len}, {odd:?} at {at}");
                }
            }
        }
        // SAFETY: no pointer to read.
        assert!(unsafe { all_bits_zero(&[], 64) }, "no channel");
    }
}
