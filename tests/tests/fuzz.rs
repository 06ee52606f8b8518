//! Property-based fuzzing through the real entry points, with generated inputs:
//!
//! - saved states for both example plugins, through `IComponent::setState` (with the
//!   controller's `setComponentState`, as hosts restore a project) and
//!   `IEditController::setState`: random bytes, every prefix of valid states, valid states
//!   with bytes flipped, inserted or deleted, with their JSON edited (wrong types, missing
//!   fields, numbers out of range or not numbers, unknown parameters, long texts, deep
//!   nesting), and blobs of several megabytes. Each is accepted, and then saves back what
//!   it asked for, loads again unchanged and plays finite audio; or refused with an
//!   error, and then nothing changed: the state read back is byte for byte the one before;
//! - `build.yaml` files, the two examples' with lines deleted, duplicated, moved or
//!   re-indented, values of the wrong type, unknown keys, bad paths, odd YAML, truncation
//!   and random bytes. Each is loaded, and then meets the checks the parser promises; or
//!   refused with a message naming the file and the field; never a panic;
//! - event streams for both plugins: blocks of every size from 0 to the maximum, notes
//!   with any pitch, velocity, channel and offset (in the block or not, sorted or not),
//!   parameter changes for known and unknown ids with values that are NaN, infinite or
//!   out of range, and now and then what a misbehaving host does to the buffers. Every
//!   block returns with finite, bounded output, and after each stream a well-formed block
//!   plays again.
//!
//! The generators have a fixed seed. Each class gets `TRIO_FUZZ_CASES` inputs (10,000 by
//! default; set it higher for a longer run) and prints how many were tried, accepted and
//! refused, and how long they took.

use std::cell::{Cell, RefCell};
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail, ensure};
use integration::{TestBundle, rms, scratch_dir};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use serde_json::Value;
use trio_host::{Buffers, HostError, Hostile, Module, NoteEvent, ParamPoint, Plugin, Precision, Setup};
use trio_xtask::manifest::{Allocation, Kind, LayoutName, Manifest, ManifestError};

/// The generators' seed: every run tries the same inputs.
const SEED: u64 = 0x5452_494F_5F46_555A;
const SR: f64 = 48_000.0;
const MAX: usize = 512;

/// Inputs per class: `TRIO_FUZZ_CASES`, 10,000 by default.
fn cases() -> u32 {
    match std::env::var("TRIO_FUZZ_CASES") {
        Ok(text) => text.trim().parse().unwrap_or_else(|_| panic!("TRIO_FUZZ_CASES={text:?} is not a count of cases")),
        Err(_) => 10_000,
    }
}

/// Runs `test` on `cases` inputs drawn from `strategy` with the fixed seed. A failure is
/// shrunk a little (the plugins keep their state from case to case, so the smallest
/// failing input is found among the neighbours of the first).
fn run<S: Strategy>(cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<()>) -> Result<()>
where
    S::Value: Debug,
{
    let config = Config {
        cases,
        rng_seed: RngSeed::Fixed(SEED),
        failure_persistence: None,
        max_shrink_iters: 200,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    runner
        .run(&strategy, |input| test(input).map_err(|e| TestCaseError::fail(format!("{e:#}"))))
        .map_err(|e| anyhow!("{e}"))
}

/// What one class of inputs did, printed at the end.
struct Tally {
    class: String,
    tried: Cell<u64>,
    accepted: Cell<u64>,
    refused: Cell<u64>,
    /// Panics caught (each also fails the test).
    crashes: Cell<u64>,
    /// Streams and events, for the event streams (whose inputs are blocks).
    streams: Cell<u64>,
    events: Cell<u64>,
    started: Instant,
}

impl Tally {
    fn new(class: impl Into<String>) -> Self {
        Self {
            class: class.into(),
            tried: Cell::new(0),
            accepted: Cell::new(0),
            refused: Cell::new(0),
            crashes: Cell::new(0),
            streams: Cell::new(0),
            events: Cell::new(0),
            started: Instant::now(),
        }
    }

    fn count(&self, accepted: bool) {
        self.tried.set(self.tried.get() + 1);
        let slot = if accepted { &self.accepted } else { &self.refused };
        slot.set(slot.get() + 1);
    }

    fn report(&self) {
        let mut line = format!(
            "fuzz: {}: {} inputs, {} accepted, {} refused, {} crashes, {:.1} s",
            self.class,
            self.tried.get(),
            self.accepted.get(),
            self.refused.get(),
            self.crashes.get(),
            self.started.elapsed().as_secs_f64()
        );
        if self.streams.get() > 0 {
            line.push_str(&format!(" (blocks, in {} streams, with {} events)", self.streams.get(), self.events.get()));
        }
        eprintln!("{line}");
    }
}

/// Filler bytes for the large inputs: 64 KiB of noise from `seed`, repeated (a generated
/// vector of megabytes would make the generator the slow part).
fn noise_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed | 1;
    let pattern: Vec<u8> = (0..1 << 16)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 32) as u8
        })
        .collect();
    let mut bytes = Vec::with_capacity(len);
    while bytes.len() < len {
        bytes.extend_from_slice(&pattern[..pattern.len().min(len - bytes.len())]);
    }
    bytes
}

/// A made-up stereo input for the effect (and ignored by the instrument).
fn input_noise() -> Vec<f32> {
    (0..MAX).map(|n| ((n * 7919 % 1000) as f32 / 1000.0 - 0.5) * 0.5).collect()
}

// ---- JSON with its order, duplicates and invalid numbers kept ---------------------------

/// A JSON document as the fuzzer writes it: `Raw` is written as is (numbers, and things
/// that are not JSON at all such as `NaN`), objects may repeat keys.
#[derive(Clone, Debug)]
enum J {
    Raw(String),
    Str(String),
    /// A text of `.0` repeated `.1` times (written out only when rendered).
    Long(String, usize),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl J {
    fn from_value(value: &Value) -> Self {
        match value {
            Value::Object(map) => J::Obj(map.iter().map(|(k, v)| (k.clone(), J::from_value(v))).collect()),
            Value::Array(items) => J::Arr(items.iter().map(J::from_value).collect()),
            Value::String(s) => J::Str(s.clone()),
            other => J::Raw(other.to_string()),
        }
    }

    fn render(&self, out: &mut String) {
        match self {
            J::Raw(text) => out.push_str(text),
            J::Str(s) => out.push_str(&Value::from(s.as_str()).to_string()),
            J::Long(unit, n) => out.push_str(&Value::from(unit.repeat(*n)).to_string()),
            J::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.render(out);
                }
                out.push(']');
            }
            J::Obj(entries) => {
                out.push('{');
                for (i, (key, value)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::from(key.as_str()).to_string());
                    out.push(':');
                    value.render(out);
                }
                out.push('}');
            }
        }
    }

    fn entries(&mut self) -> Option<&mut Vec<(String, J)>> {
        match self {
            J::Obj(entries) => Some(entries),
            _ => None,
        }
    }

    /// The value of `key` in this object (the last, if repeated).
    fn field(&mut self, key: &str) -> Option<&mut J> {
        self.entries()?.iter_mut().rev().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Sets `key` in this object, replacing its value or adding it.
    fn set(&mut self, key: &str, value: J) {
        if let Some(entries) = self.entries() {
            match entries.iter_mut().rev().find(|(k, _)| k == key) {
                Some(slot) => slot.1 = value,
                None => entries.push((key.to_owned(), value)),
            }
        }
    }

    fn remove(&mut self, key: &str) {
        if let Some(entries) = self.entries() {
            entries.retain(|(k, _)| k != key);
        }
    }
}

/// Number-like texts, most of which are not JSON or not a finite `f64`.
const ODD_NUMBERS: &[&str] = &[
    "NaN",
    "-NaN",
    "nan",
    "Infinity",
    "-Infinity",
    "inf",
    "1e999",
    "-1e999",
    "1e-999",
    "-0",
    "-0.0",
    "0e0",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "-9223372036854775809",
    "4294967296",
    "1.7976931348623157e308",
    "5e-324",
    "0x10",
    "+1",
    ".5",
    "5.",
    "01",
    "1_0",
    "1e",
    "--1",
    "\"1.5\"",
    "\"NaN\"",
    "null",
    "true",
    "false",
    "[]",
    "{}",
    "[1]",
    "{\"value\":1}",
];

/// Texts of up to `max` characters of `alphabet`.
fn text_from(alphabet: &'static str, max: usize) -> impl Strategy<Value = String> {
    let chars: Vec<char> = alphabet.chars().collect();
    vec(select(chars), 0..=max).prop_map(|c| c.into_iter().collect())
}

/// Any JSON value a field should not hold, and a few it could.
fn weird_value() -> impl Strategy<Value = J> {
    prop_oneof![
        3 => any::<f64>().prop_map(|v| J::Raw(format!("{v:?}"))),
        2 => any::<i64>().prop_map(|v| J::Raw(v.to_string())),
        4 => select(ODD_NUMBERS).prop_map(|s| J::Raw(s.to_owned())),
        2 => vec(any::<char>(), 0..12).prop_map(|c| J::Str(c.into_iter().collect())),
        1 => (select(&["x", "é", "🎹", "\u{0}", "\\", "\""][..]), 1usize..20_000).prop_map(|(u, n)| J::Long(u.to_owned(), n)),
        1 => vec(any::<f64>().prop_map(|v| J::Raw(format!("{v:?}"))), 0..4).prop_map(J::Arr),
    ]
}

/// JSON values of any type.
fn fair_value() -> impl Strategy<Value = J> {
    prop_oneof![
        any::<f64>().prop_map(|v| J::Raw(format!("{v:?}"))),
        select(&["null", "true", "[]", "{}", "{\"a\":[1,{\"b\":null}]}"][..]).prop_map(|s| J::Raw(s.to_owned())),
        vec(any::<char>(), 0..12).prop_map(|c| J::Str(c.into_iter().collect())),
        (1usize..20_000).prop_map(|n| J::Long("é".to_owned(), n)),
    ]
}

/// Names for parameters and fields: near misses of real ones and anything else.
fn odd_name() -> impl Strategy<Value = String> {
    prop_oneof![
        select(
            &["", " ", "Gain", "gain ", "gaín", "GAIN", "params", "format", "version", "\u{0}", "__proto__", "0", "-1"]
                [..]
        )
        .prop_map(str::to_owned),
        vec(any::<char>(), 1..10).prop_map(|c| c.into_iter().collect()),
        (1usize..5_000).prop_map(|n| "k".repeat(n)),
    ]
}

/// The fields a state document has, and one it had in version 0.
const STATE_FIELDS: [&str; 6] = ["format", "version", "preset", "params", "midi_cc", "parameters"];

/// `version` values: the supported ones and many that are not.
const VERSIONS: &[&str] = &[
    "0",
    "1",
    "2",
    "-1",
    "1.0",
    "0.5",
    "1e0",
    "\"1\"",
    "null",
    "true",
    "4294967295",
    "4294967296",
    "4294967297",
    "18446744073709551615",
    "18446744073709551616",
    "1e20",
    "NaN",
    "[1]",
];

/// MIDI CC keys: valid, leading zeros, out of range, not numbers.
const CC_KEYS: &[&str] = &[
    "0", "1", "7", "07", "007", "74", "127", "0127", "128", "255", "256", "1000", "-1", "7.0", " 7", "7 ", "", "1e2",
    "x", "٧",
];

#[derive(Clone, Debug)]
enum CcValue {
    /// The key of a parameter of the plugin.
    Param(Index),
    Other(J),
}

#[derive(Clone, Debug)]
enum JsonEdit {
    /// A parameter at a point of its range (below 0 and above 1: outside the range).
    ParamAt(Index, f64),
    /// A parameter with an odd value.
    Param(Index, J),
    RemoveParam(Index),
    UnknownParam(String, J),
    RemoveField(Index),
    Field(Index, J),
    Version(&'static str),
    Preset(J),
    Cc(String, CcValue),
    RemoveCc(Index),
    /// A field of the plugin's own (states keep what the plugin saves, nothing else).
    Extra(String, J),
    /// A field's value wrapped in `depth` lists.
    Nest(Index, usize),
    /// A field written twice, the second time with another value.
    Duplicate(Index, J),
    /// The whole document in a list.
    Wrap,
}

/// Edits a plugin should take: values in and out of the range, missing parameters,
/// preset names, MIDI CC assignments, fields of its own.
fn fair_edit() -> impl Strategy<Value = JsonEdit> {
    let cc_key = (0u32..128).prop_map(|n| n.to_string());
    prop_oneof![
        8 => (any::<Index>(), -0.25f64..1.25).prop_map(|(k, t)| JsonEdit::ParamAt(k, t)),
        2 => any::<Index>().prop_map(JsonEdit::RemoveParam),
        1 => prop_oneof![Just(J::Raw("null".into())), text_from("Warm Pad 2\"\\é🎹", 20).prop_map(J::Str)]
            .prop_map(JsonEdit::Preset),
        2 => (cc_key, any::<Index>()).prop_map(|(k, i)| JsonEdit::Cc(k, CcValue::Param(i))),
        1 => any::<Index>().prop_map(JsonEdit::RemoveCc),
        1 => (text_from("abcdefghijklmnopqrstuvwxyz_", 12), fair_value()).prop_map(|(n, v)| JsonEdit::Extra(n, v)),
    ]
}

/// Edits that make a state wrong, or odd.
fn foul_edit() -> impl Strategy<Value = JsonEdit> {
    let cc_value =
        prop_oneof![3 => any::<Index>().prop_map(CcValue::Param), 1 => weird_value().prop_map(CcValue::Other)];
    let cc_key = prop_oneof![select(CC_KEYS).prop_map(str::to_owned), (0u32..1_000).prop_map(|n| n.to_string())];
    prop_oneof![
        4 => (any::<Index>(), weird_value()).prop_map(|(k, v)| JsonEdit::Param(k, v)),
        1 => (odd_name(), weird_value()).prop_map(|(n, v)| JsonEdit::UnknownParam(n, v)),
        1 => any::<Index>().prop_map(JsonEdit::RemoveField),
        2 => (any::<Index>(), weird_value()).prop_map(|(f, v)| JsonEdit::Field(f, v)),
        2 => select(VERSIONS).prop_map(JsonEdit::Version),
        1 => weird_value().prop_map(JsonEdit::Preset),
        2 => (cc_key, cc_value).prop_map(|(k, v)| JsonEdit::Cc(k, v)),
        1 => (odd_name(), weird_value()).prop_map(|(n, v)| JsonEdit::Extra(n, v)),
        1 => (any::<Index>(), 1usize..300).prop_map(|(f, d)| JsonEdit::Nest(f, d)),
        1 => (any::<Index>(), weird_value()).prop_map(|(f, v)| JsonEdit::Duplicate(f, v)),
        1 => Just(JsonEdit::Wrap),
    ]
}

// ---- State blobs ---------------------------------------------------------------------

/// The most the bridge reads from a host's stream.
const BRIDGE_STATE_LIMIT: usize = 16 << 20;

#[derive(Clone, Debug)]
enum ByteEdit {
    Flip(Index, u8),
    Set(Index, u8),
    Insert(Index, u8),
    Delete(Index, u8),
    Duplicate(Index, u8),
}

#[derive(Clone, Debug)]
enum Huge {
    /// A valid state padded with white space to `len` bytes (a BOM first, if `bom`).
    Padded { len: usize, bom: bool },
    /// A valid state whose preset name is `len` bytes long.
    LongPreset(usize),
    /// A valid state with `count` fields of the plugin's own.
    ManyFields(usize),
    /// A valid state with a field nested `depth` lists deep.
    Deep(usize),
    /// `len` random bytes.
    Noise { len: usize, seed: u64 },
}

#[derive(Clone, Debug)]
enum Blob {
    Random(Vec<u8>),
    /// Random text from JSON's alphabet, which gets further into the parser.
    JsonLike(String),
    Prefix {
        seed: Index,
        keep: Index,
    },
    Bytes {
        seed: Index,
        edits: Vec<ByteEdit>,
    },
    Json {
        seed: Index,
        edits: Vec<JsonEdit>,
    },
    Huge {
        seed: Index,
        huge: Huge,
    },
}

/// How the state reaches the plugin.
#[derive(Clone, Copy, Debug)]
enum Via {
    /// `IComponent::setState` then `IEditController::setComponentState`, as hosts restore.
    Host,
    /// `IEditController::setState`.
    Controller,
}

/// One edit of a byte string: a bit flipped, a byte set, inserted, or a run deleted or
/// duplicated.
fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(i, b)| ByteEdit::Flip(i, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| ByteEdit::Set(i, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| ByteEdit::Insert(i, b)),
        (any::<Index>(), 1u8..32).prop_map(|(i, n)| ByteEdit::Delete(i, n)),
        (any::<Index>(), 1u8..32).prop_map(|(i, n)| ByteEdit::Duplicate(i, n)),
    ]
}

fn state_case() -> impl Strategy<Value = (Blob, Via)> {
    let byte_edit = byte_edit();
    let around_limits = select(vec![
        trio::state::MAX_STATE_BYTES - 1,
        trio::state::MAX_STATE_BYTES,
        trio::state::MAX_STATE_BYTES + 1,
        BRIDGE_STATE_LIMIT - 1,
        BRIDGE_STATE_LIMIT,
        BRIDGE_STATE_LIMIT + 1,
    ]);
    let size = prop_oneof![around_limits, (1usize << 19)..(24 << 20)];
    let huge = prop_oneof![
        (size.clone(), any::<bool>()).prop_map(|(len, bom)| Huge::Padded { len, bom }),
        ((1usize << 16)..(3 << 20)).prop_map(Huge::LongPreset),
        (1usize..60_000).prop_map(Huge::ManyFields),
        (100usize..200_000).prop_map(Huge::Deep),
        (size, any::<u64>()).prop_map(|(len, seed)| Huge::Noise { len, seed }),
    ];
    let blob = prop_oneof![
        15 => vec(any::<u8>(), 0..2_048).prop_map(Blob::Random),
        15 => text_from("{}[]\":,0123456789.-+eEtruefalsn \\", 400).prop_map(Blob::JsonLike),
        15 => (any::<Index>(), any::<Index>()).prop_map(|(seed, keep)| Blob::Prefix { seed, keep }),
        30 => (any::<Index>(), vec(byte_edit, 1..6)).prop_map(|(seed, edits)| Blob::Bytes { seed, edits }),
        100 => (any::<Index>(), vec(prop_oneof![3 => fair_edit(), 1 => foul_edit()], 1..5))
            .prop_map(|(seed, edits)| Blob::Json { seed, edits }),
        1 => (any::<Index>(), huge).prop_map(|(seed, huge)| Blob::Huge { seed, huge }),
    ];
    (blob, prop_oneof![Just(Via::Host), Just(Via::Controller)])
}

/// A parameter as a state names it.
#[derive(Clone, Debug)]
struct StateParam {
    key: String,
    /// Plain value at normalized 0 and 1.
    min: f64,
    max: f64,
    /// Plain default, as a fresh instance saves it.
    default: f64,
    stepped: bool,
}

impl StateParam {
    /// What loading plain value `v` gives: clamped into the range, stepped ones rounded to
    /// a whole step.
    fn clamp(&self, v: f64) -> f64 {
        let (lo, hi) = (self.min.min(self.max), self.min.max(self.max));
        let p = v.clamp(lo, hi);
        if self.stepped { (self.min + (p - self.min).round()).clamp(lo, hi) } else { p }
    }

    fn close(&self, a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * (self.max - self.min).abs().max(1.0)
    }
}

/// One plugin instance, processing, fed one state after another.
struct StateFuzz {
    plugin: RefCell<Plugin>,
    /// Valid states to truncate and mutate.
    seeds: Vec<Vec<u8>>,
    params: Vec<StateParam>,
    /// Every parameter id the controller lists, for "nothing changed".
    ids: Vec<u32>,
    format: String,
    version: u64,
    default_cc: Value,
    noise: Vec<f32>,
}

fn parse_state(bytes: &[u8]) -> Result<serde_json::Map<String, Value>> {
    let text = std::str::from_utf8(bytes).context("a state that is not UTF-8")?;
    match serde_json::from_str(text.strip_prefix('\u{feff}').unwrap_or(text)).context("a state that is not JSON")? {
        Value::Object(map) => Ok(map),
        other => bail!("a state that is not an object: {other}"),
    }
}

fn refused(result: Result<(), HostError>) -> Result<bool> {
    match result {
        Ok(()) => Ok(false),
        Err(HostError::Refused { .. }) => Ok(true),
        Err(other) => Err(other.into()),
    }
}

impl StateFuzz {
    fn new(bundle: &TestBundle, golden: &[&str]) -> Result<Self> {
        let mut plugin = Plugin::new(Arc::new(Module::load(&bundle.path)?))?;
        plugin.start(Setup::new(SR, MAX))?;
        let default_state = plugin.component_state()?;
        let doc = parse_state(&default_state)?;
        let format = doc["format"].as_str().context("no format tag in the default state")?.to_owned();
        let version = doc["version"].as_u64().context("no version in the default state")?;
        let default_params = doc["params"].as_object().context("no params in the default state")?.clone();
        let infos = plugin.parameters();
        // Which key each parameter id moves: set it away from its default, see what the
        // state says.
        let mut params = Vec::new();
        for info in &infos {
            let away = if info.default_normalized < 0.5 { 1.0 } else { 0.0 };
            plugin.set_param_normalized(info.id, away)?;
            let moved = parse_state(&plugin.component_state()?)?["params"].as_object().cloned().unwrap_or_default();
            plugin.set_param_normalized(info.id, info.default_normalized)?;
            let Some((key, default)) = default_params.iter().find(|(k, v)| moved.get(*k) != Some(*v)) else {
                continue; // Not saved in the state (the hidden MIDI controller parameters).
            };
            params.push(StateParam {
                key: key.clone(),
                min: plugin.to_plain(info.id, 0.0),
                max: plugin.to_plain(info.id, 1.0),
                default: default.as_f64().context("a default that is not a number")?,
                stepped: info.step_count > 0,
            });
        }
        ensure!(
            params.len() == default_params.len(),
            "found {} of the state's {} parameters",
            params.len(),
            default_params.len()
        );
        ensure!(plugin.component_state()? == default_state, "probing the parameters left them changed");
        // Valid states: the defaults, the released files, parameters set at random points,
        // and the smallest state there is.
        let mut seeds = vec![default_state.clone()];
        seeds.extend(golden.iter().map(|s| s.as_bytes().to_vec()));
        for round in 0..3u32 {
            for (i, info) in infos.iter().enumerate() {
                let n = f64::from((i as u32 * 7919 + round * 104_729) % 1000) / 999.0;
                plugin.set_param_normalized(info.id, n)?;
            }
            seeds.push(plugin.component_state()?);
        }
        seeds.push(
            format!("{{\"format\":{},\"version\":{version},\"params\":{{}}}}", Value::from(format.as_str()))
                .into_bytes(),
        );
        for seed in &seeds {
            plugin
                .set_component_state(seed)
                .with_context(|| format!("a valid state is refused: {}", String::from_utf8_lossy(seed)))?;
        }
        plugin.set_component_state(&default_state)?;
        Ok(Self {
            plugin: RefCell::new(plugin),
            seeds,
            params,
            ids: infos.iter().map(|i| i.id).collect(),
            format,
            version,
            default_cc: doc.get("midi_cc").cloned().unwrap_or(Value::Null),
            noise: input_noise(),
        })
    }

    fn seed(&self, index: &Index) -> &[u8] {
        &self.seeds[index.index(self.seeds.len())]
    }

    /// A seed as an editable document.
    fn seed_doc(&self, index: &Index) -> J {
        J::from_value(&Value::Object(parse_state(self.seed(index)).expect("the seeds are valid states")))
    }

    fn bytes(&self, blob: &Blob) -> Vec<u8> {
        match blob {
            Blob::Random(bytes) => bytes.clone(),
            Blob::JsonLike(text) => text.clone().into_bytes(),
            Blob::Prefix { seed, keep } => {
                let seed = self.seed(seed);
                seed[..keep.index(seed.len() + 1)].to_vec()
            }
            Blob::Bytes { seed, edits } => {
                let mut bytes = self.seed(seed).to_vec();
                for edit in edits {
                    apply_byte_edit(&mut bytes, edit);
                }
                bytes
            }
            Blob::Json { seed, edits } => {
                let mut doc = self.seed_doc(seed);
                for edit in edits {
                    self.edit(&mut doc, edit);
                }
                let mut text = String::new();
                doc.render(&mut text);
                text.into_bytes()
            }
            Blob::Huge { seed, huge } => self.huge(self.seed(seed), huge),
        }
    }

    fn edit(&self, doc: &mut J, edit: &JsonEdit) {
        let key = |i: &Index| i.get(&self.params).key.clone();
        let field = |i: &Index| *i.get(&STATE_FIELDS);
        match edit {
            JsonEdit::ParamAt(i, t) => {
                let p = i.get(&self.params);
                if let Some(params) = doc.field("params") {
                    params.set(&p.key, J::Raw(format!("{:?}", p.min + t * (p.max - p.min))));
                }
            }
            JsonEdit::Param(i, value) => {
                if let Some(params) = doc.field("params") {
                    params.set(&key(i), value.clone());
                }
            }
            JsonEdit::RemoveParam(i) => {
                if let Some(params) = doc.field("params") {
                    params.remove(&key(i));
                }
            }
            JsonEdit::UnknownParam(name, value) => {
                if let Some(params) = doc.field("params") {
                    params.set(name, value.clone());
                }
            }
            JsonEdit::RemoveField(i) => doc.remove(field(i)),
            JsonEdit::Field(i, value) => doc.set(field(i), value.clone()),
            JsonEdit::Version(v) => doc.set("version", J::Raw((*v).to_owned())),
            JsonEdit::Preset(value) => doc.set("preset", value.clone()),
            JsonEdit::Cc(cc, value) => {
                let value = match value {
                    CcValue::Param(i) => J::Str(key(i)),
                    CcValue::Other(j) => j.clone(),
                };
                if doc.field("midi_cc").is_none() {
                    doc.set("midi_cc", J::Obj(Vec::new()));
                }
                if let Some(map) = doc.field("midi_cc") {
                    map.set(cc, value);
                }
            }
            JsonEdit::RemoveCc(i) => {
                if let Some(J::Obj(entries)) = doc.field("midi_cc")
                    && !entries.is_empty()
                {
                    entries.remove(i.index(entries.len()));
                }
            }
            JsonEdit::Extra(name, value) => doc.set(name, value.clone()),
            JsonEdit::Nest(i, depth) => {
                if let Some(value) = doc.field(field(i)) {
                    let mut nested = value.clone();
                    for _ in 0..*depth {
                        nested = J::Arr(vec![nested]);
                    }
                    *value = nested;
                }
            }
            JsonEdit::Duplicate(i, value) => {
                if let Some(entries) = doc.entries() {
                    entries.push((field(i).to_owned(), value.clone()));
                }
            }
            JsonEdit::Wrap => *doc = J::Arr(vec![doc.clone()]),
        }
    }

    fn huge(&self, valid: &[u8], huge: &Huge) -> Vec<u8> {
        let doc = || J::from_value(&Value::Object(parse_state(valid).expect("the seeds are valid states")));
        match huge {
            Huge::Padded { len, bom } => {
                let bom: &[u8] = if *bom { "\u{feff}".as_bytes() } else { b"" };
                let mut bytes = vec![b' '; (*len).max(bom.len() + valid.len())];
                bytes[..bom.len()].copy_from_slice(bom);
                bytes[bom.len()..bom.len() + valid.len()].copy_from_slice(valid);
                bytes
            }
            Huge::LongPreset(len) => {
                let mut doc = doc();
                doc.set("preset", J::Long("p".into(), *len));
                let mut text = String::new();
                doc.render(&mut text);
                text.into_bytes()
            }
            Huge::ManyFields(count) => {
                let mut doc = doc();
                if let Some(entries) = doc.entries() {
                    entries.extend((0..*count).map(|i| (format!("own_{i}"), J::Raw(i.to_string()))));
                }
                let mut text = String::new();
                doc.render(&mut text);
                text.into_bytes()
            }
            Huge::Deep(depth) => {
                let text = String::from_utf8_lossy(valid);
                let body = text.trim_end().strip_suffix('}').unwrap_or(&text);
                format!("{body},\"deep\":{}1{}}}", "[".repeat(*depth), "]".repeat(*depth)).into_bytes()
            }
            Huge::Noise { len, seed } => noise_bytes(*seed, *len),
        }
    }

    /// Every parameter's normalized value, bit for bit.
    fn values(&self, plugin: &Plugin) -> Vec<u64> {
        self.ids.iter().map(|&id| plugin.param_normalized(id).to_bits()).collect()
    }

    fn check(&self, blob: &Blob, via: Via, tally: &Tally) -> Result<()> {
        let padded = match blob {
            Blob::Huge { huge: Huge::Padded { len, .. }, .. } => Some(*len),
            _ => None,
        };
        self.check_bytes(&self.bytes(blob), padded, via, tally)
    }

    /// Feeds `bytes` to the plugin and checks the outcome; `padded` is the length of a
    /// valid state padded with white space.
    fn check_bytes(&self, bytes: &[u8], padded: Option<usize>, via: Via, tally: &Tally) -> Result<()> {
        let mut plugin = self.plugin.borrow_mut();
        let before = plugin.component_state()?;
        let values = self.values(&plugin);
        let result = match via {
            Via::Host => plugin.set_component_state(bytes),
            Via::Controller => plugin.set_controller_state(bytes),
        };
        let after = plugin.component_state()?;
        let accepted = !refused(result)?;
        tally.count(accepted);
        if let Some(len) = padded {
            let fits = len <= trio::state::MAX_STATE_BYTES;
            ensure!(
                accepted == fits,
                "a valid state padded to {len} bytes was {}",
                if accepted { "accepted" } else { "refused" }
            );
        }
        if !accepted {
            if after != before {
                bail!(
                    "a refused state changed the saved state\nbefore: {}\nafter:  {}",
                    String::from_utf8_lossy(&before),
                    String::from_utf8_lossy(&after)
                );
            }
            ensure!(self.values(&plugin) == values, "a refused state changed a parameter's value");
            return Ok(());
        }
        self.check_accepted(&mut plugin, bytes, &after)
    }

    /// An accepted state saves back what it asked for, loads again to the same bytes, and
    /// plays finite audio.
    fn check_accepted(&self, plugin: &mut Plugin, input: &[u8], saved: &[u8]) -> Result<()> {
        let shown = || String::from_utf8_lossy(&input[..input.len().min(2_000)]).into_owned();
        let doc = parse_state(input).with_context(|| format!("accepted: {}", shown()))?;
        let out = parse_state(saved).context("the state saved after an accepted one")?;
        ensure!(out.get("format") == Some(&Value::from(self.format.as_str())), "saved with another format tag");
        ensure!(out.get("version").and_then(Value::as_u64) == Some(self.version), "saved with another version");
        let out_params = out.get("params").and_then(Value::as_object).context("saved without params")?;
        // What the document asked for (version 0 documents are the plugin's to migrate).
        let asked = (doc.get("version").and_then(Value::as_u64) == Some(self.version)).then(|| &doc["params"]);
        for p in &self.params {
            let got =
                out_params.get(&p.key).and_then(Value::as_f64).with_context(|| format!("saved without {}", p.key))?;
            ensure!(got.is_finite() && p.clamp(got) == got, "{} saved as {got}, outside its range", p.key);
            if let Some(asked) = asked {
                let want = match asked.get(&p.key) {
                    Some(v) => p.clamp(v.as_f64().with_context(|| format!("{} = {v} accepted: {}", p.key, shown()))?),
                    None => p.default,
                };
                ensure!(
                    p.close(got, want),
                    "{} saved as {got}, the accepted state asked for {want}: {}",
                    p.key,
                    shown()
                );
            }
        }
        if asked.is_some() {
            let preset = doc.get("preset").cloned().unwrap_or(Value::Null);
            ensure!(
                out.get("preset") == Some(&preset),
                "preset saved as {:?}, the state asked for {preset}",
                out.get("preset")
            );
            let cc = |map: &Value| -> Vec<(u64, Value)> {
                let mut pairs: Vec<(u64, Value)> = map
                    .as_object()
                    .map(|m| m.iter().map(|(k, v)| (k.parse().unwrap_or(u64::MAX), v.clone())).collect())
                    .unwrap_or_default();
                pairs.sort_by_key(|(cc, _)| *cc);
                pairs
            };
            let want = cc(doc.get("midi_cc").unwrap_or(&self.default_cc));
            let got = cc(out.get("midi_cc").unwrap_or(&Value::Null));
            ensure!(got == want, "MIDI CC map saved as {got:?}, the state asked for {want:?}: {}", shown());
        }
        // What a plugin saves, it loads, and saves again the same.
        plugin.set_component_state(saved).context("the plugin refuses the state it saved")?;
        let again = plugin.component_state()?;
        if again != saved {
            bail!(
                "a saved state loads back to another state\nsaved: {}\nagain: {}",
                String::from_utf8_lossy(saved),
                String::from_utf8_lossy(&again)
            );
        }
        let frames = 64;
        let notes = [NoteEvent::on(0, 60, 0.8), NoteEvent::off(frames as u32 - 1, 60)];
        let input = &self.noise[..frames];
        let out = plugin.process_audio(frames, &[&[input, input]], &notes, &[])?;
        ensure!(
            out.iter().flatten().all(|s| s.is_finite()),
            "a non-finite sample after an accepted state: {}",
            shown()
        );
        Ok(())
    }

    fn fuzz(&self, name: &str) -> Result<()> {
        let tally = Tally::new(format!("{name} state blobs"));
        // Every prefix of every valid state, then generated blobs.
        for seed in 0..self.seeds.len() {
            for keep in 0..self.seeds[seed].len() {
                let bytes = self.seeds[seed][..keep].to_vec();
                self.check_bytes(&bytes, None, if keep % 2 == 0 { Via::Host } else { Via::Controller }, &tally)
                    .with_context(|| format!("seed {seed} cut to {keep} bytes"))?;
            }
        }
        // The limits: the plugin's largest state, and the most the bridge reads.
        let max = trio::state::MAX_STATE_BYTES;
        let mut limits: Vec<Huge> = [max - 1, max, max + 1, BRIDGE_STATE_LIMIT, BRIDGE_STATE_LIMIT + 1]
            .into_iter()
            .flat_map(|len| [Huge::Padded { len, bom: false }, Huge::Padded { len, bom: true }])
            .collect();
        limits.extend([Huge::LongPreset(max), Huge::ManyFields(40_000), Huge::Deep(100_000)]);
        limits.push(Huge::Noise { len: 4 << 20, seed: SEED });
        for (i, huge) in limits.iter().enumerate() {
            let via = if i % 2 == 0 { Via::Host } else { Via::Controller };
            let bytes = self.huge(&self.seeds[i % self.seeds.len()], huge);
            let padded = match huge {
                Huge::Padded { len, .. } => Some(*len),
                _ => None,
            };
            self.check_bytes(&bytes, padded, via, &tally).with_context(|| format!("{huge:?}"))?;
        }
        let result = run(cases(), state_case(), |(blob, via)| self.check(&blob, via, &tally));
        tally.report();
        result
    }
}

#[test]
fn synth_states_are_accepted_or_refused_without_a_trace() -> Result<()> {
    let bundle = TestBundle::synth()?;
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/state");
    let v0 = std::fs::read_to_string(golden.join("v0.json"))?;
    let v1 = std::fs::read_to_string(golden.join("v1.json"))?;
    StateFuzz::new(&bundle, &[&v0, &v1])?.fuzz("TrioSynth")
}

#[test]
fn echo_states_are_accepted_or_refused_without_a_trace() -> Result<()> {
    let bundle = TestBundle::echo()?;
    StateFuzz::new(&bundle, &[])?.fuzz("TrioEcho")
}

// ---- Event streams -------------------------------------------------------------------

/// Largest sample the instrument may play: the framework replaces a block of engine
/// output above +40 dBFS with silence (its 128 voices could sum to more).
const SYNTH_BOUND: f32 = trio::block::RUNAWAY_PEAK;

/// Largest sample the effect may play: its limiter's highest ceiling, 0 dBFS (its input
/// here peaks at 0.25).
const ECHO_BOUND: f32 = 1.0;

/// Where in the block an event is.
#[derive(Clone, Debug)]
enum Offset {
    In(Index),
    /// At the block's length (one past the last sample).
    End,
    Past(u32),
    /// A negative `sampleOffset`.
    Negative(u32),
    Max,
}

impl Offset {
    fn at(&self, frames: usize) -> u32 {
        match self {
            Offset::In(i) if frames > 0 => i.index(frames) as u32,
            Offset::In(_) => 0,
            Offset::End => frames as u32,
            Offset::Past(n) => frames as u32 + n,
            // The host passes `sampleOffset` as `i32`: this is `-n`.
            Offset::Negative(n) => n.wrapping_neg(),
            Offset::Max => i32::MAX as u32,
        }
    }
}

#[derive(Clone, Debug)]
struct NoteCase {
    offset: Offset,
    pitch: u8,
    velocity: f32,
    on: bool,
    channel: u8,
}

#[derive(Clone, Debug)]
enum ParamId {
    /// One the plugin lists.
    Known(Index),
    Unknown(u32),
}

#[derive(Clone, Debug)]
struct PointCase {
    id: ParamId,
    offset: Offset,
    value: f64,
}

#[derive(Clone, Debug)]
struct BlockCase {
    frames: usize,
    notes: Vec<NoteCase>,
    points: Vec<PointCase>,
    buffers: Buffers,
    hostile: Hostile,
}

#[derive(Clone, Debug)]
struct StreamCase {
    wide: bool,
    blocks: Vec<BlockCase>,
    /// Whether to stop and start processing after the stream.
    restart: bool,
}

fn offset() -> impl Strategy<Value = Offset> {
    prop_oneof![
        12 => any::<Index>().prop_map(Offset::In),
        1 => Just(Offset::End),
        1 => (1u32..100_000).prop_map(Offset::Past),
        1 => (1u32..1_000).prop_map(Offset::Negative),
        1 => Just(Offset::Max),
    ]
}

fn stream_case() -> impl Strategy<Value = StreamCase> {
    let velocity = prop_oneof![
        8 => 0f32..=1.0,
        1 => select(vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -1.0, 2.0, 1e30, -0.0, 1e-40]),
    ];
    let pitch = prop_oneof![6 => 0u8..128, 1 => 128u8..=255];
    let channel = prop_oneof![6 => 0u8..16, 1 => any::<u8>()];
    let note = (offset(), pitch, velocity, any::<bool>(), channel)
        .prop_map(|(offset, pitch, velocity, on, channel)| NoteCase { offset, pitch, velocity, on, channel })
        .boxed();
    let id = prop_oneof![
        6 => any::<Index>().prop_map(ParamId::Known),
        1 => any::<u32>().prop_map(ParamId::Unknown),
        1 => select(vec![0x7FFF_0000, 0x7FFF_0005, 0x7FFF_FFFF, 0x8000_0000, u32::MAX]).prop_map(ParamId::Unknown),
    ];
    let value = prop_oneof![
        8 => 0f64..=1.0,
        1 => select(vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -1.0, 2.0, 1e300, -1e300, -0.0, 5e-324]),
        1 => any::<f64>(),
    ];
    let point = (id, offset(), value).prop_map(|(id, offset, value)| PointCase { id, offset, value });
    let frames = prop_oneof![1 => Just(0), 1 => Just(1), 1 => Just(MAX - 1), 3 => Just(MAX), 10 => 0..=MAX];
    let num_samples = select(vec![0, -1, i32::MIN, MAX as i32 + 1, 2 * MAX as i32, i32::MAX]);
    let hostile = (
        proptest::bool::weighted(0.02),
        proptest::option::weighted(0.03, 0i32..=8),
        proptest::option::weighted(0.03, num_samples),
        proptest::bool::weighted(0.2),
        proptest::bool::weighted(0.2),
    )
        .prop_map(|(null_channels, channels, num_samples, unsorted, any_channel)| Hostile {
            null_channels,
            channels,
            num_samples,
            unsorted,
            any_channel,
        });
    let buffers = prop_oneof![
        12 => Just(Buffers::Normal),
        2 => Just(Buffers::InPlace),
        1 => Just(Buffers::NoBuses),
        1 => Just(Buffers::ZeroChannels),
    ];
    let notes = prop_oneof![40 => vec(note.clone(), 0..8), 1 => vec(note, 100..300)];
    let block = (frames, notes, vec(point, 0..8), buffers, hostile)
        .prop_map(|(frames, notes, points, buffers, hostile)| BlockCase { frames, notes, points, buffers, hostile });
    (proptest::bool::weighted(0.25), vec(block, 1..=12), proptest::bool::weighted(1.0 / 16.0))
        .prop_map(|(wide, blocks, restart)| StreamCase { wide, blocks, restart })
}

/// An instance in 32 bits and one in 64 bits, fed one stream after another.
struct EventFuzz {
    plugins: [RefCell<Plugin>; 2],
    setups: [Setup; 2],
    params: Vec<trio_host::ParameterInfo>,
    noise: Vec<f32>,
    bound: f32,
    loudest: Cell<f32>,
}

impl EventFuzz {
    fn new(bundle: &TestBundle, bound: f32) -> Result<Self> {
        let module = Arc::new(Module::load(&bundle.path)?);
        let narrow = Setup::new(SR, MAX);
        let wide = Setup { precision: Precision::F64, ..narrow };
        let mut a = Plugin::new(Arc::clone(&module))?;
        a.start(narrow)?;
        let mut b = Plugin::new(module)?;
        ensure!(b.can_process_f64(), "the plugin does not process 64-bit samples");
        b.start(wide)?;
        let params = a.parameters();
        ensure!(!params.is_empty(), "no parameters");
        Ok(Self {
            plugins: [RefCell::new(a), RefCell::new(b)],
            setups: [narrow, wide],
            params,
            noise: input_noise(),
            bound,
            loudest: Cell::new(0.0),
        })
    }

    fn check_output(&self, plugin: &Plugin, what: &str) -> Result<()> {
        let mut loudest = self.loudest.get();
        for s in plugin.output().iter().flatten() {
            ensure!(s.is_finite(), "a non-finite sample {what}");
            loudest = loudest.max(s.abs());
        }
        ensure!(loudest <= self.bound, "a sample of {loudest} {what}, above {}", self.bound);
        self.loudest.set(loudest);
        ensure!(!plugin.wrote_past_the_maximum(), "wrote past maxSamplesPerBlock {what}");
        Ok(())
    }

    fn check(&self, stream: &StreamCase, tally: &Tally) -> Result<()> {
        let which = usize::from(stream.wide);
        let mut plugin = self.plugins[which].borrow_mut();
        tally.streams.set(tally.streams.get() + 1);
        for (b, block) in stream.blocks.iter().enumerate() {
            let frames = block.frames;
            let notes: Vec<NoteEvent> = block
                .notes
                .iter()
                .map(|n| NoteEvent {
                    offset: n.offset.at(frames),
                    pitch: n.pitch,
                    velocity: n.velocity,
                    on: n.on,
                    channel: n.channel,
                })
                .collect();
            let points: Vec<ParamPoint> = block
                .points
                .iter()
                .map(|p| ParamPoint {
                    id: match &p.id {
                        ParamId::Known(i) => i.get(&self.params).id,
                        ParamId::Unknown(id) => *id,
                    },
                    offset: p.offset.at(frames),
                    value: p.value,
                })
                .collect();
            let input = &self.noise[..frames];
            let result = if block.hostile == Hostile::default() && block.buffers != Buffers::NoBuses {
                plugin.process_audio_with(frames, &[&[input, input]], &notes, &points, block.buffers).map(|_| ())
            } else {
                plugin.process_hostile(frames, &notes, &points, block.buffers, block.hostile).map(|_| ())
            };
            tally.events.set(tally.events.get() + (notes.len() + points.len()) as u64);
            tally.count(!refused(result)?);
            self.check_output(&plugin, &format!("in block {b}"))?;
        }
        // A well-formed block plays: every parameter back at its default, a note (the
        // effect plays its input).
        let defaults: Vec<ParamPoint> =
            self.params.iter().map(|p| ParamPoint { id: p.id, offset: 0, value: p.default_normalized }).collect();
        let (frames, mut level) = (MAX / 2, 0.0);
        let input = &self.noise[..frames];
        for i in 0..2 {
            let (notes, points) =
                if i == 0 { (vec![NoteEvent::on(0, 60, 0.8)], &defaults[..]) } else { (vec![], &[][..]) };
            let out = plugin.process_audio(frames, &[&[input, input]], &notes, points)?;
            level = rms(&out[0]);
            self.check_output(&plugin, "after the stream")?;
        }
        ensure!(level > 0.001, "silent after the stream (level {level:.6})");
        // Now and then a restart, which silences every voice the streams left playing.
        if stream.restart {
            plugin.stop();
            plugin.start(self.setups[which])?;
        }
        plugin.idle()?;
        Ok(())
    }

    fn fuzz(&self, name: &str) -> Result<()> {
        let tally = Tally::new(format!("{name} event streams"));
        // Streams of 1 to 12 blocks, 6.5 on average: enough for `cases()` blocks.
        let result = run(cases().div_ceil(6), stream_case(), |stream| self.check(&stream, &tally));
        tally.report();
        eprintln!("fuzz: {name}: loudest sample {:.3}", self.loudest.get());
        result
    }
}

#[test]
fn synth_event_streams_play_finite_bounded_output() -> Result<()> {
    EventFuzz::new(&TestBundle::synth()?, SYNTH_BOUND)?.fuzz("TrioSynth")
}

#[test]
fn echo_event_streams_play_finite_bounded_output() -> Result<()> {
    EventFuzz::new(&TestBundle::echo()?, ECHO_BOUND)?.fuzz("TrioEcho")
}

// ---- build.yaml ----------------------------------------------------------------------

/// Values for a `key: value` line: wrong types, empty, odd YAML, bad paths, long texts.
const YAML_VALUES: &[&str] = &[
    "",
    "~",
    "null",
    "[]",
    "{}",
    "[a, b]",
    "{a: 1}",
    "0",
    "-1",
    "1e99",
    ".nan",
    ".inf",
    "true",
    "no",
    "''",
    "'quoted'",
    "\"tab\\tand\\u0000nul\"",
    "é🎹",
    "a: b",
    "- x",
    "&anchor x",
    "*anchor",
    "*missing",
    "!!binary aGVsbG8=",
    "!!str 5",
    "!custom x",
    "|",
    ">",
    "|\n  multi\n  line",
    "'unterminated",
    "\"unterminated",
    "[unclosed",
    "{unclosed",
    "../bridge",
    "../../..",
    "/nonexistent/crate",
    "/",
    ".",
    "..",
    "rt_engine",
    "control",
    "engine",
    "Cargo.toml",
    "6A3F1C2E9B7D4E6F8A0B1C2D3E4F5061",
    "4E25D4920BB1769E571C7D6B8244C36C",
    "00000000000000000000000000000000",
    "6A3F1C2E-9B7D-4E6F-8A0B-1C2D3E4F5061",
    "{6A3F1C2E9B7D4E6F8A0B1C2D3E4F5061}",
    "6a3f1c2e9b7d4e6f8a0b1c2d3e4f50",
    "instrument",
    "effect",
    "Instrument",
    "stereo",
    "[mono]",
    "[stereo, mono]",
    "[stereo, stereo]",
    "[surround]",
    "forbid",
    "allow",
    "[trio_control_descriptor]",
    "[trio_engine_descriptor, trio_engine_descriptor]",
    "[1abc]",
    "[Fx|Delay]",
    "[' ']",
    "<<: *a",
    "# only a comment",
    "key: with: colons",
    "? complex",
    "%",
    "@reserved",
    "`backtick",
    "[&a [x, x, x, x, x, x, x, x], &b [*a, *a, *a, *a, *a, *a, *a, *a], &c [*b, *b, *b, *b, *b, *b, *b, *b], &d [*c, \
     *c, *c, *c, *c, *c, *c, *c], &e [*d, *d, *d, *d, *d, *d, *d, *d], &f [*e, *e, *e, *e, *e, *e, *e, *e]]",
];

/// Keys for a renamed line: typos, case, other sections' keys, YAML specials.
const YAML_KEYS: &[&str] = &[
    "nam",
    "Name",
    "name ",
    "\"name\"",
    "",
    "x",
    "crate",
    "hot_reload",
    "exports",
    "allocation",
    "bridge",
    "audio",
    "plugin",
    "modules",
    "kind",
    "<<",
    "? name",
    "- name",
    "名前",
];

/// Lines to insert: unknown keys at every depth, sections, documents, odd YAML.
const YAML_LINES: &[&str] = &[
    "unknown: 1",
    "  unknown: 1",
    "    unknown: 1",
    "---",
    "...",
    "%YAML 1.2",
    "- item",
    "  - item",
    "? a",
    "&x a: b",
    "<<: *x",
    "\t",
    "  \tname: tab",
    "#",
    "audio:",
    "  sidechain: true",
    "  layouts: [mono]",
    "  layouts: []",
    "  midi_input: false",
    "  bridge:",
    "    crate: ../bridge",
    "    allocation: allow",
    "    exports: []",
    "    exports: [trio_engine_descriptor, trio_engine_descriptor]",
    "    hot_reload: true",
    "plugin:",
    "modules:",
    "  name: Second",
    "  sub_categories: []",
    "\u{feff}plugin:",
];

#[derive(Clone, Debug)]
enum YamlEdit {
    DeleteLine(Index),
    DuplicateLine(Index),
    MoveLine(Index, Index),
    /// The value of a `key: value` line.
    SetValue(Index, String),
    RenameKey(Index, String),
    Indent(Index, i8),
    Insert(Index, String),
    Truncate(Index),
    Byte(ByteEdit),
}

#[derive(Clone, Debug)]
enum YamlCase {
    Edits {
        seed: Index,
        edits: Vec<YamlEdit>,
    },
    Random(Vec<u8>),
    /// Random text from YAML's alphabet.
    YamlLike(String),
}

fn yaml_case() -> impl Strategy<Value = YamlCase> {
    let value = prop_oneof![
        6 => select(YAML_VALUES).prop_map(str::to_owned),
        2 => vec(any::<char>(), 0..16).prop_map(|c| c.into_iter().collect()),
        1 => (1usize..100_000).prop_map(|n| "x".repeat(n)),
    ];
    let key = prop_oneof![3 => select(YAML_KEYS).prop_map(str::to_owned), 1 => vec(any::<char>(), 0..8).prop_map(|c| c.into_iter().collect())];
    let byte_edit = byte_edit();
    let edit = prop_oneof![
        2 => any::<Index>().prop_map(YamlEdit::DeleteLine),
        2 => any::<Index>().prop_map(YamlEdit::DuplicateLine),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| YamlEdit::MoveLine(a, b)),
        8 => (any::<Index>(), value).prop_map(|(i, v)| YamlEdit::SetValue(i, v)),
        3 => (any::<Index>(), key).prop_map(|(i, k)| YamlEdit::RenameKey(i, k)),
        2 => (any::<Index>(), -4i8..=4).prop_map(|(i, by)| YamlEdit::Indent(i, by)),
        3 => (any::<Index>(), select(YAML_LINES).prop_map(str::to_owned)).prop_map(|(i, l)| YamlEdit::Insert(i, l)),
        1 => any::<Index>().prop_map(YamlEdit::Truncate),
        2 => byte_edit.prop_map(YamlEdit::Byte),
    ];
    prop_oneof![
        20 => (any::<Index>(), vec(edit, 1..4)).prop_map(|(seed, edits)| YamlCase::Edits { seed, edits }),
        1 => vec(any::<u8>(), 0..1_024).prop_map(YamlCase::Random),
        1 => text_from("abcdefkmnprstuy_:-[]{}#&*!|>'\"?%@,. \n\t0123456789", 300).prop_map(YamlCase::YamlLike),
    ]
}

/// Splits at line ends, keeping none.
fn lines_of(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect()
}

/// Whether `text` stays on its line: no line break, nor any other control character (the
/// parser may count those as line breaks).
fn on_one_line(text: &str) -> bool {
    !text.chars().any(char::is_control)
}

/// The key of a `key: value` line, and where its value starts.
fn key_of(line: &[u8]) -> Option<(String, usize)> {
    let text = std::str::from_utf8(line).ok()?;
    let colon = text.find(": ").or_else(|| text.strip_suffix(':').map(str::len))?;
    let key = text[..colon].trim().trim_start_matches("- ").to_owned();
    (!key.is_empty() && !key.starts_with('#')).then_some((key, colon))
}

/// The field a single edit changed: its line (from 1), its section's path, and its key
/// (before and after, for a renamed one).
#[derive(Debug)]
struct EditedField {
    line: u64,
    section: String,
    keys: Vec<String>,
}

impl EditedField {
    fn new(lines: &[Vec<u8>], index: usize, keys: Vec<String>) -> Self {
        let indent = |l: &[u8]| l.iter().take_while(|&&b| b == b' ').count();
        let mut section = Vec::new();
        let mut depth = indent(&lines[index]);
        for line in lines[..index].iter().rev() {
            if depth == 0 {
                break;
            }
            if let Some((key, _)) = key_of(line).filter(|_| indent(line) < depth) {
                depth = indent(line);
                section.insert(0, key);
            }
        }
        Self { line: index as u64 + 1, section: section.join("."), keys }
    }

    /// Whether a problem at `line` saying `message` points at this field: at its line, by
    /// its path or key, or (noticed there or below) as a syntax error or by its section (a
    /// merge key `<<` puts the fields it merges in the section).
    fn named_by(&self, line: u64, message: &str) -> bool {
        let path = |key: &str| if self.section.is_empty() { key.to_owned() } else { format!("{}.{key}", self.section) };
        line == self.line
            || self
                .keys
                .iter()
                .filter(|k| !k.is_empty())
                .any(|k| message.contains(&path(k)) || message.contains(&format!("`{k}`")))
            || (line >= self.line && message.starts_with("not valid YAML: "))
            || (line >= self.line && !self.section.is_empty() && message.starts_with(&format!("{}:", self.section)))
    }
}

/// Whether a message names a field of the manifest by its path (`audio.layouts`).
fn names_a_field(message: &str) -> bool {
    ["plugin.", "audio.", "modules."].iter().any(|section| message.contains(section))
}

/// The two examples' manifests, each in a scratch folder beside links to its crates.
struct ManifestFuzz {
    seeds: Vec<(PathBuf, Vec<u8>)>,
    scratch: PathBuf,
}

impl ManifestFuzz {
    fn new() -> Result<Self> {
        let root = trio_xtask::framework_root();
        let scratch = scratch_dir("manifest-fuzz")?;
        let mut seeds = Vec::new();
        for (name, folder, crates) in [
            ("synth", root.clone(), ["rt_engine", "control"]),
            ("echo", root.join("examples/trio_echo"), ["engine", "control"]),
        ] {
            let dir = scratch.join(name);
            std::fs::create_dir_all(&dir)?;
            for krate in crates {
                std::os::unix::fs::symlink(folder.join(krate), dir.join(krate))
                    .with_context(|| format!("linking {}", dir.join(krate).display()))?;
            }
            let file = dir.join("build.yaml");
            let text = std::fs::read(folder.join("build.yaml"))?;
            std::fs::write(&file, &text)?;
            Manifest::load(&file).with_context(|| format!("the example {} does not load", file.display()))?;
            seeds.push((file, text));
        }
        Ok(Self { seeds, scratch })
    }

    /// The file's bytes, and the key whose line the edit changed (for a single edit).
    fn apply(&self, case: &YamlCase) -> (usize, Vec<u8>, Option<EditedField>) {
        let (seed, edits) = match case {
            YamlCase::Random(bytes) => return (0, bytes.clone(), None),
            YamlCase::YamlLike(text) => return (1, text.clone().into_bytes(), None),
            YamlCase::Edits { seed, edits } => (seed.index(self.seeds.len()), edits),
        };
        let mut bytes = self.seeds[seed].1.clone();
        let mut field = None;
        for edit in edits {
            let mut lines = lines_of(&bytes);
            let n = lines.len();
            match edit {
                YamlEdit::DeleteLine(i) => {
                    lines.remove(i.index(n));
                }
                YamlEdit::DuplicateLine(i) => {
                    let i = i.index(n);
                    let line = lines[i].clone();
                    lines.insert(i, line);
                }
                YamlEdit::MoveLine(a, b) => {
                    let line = lines.remove(a.index(n));
                    lines.insert(b.index(n), line);
                }
                YamlEdit::SetValue(i, value) => {
                    let i = i.index(n);
                    if let Some((key, colon)) = key_of(&lines[i]) {
                        // A field's own value (not a section's), replaced within its line.
                        let rest = String::from_utf8_lossy(&lines[i][colon + 1..]).trim().to_owned();
                        let leaf = !rest.is_empty() && !rest.starts_with('#') && on_one_line(value);
                        let mut line = lines[i][..colon].to_vec();
                        line.extend_from_slice(b": ");
                        line.extend_from_slice(value.as_bytes());
                        lines[i] = line;
                        field = leaf.then(|| EditedField::new(&lines, i, vec![key]));
                    }
                }
                YamlEdit::RenameKey(i, new) => {
                    let i = i.index(n);
                    if let Some((old, colon)) = key_of(&lines[i]) {
                        let line = &lines[i];
                        let indent = line.iter().take_while(|&&b| b == b' ').count();
                        let mut renamed = line[..indent].to_vec();
                        renamed.extend_from_slice(new.as_bytes());
                        renamed.extend_from_slice(&line[colon..]);
                        lines[i] = renamed;
                        field = on_one_line(new).then(|| EditedField::new(&lines, i, vec![old, new.trim().to_owned()]));
                    }
                }
                YamlEdit::Indent(i, by) => {
                    let line = &mut lines[i.index(n)];
                    if *by > 0 {
                        line.splice(0..0, std::iter::repeat_n(b' ', *by as usize));
                    } else {
                        let spaces = line.iter().take_while(|&&b| b == b' ').count();
                        line.drain(..spaces.min(by.unsigned_abs() as usize));
                    }
                }
                YamlEdit::Insert(i, line) => lines.insert(i.index(n + 1), line.clone().into_bytes()),
                YamlEdit::Truncate(i) => {
                    bytes.truncate(i.index(bytes.len() + 1));
                    continue;
                }
                YamlEdit::Byte(edit) => {
                    apply_byte_edit(&mut bytes, edit);
                    continue;
                }
            }
            bytes = lines.join(&b'\n');
        }
        // Which line a key is on is only known after a single edit.
        (seed, bytes, if edits.len() == 1 { field } else { None })
    }

    fn check(&self, case: &YamlCase, tally: &Tally) -> Result<()> {
        let (seed, bytes, field) = self.apply(case);
        let file = &self.seeds[seed].0;
        std::fs::write(file, &bytes)?;
        let loaded = std::panic::catch_unwind(|| Manifest::load(file));
        let shown = || String::from_utf8_lossy(&bytes[..bytes.len().min(3_000)]).into_owned();
        let Ok(loaded) = loaded else {
            tally.crashes.set(tally.crashes.get() + 1);
            bail!("loading the manifest panicked:\n{}", shown());
        };
        tally.count(loaded.is_ok());
        match loaded {
            Ok(manifest) => check_manifest(&manifest).with_context(|| format!("accepted:\n{}", shown())),
            Err(e) => {
                let message = format!("{e:#}");
                ensure!(
                    message.contains(&file.display().to_string()),
                    "an error that does not name the file: {message}"
                );
                let Some(problems) = e.downcast_ref::<ManifestError>() else { return Ok(()) };
                ensure!(!problems.problems.is_empty(), "an error with no problem in it");
                let lines = lines_of(&bytes).len() as u64;
                for p in &problems.problems {
                    ensure!(!p.message.trim().is_empty(), "a problem without a message: {message}");
                    ensure!(
                        (1..=lines + 1).contains(&p.pos.line),
                        "a problem at line {}, of {lines}: {message}",
                        p.pos.line
                    );
                }
                if let Some(field) = field {
                    // About the edited field, or (the edit conflicts with another field)
                    // each about a field it names.
                    let named = problems.problems.iter().any(|p| field.named_by(p.pos.line, &p.message))
                        || problems.problems.iter().all(|p| names_a_field(&p.message));
                    ensure!(
                        named,
                        "the problem with {field:?} is reported neither at its line nor by name:\n{message}\n\nin:\n{}",
                        shown()
                    );
                }
                Ok(())
            }
        }
    }

    fn fuzz(&self) -> Result<()> {
        let tally = Tally::new("build.yaml");
        let result = run(cases(), yaml_case(), |case| self.check(&case, &tally));
        tally.report();
        result
    }
}

impl Drop for ManifestFuzz {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

/// What a loaded manifest promises.
fn check_manifest(m: &Manifest) -> Result<()> {
    trio_xtask::manifest::check_plugin_name(&m.plugin.name)
        .map_err(|e| anyhow!("plugin.name {:?}: {e}", m.plugin.name))?;
    ensure!(m.plugin.class_id.0 != [0; 16], "an all-zero class id");
    ensure!(!m.plugin.vendor.trim().is_empty() && !m.plugin.version.trim().is_empty(), "an empty vendor or version");
    ensure!(!m.plugin.sub_categories.is_empty(), "no sub-category");
    for sub in &m.plugin.sub_categories {
        ensure!(!sub.trim().is_empty() && !sub.contains('|'), "sub-category {sub:?}");
    }
    ensure!(!m.audio.layouts.is_empty(), "no layout");
    if m.plugin.kind == Kind::Instrument {
        ensure!(m.audio.layouts == [LayoutName::Stereo] && !m.audio.sidechain, "an instrument with {:?}", m.audio);
    }
    ensure!(m.rt_engine.allocation == Allocation::Forbid, "an engine that may allocate");
    let mut dirs = Vec::new();
    for module in m.modules() {
        ensure!(module.crate_dir.join("Cargo.toml").is_file(), "modules.{}.crate is not a crate", module.role);
        let dir = module.crate_dir.canonicalize()?;
        ensure!(!dirs.contains(&dir), "modules.{}.crate is another module's crate", module.role);
        dirs.push(dir);
        ensure!(
            module.exports.len() == module.export_pos.len(),
            "modules.{}: exports and positions differ",
            module.role
        );
        let mut unique = module.exports.clone();
        unique.sort();
        unique.dedup();
        ensure!(unique.len() == module.exports.len(), "modules.{} exports a symbol twice", module.role);
        if let Some(descriptor) = module.role.descriptor_symbol() {
            ensure!(
                module.exports.iter().any(|e| e == descriptor),
                "modules.{} does not export {descriptor}",
                module.role
            );
        }
        ensure!(
            !module.hot_reload || module.role == trio_xtask::manifest::Role::Control,
            "hot_reload on {}",
            module.role
        );
    }
    Ok(())
}

fn apply_byte_edit(bytes: &mut Vec<u8>, edit: &ByteEdit) {
    let at = |i: &Index, len: usize| if len == 0 { 0 } else { i.index(len) };
    match edit {
        ByteEdit::Flip(i, bit) if !bytes.is_empty() => {
            let i = at(i, bytes.len());
            bytes[i] ^= 1 << bit;
        }
        ByteEdit::Set(i, b) if !bytes.is_empty() => {
            let i = at(i, bytes.len());
            bytes[i] = *b;
        }
        ByteEdit::Insert(i, b) => bytes.insert(at(i, bytes.len() + 1), *b),
        ByteEdit::Delete(i, n) if !bytes.is_empty() => {
            let i = at(i, bytes.len());
            let end = (i + usize::from(*n)).min(bytes.len());
            bytes.drain(i..end);
        }
        ByteEdit::Duplicate(i, n) if !bytes.is_empty() => {
            let i = at(i, bytes.len());
            let end = (i + usize::from(*n)).min(bytes.len());
            let copy = bytes[i..end].to_vec();
            bytes.splice(i..i, copy);
        }
        _ => {}
    }
}

#[test]
fn mutated_manifests_load_or_are_refused_with_the_file_and_field() -> Result<()> {
    ManifestFuzz::new()?.fuzz()
}
