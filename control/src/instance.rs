//! One control instance: the logic behind the exports, in safe Rust.

use core::sync::atomic::Ordering;

use shared::abi::{self, ParamInfo, status};
use shared::block::SharedBlock;

use crate::midi::CcMap;
use crate::params::{self, ParamDef};
use crate::presets::{self, Preset};
use crate::state::{self, StateData};

/// A control instance bound to one shared block.
pub(crate) struct ControlInstance {
    block: &'static SharedBlock,
    presets: Vec<Preset>,
    preset: Option<String>,
    cc_map: CcMap,
    last_error: String,
    /// Set when the instance adopted a block (a reload) until its first `load_state` or
    /// tick: the parameters whose mapping this build changed (or newly defined).
    handover: Option<Vec<u32>>,
}

impl ControlInstance {
    /// Publishes every parameter's mapping (and, if `fresh`, its default value).
    pub(crate) fn new(block: &'static SharedBlock, fresh: bool) -> Result<Self, String> {
        let presets = presets::factory_bank().map_err(|e| format!("factory presets: {e}"))?;
        let defs = params::definitions();
        let mut remapped = Vec::new();
        for def in defs {
            let Some(slot) = block.param(def.id) else {
                return Err(format!("parameter id {} of {} does not fit the block", def.id, def.name));
            };
            // Relaxed: read together with the mapping, which only the control worker writes.
            if !fresh && (slot.defined.load(Ordering::Relaxed) == 0 || slot.mapping() != Some(def.mapping)) {
                remapped.push(def.id);
            }
            // SAFETY: only the control worker writes mappings, and it runs one call at a time.
            unsafe { slot.set_mapping(&def.mapping) };
            // Relaxed: flags and the defined mark are read together with the mapping,
            // whose seqlock orders them for readers that need consistency.
            slot.flags.store(def.flags, Ordering::Relaxed);
            slot.defined.store(1, Ordering::Relaxed);
            if fresh {
                // Relaxed: parameter values are independent atomics.
                slot.value.store(def.default_normalized(), Ordering::Relaxed);
            }
        }
        // Relaxed: informational.
        block.header.param_count.store(defs.len() as u32, Ordering::Relaxed);
        Ok(Self {
            block,
            presets,
            preset: if fresh { Some("Init".to_owned()) } else { None },
            cc_map: CcMap::default_map(),
            last_error: String::new(),
            handover: if fresh { None } else { Some(remapped) },
        })
    }

    /// Records an error message for `control_last_error` and returns `code`.
    pub(crate) fn fail(&mut self, code: i32, message: String) -> i32 {
        self.last_error = message;
        code
    }

    pub(crate) fn last_error(&self) -> &str {
        &self.last_error
    }

    fn def(&self, id: u32) -> Option<&'static ParamDef> {
        params::definition(id)
    }

    pub(crate) fn param_count(&self) -> u32 {
        params::definitions().len() as u32
    }

    pub(crate) fn param_info(&mut self, index: u32) -> Result<ParamInfo, i32> {
        let Some(def) = params::definitions().get(index as usize) else {
            let n = self.param_count();
            return Err(
                self.fail(status::INVALID_ARGUMENT, format!("parameter index {index} is out of range (0..{n})"))
            );
        };
        Ok(ParamInfo {
            id: def.id,
            flags: def.flags,
            step_count: def.mapping.step_count(),
            mapping_kind: def.mapping.kind as u32,
            min: def.mapping.min,
            max: def.mapping.max,
            skew: def.mapping.skew,
            default_normalized: def.default_normalized(),
            name: abi::fixed_str(def.name),
            short_name: abi::fixed_str(def.short_name),
            unit: abi::fixed_str(def.unit),
            group: abi::fixed_str(def.group),
        })
    }

    pub(crate) fn format_value(&mut self, id: u32, normalized: f64) -> Result<String, i32> {
        match self.def(id) {
            Some(def) => Ok(def.format_normalized(normalized)),
            None => Err(self.fail(status::INVALID_ARGUMENT, format!("no parameter has id {id}"))),
        }
    }

    pub(crate) fn parse_value(&mut self, id: u32, text: &str) -> Result<f64, i32> {
        let Some(def) = self.def(id) else {
            return Err(self.fail(status::INVALID_ARGUMENT, format!("no parameter has id {id}")));
        };
        match def.parse(text) {
            Ok(plain) => Ok(def.mapping.to_normalized(plain)),
            Err(e) => Err(self.fail(status::REJECTED, e.to_string())),
        }
    }

    /// The current state, read from the block.
    pub(crate) fn state(&self) -> StateData {
        let values = params::definitions()
            .iter()
            .map(|def| {
                let slot = &self.block.params[def.id as usize];
                // Relaxed: parameter values are independent atomics.
                (def.id, exact_plain(&def.mapping, slot.value.load(Ordering::Relaxed)))
            })
            .collect();
        StateData { values, preset: self.preset.clone(), cc_map: self.cc_map.clone() }
    }

    pub(crate) fn save_state(&self) -> String {
        state::to_json(&self.state())
    }

    /// Loads a state: all or nothing.
    ///
    /// The first state loaded into an instance that adopted a block is a reload's
    /// handover: the block already holds the live parameter values (the host and the
    /// engine's automation may be writing them right now), so only parameters whose
    /// mapping this build changed, or that it newly defines, take their value from the
    /// state (converted to the new mapping); the others are left exactly as they are.
    pub(crate) fn load_state(&mut self, bytes: &[u8]) -> i32 {
        match state::from_json(bytes) {
            Ok(data) => {
                match self.handover.take() {
                    Some(remapped) => {
                        let values: Vec<(u32, f64)> =
                            data.values.iter().copied().filter(|(id, _)| remapped.contains(id)).collect();
                        self.apply_values(&values);
                    }
                    None => self.apply_values(&data.values),
                }
                self.preset = data.preset;
                self.cc_map = data.cc_map;
                status::OK
            }
            Err(e) => self.fail(status::REJECTED, format!("state rejected, nothing changed: {e}")),
        }
    }

    fn apply_values(&self, values: &[(u32, f64)]) {
        for &(id, plain) in values {
            if let (Some(def), Some(slot)) = (self.def(id), self.block.param(id)) {
                // Relaxed: parameter values are independent atomics.
                let current = slot.value.load(Ordering::Relaxed);
                // A value that saves as exactly this plain value is kept bit for bit. Not
                // every normalized value has a plain value that maps back to it exactly
                // (a logarithmic mapping skips some), so without this a reload, which
                // saves the old instance's state and loads it into the new one on the same
                // block, could move an automated value by an ulp and change the audio.
                if exact_plain(&def.mapping, current) == plain {
                    continue;
                }
                slot.value.store(def.mapping.to_normalized(plain), Ordering::Relaxed);
            }
        }
    }

    pub(crate) fn preset_count(&self) -> u32 {
        self.presets.len() as u32
    }

    pub(crate) fn preset_name(&mut self, index: u32) -> Result<String, i32> {
        match self.presets.get(index as usize) {
            Some(p) => Ok(p.name.clone()),
            None => {
                let n = self.presets.len();
                Err(self.fail(status::INVALID_ARGUMENT, format!("preset index {index} is out of range (0..{n})")))
            }
        }
    }

    pub(crate) fn load_preset(&mut self, index: u32) -> i32 {
        let Some(preset) = self.presets.get(index as usize) else {
            let n = self.presets.len();
            return self.fail(status::INVALID_ARGUMENT, format!("preset index {index} is out of range (0..{n})"));
        };
        // A preset sets the sound, not the bypass switch: leave bypass as the user has it.
        let values: Vec<(u32, f64)> = preset
            .values
            .iter()
            .copied()
            .filter(|&(id, _)| !params::definition(id).is_some_and(|d| d.has_flag(params::FLAG_BYPASS)))
            .collect();
        let name = preset.name.clone();
        self.apply_values(&values);
        self.preset = Some(name);
        status::OK
    }

    pub(crate) fn midi_cc_param(&self, cc: u32) -> Option<u32> {
        u8::try_from(cc).ok().and_then(|cc| self.cc_map.param_for_cc(cc))
    }

    /// Control-rate work: the arpeggiator schedules its next notes. All its state lives
    /// in the block, so an instance that adopted the block continues the sequence.
    pub(crate) fn tick(&mut self) -> i32 {
        // A reload's handover is over once the new instance serves.
        self.handover = None;
        crate::arp::tick(self.block);
        status::OK
    }
}

/// The plain value for `normalized`, nudged by a few ulps where that makes it map back to
/// exactly the same normalized value: saved state then restores every value bit for bit,
/// not just to within rounding of the mapping's `exp`/`ln`.
fn exact_plain(mapping: &shared::params::ParamMapping, normalized: f64) -> f64 {
    let plain = mapping.to_plain(normalized);
    if mapping.to_normalized(plain) == normalized {
        return plain;
    }
    let (mut up, mut down) = (plain, plain);
    for _ in 0..8 {
        up = up.next_up();
        down = down.next_down();
        for candidate in [up, down] {
            if mapping.to_normalized(candidate) == normalized {
                return candidate;
            }
        }
    }
    plain
}

#[cfg(test)]
mod tests {
    use super::{ControlInstance, exact_plain};
    use crate::params;
    use core::sync::atomic::Ordering;
    use shared::abi::status;
    use shared::block::SharedBlock;
    use shared::params::id;

    #[test]
    fn loading_the_state_just_saved_changes_no_value_by_a_single_bit() {
        let block: &'static SharedBlock = Box::leak(SharedBlock::new_boxed());
        block.init_header(1, 48_000.0, 256);
        let mut instance = ControlInstance::new(block, true).unwrap();
        // Normalized cutoffs that no plain value maps back to exactly (automation can set
        // them).
        for n in [0.3096, 0.316, 0.322_399_999_999_999_96] {
            block.params[id::CUTOFF as usize].value.store(n, Ordering::Relaxed);
            let before: Vec<u64> = block.params.iter().map(|p| p.value.load(Ordering::Relaxed).to_bits()).collect();
            let saved = instance.save_state();
            let mut adopted = ControlInstance::new(block, false).unwrap();
            assert_eq!(adopted.load_state(saved.as_bytes()), status::OK);
            let after: Vec<u64> = block.params.iter().map(|p| p.value.load(Ordering::Relaxed).to_bits()).collect();
            assert_eq!(before, after, "cutoff {n}");
            instance = adopted;
        }
        // A reload's handover leaves live values alone: the value moved after the save.
        block.params[id::CUTOFF as usize].value.store(0.25, Ordering::Relaxed);
        let saved = instance.save_state();
        block.params[id::CUTOFF as usize].value.store(0.75, Ordering::Relaxed);
        let mut adopted = ControlInstance::new(block, false).unwrap();
        assert_eq!(adopted.load_state(saved.as_bytes()), status::OK);
        assert_eq!(block.params[id::CUTOFF as usize].value.load(Ordering::Relaxed), 0.75);
        // Later states (the host's) set every value.
        assert_eq!(adopted.load_state(saved.as_bytes()), status::OK);
        assert_eq!(block.params[id::CUTOFF as usize].value.load(Ordering::Relaxed), 0.25);
        let mut instance = adopted;

        // A state with another value sets it.
        let text = crate::state::to_json(&crate::state::StateData {
            values: vec![(id::CUTOFF, 440.0)],
            ..crate::state::StateData::defaults()
        });
        assert_eq!(instance.load_state(text.as_bytes()), status::OK);
        let cutoff = block.params[id::CUTOFF as usize].value.load(Ordering::Relaxed);
        assert!((params::definition(id::CUTOFF).unwrap().mapping.to_plain(cutoff) - 440.0).abs() < 1e-9);
    }

    #[test]
    fn plain_values_map_back_to_the_same_normalized_value() {
        let mut exact = 0;
        let mut total = 0;
        for def in params::definitions() {
            for i in 0..=1000 {
                let n = f64::from(i) / 1000.0 + 1e-7 * f64::from(i % 7);
                let n = def.mapping.to_normalized(def.mapping.to_plain(n.min(1.0)));
                total += 1;
                if def.mapping.to_normalized(exact_plain(&def.mapping, n)) == n {
                    exact += 1;
                }
            }
        }
        assert_eq!(exact, total, "{exact} of {total} values restore exactly");
    }
}
