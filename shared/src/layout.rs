//! The layout hash: a compile-time fingerprint of every `#[repr(C)]` type that crosses a
//! library boundary or lives in the shared block.
//!
//! It folds (FNV-1a, 64-bit) each type's name, size and alignment and each field's name
//! and offset. Every module stores it in its descriptor and the bridge stores it in the
//! block header; a module built against another layout is refused at load with both
//! values in the message, instead of being discovered as memory corruption.

use core::mem::{align_of, offset_of, size_of};

use crate::abi::{Event, ModuleDescriptor, ParamInfo, ProcessData};
use crate::block::{
    ArpArea, ArpCursor, ArpPendingOff, BlockHeader, FROM_ENGINE_CAPACITY, HeldKeysCell, MAX_ARP_PENDING_OFFS,
    MAX_HELD_KEYS, Meters, ParamSlot, SharedBlock, Statistics, TO_ENGINE_CAPACITY, TransportCell, VoiceState,
};
use crate::ring::SpscRing;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

const fn fold(mut h: u64, value: u64) -> u64 {
    let bytes = value.to_le_bytes();
    let mut i = 0;
    while i < 8 {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(FNV_PRIME);
        i += 1;
    }
    h
}

const fn fold_str(mut h: u64, s: &str) -> u64 {
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
        param_count,
        layout_hash,
        size,
        instance_id,
        sample_rate,
        max_block_size,
        state_flags,
        sample_clock,
        control_lookahead_samples,
        reserved
    );
    h = fold_type!(h, TransportCell);
    h = fold_type!(h, ParamSlot, value, flags, defined);
    h = fold_type!(h, VoiceState, active, note, velocity, level, age);
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
        control_errors
    );
    h = fold_type!(h, SpscRing<Event, TO_ENGINE_CAPACITY>);
    h = fold_type!(h, SpscRing<Event, FROM_ENGINE_CAPACITY>);
    h = fold(h, MAX_HELD_KEYS as u64);
    h = fold(h, MAX_ARP_PENDING_OFFS as u64);
    h = fold_type!(h, HeldKeysCell);
    h = fold_type!(h, ArpPendingOff, time, note, note_id);
    h = fold_type!(
        h,
        ArpCursor,
        seq,
        phrase,
        running,
        step,
        last_step_pos,
        last_pushed,
        scheduled_until,
        pending_count,
        reserved,
        pending
    );
    h = fold_type!(h, ArpArea, held, cursor);
    h = fold_type!(h, SharedBlock, header, transport, stats, meters, params, voices, to_engine, from_engine, arp);
    h = fold_type!(h, Event, time, kind, index, value, note_id, channel);
    h = fold_type!(
        h,
        ProcessData,
        num_samples,
        num_outputs,
        outputs,
        num_inputs,
        num_events,
        inputs,
        events,
        silence_flags
    );
    h = fold_type!(
        h,
        ParamInfo,
        id,
        flags,
        step_count,
        mapping_kind,
        min,
        max,
        skew,
        default_normalized,
        name,
        short_name,
        unit,
        group
    );
    h = fold_type!(h, ModuleDescriptor, magic, abi_version, kind, layout_hash, alloc_policy, reserved, name, version);
    h
};

// Compile-time layout assertions: a change to any of these types must be deliberate
// (update the figure here, bump `ABI_VERSION`, note it in the changelog).
const _: () = {
    assert!(size_of::<BlockHeader>() == 72);
    assert!(offset_of!(BlockHeader, sample_clock) == 56);
    assert!(offset_of!(BlockHeader, control_lookahead_samples) == 64);
    assert!(size_of::<TransportCell>() == 56);
    assert!(size_of::<ParamSlot>() == 56);
    assert!(offset_of!(ParamSlot, flags) == 8);
    assert!(size_of::<VoiceState>() == 24);
    assert!(offset_of!(VoiceState, age) == 16);
    assert!(size_of::<Meters>() == 24);
    assert!(size_of::<Statistics>() == 96);
    assert!(size_of::<Event>() == 32);
    assert!(offset_of!(Event, value) == 16);
    assert!(offset_of!(Event, note_id) == 24);
    assert!(size_of::<ProcessData>() == 48);
    assert!(size_of::<ParamInfo>() == 192);
    assert!(size_of::<ModuleDescriptor>() == 96);
    assert!(align_of::<SharedBlock>() == 64);
    assert!(offset_of!(SharedBlock, transport) == 72);
    assert!(offset_of!(SharedBlock, params) == 248);
    assert!(size_of::<HeldKeysCell>() == 8 + 8 * (3 + MAX_HELD_KEYS));
    assert!(size_of::<ArpPendingOff>() == 16);
    assert!(offset_of!(ArpPendingOff, note_id) == 12);
    assert!(size_of::<ArpCursor>() == 56 + 16 * MAX_ARP_PENDING_OFFS);
    assert!(offset_of!(ArpCursor, last_step_pos) == 24);
    assert!(offset_of!(ArpCursor, pending) == 56);
    assert!(size_of::<ArpArea>() == size_of::<HeldKeysCell>() + size_of::<ArpCursor>());
    assert!(offset_of!(ArpArea, cursor) == size_of::<HeldKeysCell>());
    // The arp area comes last, so adding it moved nothing before it.
    assert!(offset_of!(SharedBlock, arp) > offset_of!(SharedBlock, from_engine));
    // `build.yaml` gives the segment 65536 bytes; the build tool refuses less than this.
    assert!(size_of::<SharedBlock>() <= 65536);
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_nonzero_and_stable_within_a_build() {
        assert_ne!(LAYOUT_HASH, 0);
        assert_eq!(LAYOUT_HASH, crate::abi::ModuleDescriptor::new(1, 1, "x", "y").layout_hash);
    }

    #[test]
    fn block_fits_a_few_pages() {
        let size = size_of::<SharedBlock>();
        assert!(size < 128 * 1024, "block is {size} bytes");
    }
}
