//! The layout hash: a compile-time fingerprint of every `#[repr(C)]` type that crosses a
//! library boundary or lives in the shared block.
//!
//! It folds (FNV-1a, 64-bit) each type's name, size and alignment and each field's name
//! and offset. Every module stores it in its descriptor and the bridge stores it in the
//! block header; a module built against another layout is refused at load with both
//! values in the message, instead of being discovered as memory corruption.

use core::mem::{align_of, offset_of, size_of};

use crate::abi::{AreaLayout, Event, ModuleDescriptor, ProcessData, TickResult, TransportInfo};
use crate::block::{
    BlockHeader, DEF_WORDS, FROM_ENGINE_CAPACITY, MAX_PARAMS, MAX_VOICES, MIDI_CONTROLLERS, Meters, PARAM_INDEX_LEN,
    PanicNote, ParamSlot, ParamTable, SharedBlock, Statistics, TO_ENGINE_CAPACITY, TransportCell, VALUE_NAMES_BYTES,
    VoiceState,
};
use crate::ring::SpscRing;

pub(crate) const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

pub(crate) const fn fold(mut h: u64, value: u64) -> u64 {
    let bytes = value.to_le_bytes();
    let mut i = 0;
    while i < 8 {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(FNV_PRIME);
        i += 1;
    }
    h
}

pub(crate) const fn fold_str(mut h: u64, s: &str) -> u64 {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(FNV_PRIME);
        i += 1;
    }
    h
}

/// Folds a type's name, size, alignment, and the name and offset of each listed field.
macro_rules! fold_type {
    ($h:expr, $t:ty $(, $field:ident)* $(,)?) => {{
        let mut h = fold_str($h, stringify!($t));
        h = fold(h, size_of::<$t>() as u64);
        h = fold(h, align_of::<$t>() as u64);
        $(
            h = fold_str(h, stringify!($field));
            h = fold(h, offset_of!($t, $field) as u64);
        )*
        h
    }};
}

/// The layout hash of this build. See the module docs.
pub const LAYOUT_HASH: u64 = {
    let mut h = FNV_OFFSET;
    h = fold_type!(
        h,
        BlockHeader,
        magic,
        abi_version,
        process_mode,
        layout_hash,
        size,
        instance_id,
        sample_rate,
        max_block_size,
        state_flags,
        sample_clock,
        control_lookahead_samples,
        latency_samples,
        tail_samples,
        main_channels,
        sidechain_channels,
        reserved,
        scheduled_until,
        to_engine_last,
        area_hash,
        area_size,
        area_offset
    );
    h = fold_type!(h, TransportCell);
    h = fold(h, DEF_WORDS as u64);
    h = fold(h, MAX_PARAMS as u64);
    h = fold(h, PARAM_INDEX_LEN as u64);
    h = fold(h, VALUE_NAMES_BYTES as u64);
    h = fold(h, MIDI_CONTROLLERS as u64);
    h = fold(h, MAX_VOICES as u64);
    h = fold_type!(h, ParamSlot, value, id, defined);
    h = fold_type!(h, ParamTable, values_epoch);
    h = fold_type!(h, VoiceState, active, note, channel, note_id, velocity, level, age);
    h = fold_type!(h, Meters, peak, rms, active_voices);
    h = fold_type!(
        h,
        Statistics,
        blocks_processed,
        samples_processed,
        worst_process_ns,
        last_process_ns,
        deadline_misses,
        events_dropped,
        alloc_violations,
        engine_panics,
        engine_faulted,
        reloads,
        reload_failures,
        control_errors,
        late_events,
        nonfinite_blocks,
        control_ticks,
        runaway_blocks,
        panic_note
    );
    h = fold_type!(h, PanicNote);
    h = fold_type!(h, SpscRing<Event, TO_ENGINE_CAPACITY>);
    h = fold_type!(h, SpscRing<Event, FROM_ENGINE_CAPACITY>);
    h = fold_type!(h, SharedBlock, header, transport, stats, meters, params, voices, to_engine, from_engine);
    h = fold_type!(h, Event, time, kind, index, value, note_id, channel);
    h = fold_type!(
        h,
        TransportInfo,
        tempo_bpm,
        ppq_position,
        bar_start_ppq,
        time_sig_numerator,
        time_sig_denominator,
        flags,
        reserved
    );
    h = fold_type!(
        h,
        ProcessData,
        num_samples,
        num_main,
        main,
        num_sidechain,
        num_events,
        sidechain,
        events,
        transport,
        process_mode,
        engine_state,
        silence_flags
    );
    h = fold_type!(h, TickResult, next_tick_us, scheduled_until);
    h = fold_type!(h, AreaLayout, hash, size, align);
    h = fold_type!(
        h,
        ModuleDescriptor,
        magic,
        abi_version,
        kind,
        layout_hash,
        alloc_policy,
        reserved,
        area,
        name,
        version
    );
    h
};

// Compile-time layout assertions: a change to any of these types must be deliberate
// (update the figure here, bump `ABI_VERSION`, note it in the changelog).
const _: () = {
    assert!(size_of::<BlockHeader>() == 128);
    assert!(offset_of!(BlockHeader, sample_clock) == 56);
    assert!(offset_of!(BlockHeader, scheduled_until) == 88);
    assert!(size_of::<TransportCell>() == 56);
    assert!(size_of::<ParamSlot>() == 16 + 8 * DEF_WORDS);
    assert!(offset_of!(ParamSlot, id) == 8);
    assert!(size_of::<VoiceState>() == 32);
    assert!(offset_of!(VoiceState, age) == 24);
    assert!(size_of::<Meters>() == 24);
    assert!(size_of::<Statistics>() == 128 + 8 + 8 * 32);
    assert!(size_of::<Event>() == 32);
    assert!(offset_of!(Event, value) == 16);
    assert!(offset_of!(Event, note_id) == 24);
    assert!(size_of::<TransportInfo>() == 40);
    assert!(size_of::<ProcessData>() == 96);
    assert!(offset_of!(ProcessData, silence_flags) == 88);
    assert!(size_of::<TickResult>() == 16);
    assert!(size_of::<AreaLayout>() == 24);
    assert!(size_of::<ModuleDescriptor>() == 120);
    assert!(align_of::<SharedBlock>() == 64);
    assert!(offset_of!(SharedBlock, transport) == 128);
    // The block with a thousand parameters stays well under a megabyte.
    assert!(size_of::<SharedBlock>() < 512 * 1024);
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_nonzero_and_stable_within_a_build() {
        assert_ne!(LAYOUT_HASH, 0);
        let d = crate::abi::ModuleDescriptor::new(1, 1, AreaLayout::default(), "x", "y");
        assert_eq!(LAYOUT_HASH, d.layout_hash);
    }

    #[test]
    fn block_fits_a_few_pages() {
        let size = size_of::<SharedBlock>();
        assert!(size < 512 * 1024, "block is {size} bytes");
    }
}
