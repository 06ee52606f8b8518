//! A conformance suite any Trio plugin must pass, instrument or effect: the behaviours
//! Steinberg's validator checks that a plugin (not the framework alone) can get wrong,
//! run through the real VST3 entry points of a bundle.
//!
//! Each check creates its own plugin instance from the bundle. An instrument is played a
//! chord; an effect is fed deterministic noise on its main input (and quieter noise on a
//! sidechain, if it has one). One check plays the same in two bursts with silence
//! around them, so that a plugin that sleeps through silence (`Block::set_asleep`) is
//! seen to wake the same way at any block size. The suite makes no assumption about the
//! plugin's parameters beyond what it declares.
//!
//! # Examples
//! ```no_run
//! let report = trio_host::conformance::run("target/bundle/TrioSynth.vst3".as_ref())?;
//! println!("{report}");
//! assert!(report.passed());
//! # Ok::<(), trio_host::HostError>(())
//! ```

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use vst3::Steinberg::Vst::{BusDirections_, MediaTypes_, SpeakerArr};

use crate::{Buffers, HostError, Module, NoteEvent, ParamPoint, Plugin, Precision, Setup};

/// One check's outcome.
#[derive(Clone, Debug)]
pub struct Check {
    /// What was checked.
    pub name: &'static str,
    /// `Ok` with what was seen, or `Err` with what went wrong.
    pub outcome: Result<String, String>,
}

/// Every check run on one bundle.
#[derive(Clone, Debug)]
pub struct Report {
    /// The plugin's name.
    pub plugin: String,
    /// Whether it is an effect (has a main audio input).
    pub effect: bool,
    /// The checks, in the order they ran.
    pub checks: Vec<Check>,
}

impl Report {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.outcome.is_ok())
    }

    /// The checks that failed.
    pub fn failures(&self) -> Vec<&Check> {
        self.checks.iter().filter(|c| c.outcome.is_err()).collect()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.effect { "effect" } else { "instrument" };
        writeln!(f, "conformance of {} ({kind}):", self.plugin)?;
        for c in &self.checks {
            match &c.outcome {
                Ok(detail) if detail.is_empty() => writeln!(f, "  ok    {}", c.name)?,
                Ok(detail) => writeln!(f, "  ok    {} ({detail})", c.name)?,
                Err(why) => writeln!(f, "  FAIL  {}: {why}", c.name)?,
            }
        }
        let failed = self.failures().len();
        writeln!(f, "{} checks, {} failed", self.checks.len(), failed)
    }
}

const SR: f64 = 48_000.0;
const MAX_BLOCK: usize = 512;

/// What a check returns: a detail to show, or what went wrong.
type Outcome = Result<String, String>;

fn err(e: impl fmt::Display) -> String {
    e.to_string()
}

/// What a render plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stimulus {
    /// An instrument: the chord held over the first half. An effect: noise throughout.
    Steady,
    /// The same over the third eighth and the seventh, silence around them: a plugin
    /// that sleeps while it has nothing to do starts asleep, and may fall asleep again
    /// between the two if what it holds dies away within 375 ms.
    Bursts,
}

impl Stimulus {
    /// The sample ranges that sound, of a render of `frames`; each ends before `frames`
    /// (an instrument's note-off falls inside the render).
    fn sounding(self, frames: usize) -> Vec<std::ops::Range<usize>> {
        match self {
            Stimulus::Steady => std::iter::once(0..frames / 2).collect(),
            Stimulus::Bursts => vec![frames / 4..frames * 3 / 8, frames * 3 / 4..frames * 7 / 8],
        }
    }

    /// Where each sounding range must be heard: from its start to the next one's (or
    /// the end), so that latency, a pre-delay or a release may carry it past its end.
    fn heard(self, frames: usize) -> Vec<std::ops::Range<usize>> {
        let sounding = self.sounding(frames);
        let ends = sounding.iter().skip(1).map(|r| r.start).chain([frames]);
        sounding.iter().zip(ends).map(|(r, end)| r.start..end).collect()
    }
}

/// The bundle under test.
struct Subject {
    module: Arc<Module>,
    effect: bool,
    sidechain: bool,
}

impl Subject {
    /// A plugin started at `setup`.
    fn started(&self, setup: Setup) -> Result<Plugin, String> {
        let mut plugin = Plugin::new(Arc::clone(&self.module)).map_err(err)?;
        plugin.start(setup).map_err(err)?;
        Ok(plugin)
    }

    /// Renders `frames` of the stimulus in blocks from `sizes`, returning every output
    /// channel; fails on a non-finite sample.
    fn render(
        &self,
        plugin: &mut Plugin,
        frames: usize,
        sizes: impl FnMut(usize) -> usize,
    ) -> Result<Vec<Vec<f32>>, String> {
        self.render_with(plugin, frames, sizes, Buffers::Normal, Stimulus::Steady)
    }

    /// [`Subject::render`] with a choice of buffers. A size of 0 from `sizes` is a flush:
    /// a block of 0 samples, as hosts send to deliver parameter changes.
    fn render_with(
        &self,
        plugin: &mut Plugin,
        frames: usize,
        mut sizes: impl FnMut(usize) -> usize,
        buffers: Buffers,
        stimulus: Stimulus,
    ) -> Result<Vec<Vec<f32>>, String> {
        let channels =
            plugin.buses(MediaTypes_::kAudio, BusDirections_::kOutput).first().map_or(0, |b| b.channel_count) as usize;
        let sounding = stimulus.sounding(frames);
        // An effect's input is silent outside the bursts (a steady one never is).
        let gated = |mut x: Vec<f32>| {
            if stimulus != Stimulus::Steady {
                let heard = |i: usize| sounding.iter().any(|r| r.contains(&i));
                x.iter_mut().enumerate().filter(|(i, _)| !heard(*i)).for_each(|(_, v)| *v = 0.0);
            }
            x
        };
        let main_in = if self.effect { 2 } else { 0 };
        let inputs: Vec<Vec<f32>> = (0..main_in).map(|c| gated(noise(frames, 0.25, c as u32))).collect();
        let side: Vec<Vec<f32>> =
            (0..if self.sidechain { 2 } else { 0 }).map(|c| gated(noise(frames, 0.1, 10 + c as u32))).collect();
        let chord = [60u8, 64, 67];
        let mut out = vec![Vec::with_capacity(frames); channels];
        let (mut start, mut index) = (0, 0);
        let mut flushed = false;
        while start < frames {
            let size = sizes(index);
            index += 1;
            if size == 0 && !flushed {
                plugin.process_with(0, &[], &[], buffers).map_err(|e| format!("a flush at sample {start}: {e}"))?;
                flushed = true;
                continue;
            }
            flushed = false;
            let n = size.clamp(1, MAX_BLOCK).min(frames - start);
            let mut notes = Vec::new();
            if !self.effect {
                // The chord starts and ends with each sounding range.
                for r in &sounding {
                    if (start..start + n).contains(&r.start) {
                        notes.extend(chord.iter().map(|&p| NoteEvent::on((r.start - start) as u32, p, 0.8)));
                    }
                    if (start..start + n).contains(&r.end) {
                        notes.extend(chord.iter().map(|&p| NoteEvent::off((r.end - start) as u32, p)));
                    }
                }
            }
            let main: Vec<&[f32]> = inputs.iter().map(|c| &c[start..start + n]).collect();
            let sc: Vec<&[f32]> = side.iter().map(|c| &c[start..start + n]).collect();
            let buses: Vec<&[&[f32]]> = if self.effect { vec![&main, &sc] } else { vec![] };
            let block = plugin.process_audio_with(n, &buses, &notes, &[], buffers).map_err(err)?;
            for (o, c) in out.iter_mut().zip(block) {
                if let Some(i) = c.iter().position(|s| !s.is_finite()) {
                    return Err(format!("sample {} of a channel is {}", start + i, c[i]));
                }
                o.extend_from_slice(c);
            }
            start += n;
        }
        Ok(out)
    }
}

/// Deterministic noise (an LCG), `n` samples in `-level..level`, seeded by `seed`: what
/// the suite feeds an effect, also for a plugin's own benchmarks and tests.
pub fn noise(n: usize, level: f32, seed: u32) -> Vec<f32> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (x >> 8) as f32 / (1u32 << 24) as f32 * 2.0 * level - level
        })
        .collect()
}

fn same_bits(a: &[Vec<f32>], b: &[Vec<f32>]) -> Option<usize> {
    for (x, y) in a.iter().zip(b) {
        if let Some(i) = x.iter().zip(y).position(|(p, q)| p.to_bits() != q.to_bits()) {
            return Some(i);
        }
    }
    None
}

/// Runs every check on the bundle at `bundle`.
///
/// # Errors
/// [`HostError`] when the bundle cannot be loaded at all (the checks report everything
/// else).
pub fn run(bundle: &Path) -> Result<Report, HostError> {
    let module = Arc::new(Module::load(bundle)?);
    let probe = Plugin::new(Arc::clone(&module))?;
    let plugin_name = probe.class().name.clone();
    let inputs = probe.buses(MediaTypes_::kAudio, BusDirections_::kInput);
    let effect = !inputs.is_empty();
    let sidechain = inputs.len() > 1;
    drop(probe);
    let subject = Subject { module, effect, sidechain };
    let mut checks = Vec::new();
    let mut check = |name: &'static str, f: &dyn Fn(&Subject) -> Outcome| {
        let outcome = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&subject))) {
            Ok(outcome) => outcome,
            Err(_) => Err("the check panicked".to_owned()),
        };
        checks.push(Check { name, outcome });
    };
    check("describes its buses, parameters and units consistently", &describe);
    check("every parameter's text parses back to the same text", &texts);
    check("renders the same audio at any block size", &block_sizes);
    check("wakes from silence the same way at any block size", &bursts);
    check("64-bit processing is the 32-bit render widened", &wide);
    check("in-place buffers give the same audio as separate ones", &in_place);
    check("state restores every parameter and its text", &state_round_trip);
    check("damaged states are refused and change nothing", &bad_states);
    check("parameter flushes are accepted", &flushes);
    check("suspends and resumes at another sample rate", &resume);
    check("processes on another thread than the one that set it up", &other_thread);
    check("survives terminate and initialize", &reinitialize);
    check("refuses arrangements it does not support and keeps its own", &arrangements);
    check("silence in gives silence out, flagged silent", &silence);
    Ok(Report { plugin: plugin_name, effect, checks })
}

fn describe(s: &Subject) -> Outcome {
    let plugin = Plugin::new(Arc::clone(&s.module)).map_err(err)?;
    let outs = plugin.buses(MediaTypes_::kAudio, BusDirections_::kOutput);
    let main_out = outs.first().ok_or("no audio output bus")?;
    if !(1..=2).contains(&main_out.channel_count) {
        return Err(format!("the main output has {} channels", main_out.channel_count));
    }
    if s.effect {
        let main_in = &plugin.buses(MediaTypes_::kAudio, BusDirections_::kInput)[0];
        if main_in.channel_count != main_out.channel_count {
            return Err(format!("main input {} channels, output {}", main_in.channel_count, main_out.channel_count));
        }
    } else if plugin.buses(MediaTypes_::kEvent, BusDirections_::kInput).is_empty() {
        return Err("an instrument without an event input".to_owned());
    }
    let params = plugin.parameters();
    let units = plugin.units();
    let mut ids = std::collections::HashSet::new();
    for p in &params {
        if !ids.insert(p.id) {
            return Err(format!("two parameters have id {}", p.id));
        }
        if p.title.is_empty() {
            return Err(format!("parameter {} has no title", p.id));
        }
        if !(0.0..=1.0).contains(&p.default_normalized) {
            return Err(format!("parameter {:?} has default {}", p.title, p.default_normalized));
        }
        if !units.iter().any(|u| u.id == p.unit_id) {
            return Err(format!("parameter {:?} is in unit {}, which IUnitInfo does not list", p.title, p.unit_id));
        }
        let value = plugin.param_normalized(p.id);
        if (value - p.default_normalized).abs() > 1e-9 {
            return Err(format!("parameter {:?} starts at {value}, not its default {}", p.title, p.default_normalized));
        }
    }
    // Every MIDI mapping (CC 0..=127, channel pressure 128, pitch bend 129) names a listed
    // parameter: hosts drop, and the validator fails, mappings to unlisted ids.
    let mut mapped = 0;
    for cc in 0..130 {
        if let Some(target) = plugin.midi_cc_assignment(0, 0, cc) {
            if !ids.contains(&target) {
                return Err(format!("MIDI controller {cc} maps to parameter {target}, which is not listed"));
            }
            if plugin.midi_cc_assignment(0, 9, cc) != Some(target) {
                return Err(format!("MIDI controller {cc} maps to {target} on channel 1 but not on channel 10"));
            }
            mapped += 1;
        }
    }
    Ok(format!(
        "{} parameters, {} units, {mapped} MIDI controllers mapped, {} output channels, latency {}, tail {}",
        params.len(),
        units.len(),
        main_out.channel_count,
        plugin.latency_samples(),
        plugin.tail_samples()
    ))
}

fn texts(s: &Subject) -> Outcome {
    let plugin = Plugin::new(Arc::clone(&s.module)).map_err(err)?;
    let params = plugin.parameters();
    let mut checked = 0;
    for p in params.iter().take(256) {
        let steps = if p.step_count > 0 { p.step_count } else { 8 };
        for i in 0..=steps {
            let v = f64::from(i) / f64::from(steps);
            let text = plugin.param_text(p.id, v).ok_or_else(|| format!("{:?} has no text for {v}", p.title))?;
            if text.is_empty() {
                return Err(format!("{:?} shows an empty text for {v}", p.title));
            }
            let back = plugin
                .param_from_text(p.id, &text)
                .ok_or_else(|| format!("{:?} does not parse its own text {text:?}", p.title))?;
            let again = plugin.param_text(p.id, back).unwrap_or_default();
            if again != text {
                return Err(format!(
                    "{:?}: {v} shows {text:?}, which parses to {back}, which shows {again:?}",
                    p.title
                ));
            }
            checked += 1;
        }
    }
    Ok(format!("{checked} values"))
}

fn block_sizes(s: &Subject) -> Outcome {
    same_at_any_block_size(s, 24_000, Stimulus::Steady)
}

/// Bursts with silence around them: a plugin that sleeps through the silence wakes at
/// the second burst the same way at any block size, and is heard.
fn bursts(s: &Subject) -> Outcome {
    same_at_any_block_size(s, 48_000, Stimulus::Bursts)
}

fn same_at_any_block_size(s: &Subject, frames: usize, stimulus: Stimulus) -> Outcome {
    let render = |sizes: &dyn Fn(usize) -> usize| {
        s.render_with(&mut s.started(Setup::new(SR, MAX_BLOCK))?, frames, sizes, Buffers::Normal, stimulus)
    };
    let reference = render(&|_| MAX_BLOCK)?;
    let patterns: [(&str, &dyn Fn(usize) -> usize); 5] = [
        ("1", &|_| 1),
        ("7", &|_| 7),
        ("64", &|_| 64),
        ("mixed", &|i| [1, 500, 64, 13, 512, 2, 255][i % 7]),
        ("64, each after a flush (0 samples)", &|i| if i % 2 == 0 { 0 } else { 64 }),
    ];
    for (name, sizes) in patterns {
        if let Some(i) = same_bits(&reference, &render(sizes)?) {
            return Err(format!("blocks of {name} differ from blocks of {MAX_BLOCK} from sample {i}"));
        }
    }
    for range in stimulus.heard(frames) {
        let energy: f64 = reference.iter().flat_map(|c| &c[range.clone()]).map(|&x| f64::from(x) * f64::from(x)).sum();
        if energy == 0.0 {
            return Err(format!(
                "samples {range:?} are silent, though the stimulus sounds from sample {}",
                range.start
            ));
        }
    }
    Ok(String::new())
}

fn wide(s: &Subject) -> Outcome {
    let probe = Plugin::new(Arc::clone(&s.module)).map_err(err)?;
    if !probe.can_process_f64() {
        return Ok("32-bit only".to_owned());
    }
    let frames = 12_000;
    let narrow = s.render(&mut s.started(Setup::new(SR, MAX_BLOCK))?, frames, |_| 256)?;
    let mut setup = Setup::new(SR, MAX_BLOCK);
    setup.precision = Precision::F64;
    let widened = s.render(&mut s.started(setup)?, frames, |_| 256)?;
    match same_bits(&narrow, &widened) {
        None => Ok(String::new()),
        Some(i) => Err(format!("the 64-bit render differs from sample {i}")),
    }
}

fn in_place(s: &Subject) -> Outcome {
    if !s.effect {
        return Ok("no audio input".to_owned());
    }
    let frames = 12_000;
    let separate = s.render(&mut s.started(Setup::new(SR, MAX_BLOCK))?, frames, |i| [256, 97, 512][i % 3])?;
    let shared = s.render_with(
        &mut s.started(Setup::new(SR, MAX_BLOCK))?,
        frames,
        |i| [256, 97, 512][i % 3],
        Buffers::InPlace,
        Stimulus::Steady,
    )?;
    match same_bits(&separate, &shared) {
        None => Ok(String::new()),
        Some(i) => Err(format!("in place, the output differs from sample {i}")),
    }
}

/// A value different from `current` for a parameter of `steps` steps.
fn other_value(current: f64, steps: i32, salt: usize) -> f64 {
    if steps > 0 {
        let step = 1.0 / f64::from(steps);
        let k = ((current / step).round() as i32 + 1 + salt as i32 % steps.max(1)) % (steps + 1);
        f64::from(k) * step
    } else {
        (current + 0.31 + salt as f64 * 0.017).fract()
    }
}

fn state_round_trip(s: &Subject) -> Outcome {
    let a = Plugin::new(Arc::clone(&s.module)).map_err(err)?;
    let params: Vec<_> = a.parameters().into_iter().filter(|p| p.flags & 1 != 0).collect();
    for (i, p) in params.iter().enumerate() {
        a.set_param_normalized(p.id, other_value(p.default_normalized, p.step_count, i)).map_err(err)?;
    }
    let saved = a.component_state().map_err(err)?;
    let b = Plugin::new(Arc::clone(&s.module)).map_err(err)?;
    b.set_component_state(&saved).map_err(err)?;
    for p in &params {
        // States hold plain values (readable, and stable when a range changes), so the
        // normalized value comes back through one plain -> normalized conversion: equal
        // to the last bits of a double, and shown as the same text.
        let (va, vb) = (a.param_normalized(p.id), b.param_normalized(p.id));
        let (ta, tb) = (a.param_text(p.id, va), b.param_text(p.id, vb));
        if (va - vb).abs() > 1e-12 || ta != tb {
            return Err(format!("{:?} was {va} ({ta:?}) when saved and {vb} ({tb:?}) after loading", p.title));
        }
    }
    Ok(format!("{} parameters, {} bytes", params.len(), saved.len()))
}

fn bad_states(s: &Subject) -> Outcome {
    let plugin = Plugin::new(Arc::clone(&s.module)).map_err(err)?;
    let params = plugin.parameters();
    let before: Vec<u64> = params.iter().map(|p| plugin.param_normalized(p.id).to_bits()).collect();
    let good = plugin.component_state().map_err(err)?;
    let half = good[..good.len() / 2].to_vec();
    for (what, bytes) in [
        ("an empty state", Vec::new()),
        ("a truncated state", half),
        ("bytes that are not text", vec![0xff, 0xfe, 0x00, 0x81, 0x13]),
        ("text that is not a state", b"{\"hello\": [1, 2, 3]}".to_vec()),
    ] {
        if plugin.set_component_state(&bytes).is_ok() {
            return Err(format!("{what} was accepted"));
        }
        let after: Vec<u64> = params.iter().map(|p| plugin.param_normalized(p.id).to_bits()).collect();
        if after != before {
            return Err(format!("{what} changed parameter values"));
        }
    }
    Ok(String::new())
}

fn flushes(s: &Subject) -> Outcome {
    let mut plugin = s.started(Setup::new(SR, MAX_BLOCK))?;
    let point = plugin.parameters().first().map(|p| ParamPoint { id: p.id, offset: 0, value: p.default_normalized });
    let points: Vec<ParamPoint> = point.into_iter().collect();
    for buffers in [Buffers::NoBuses, Buffers::ZeroChannels] {
        plugin.process_with(64, &[], &points, buffers).map_err(|e| format!("{buffers:?}: {e}"))?;
    }
    plugin.process_with(0, &[], &points, Buffers::Normal).map_err(|e| format!("0 samples: {e}"))?;
    s.render(&mut plugin, 2048, |_| 256)?;
    Ok(String::new())
}

fn resume(s: &Subject) -> Outcome {
    let mut plugin = s.started(Setup::new(SR, MAX_BLOCK))?;
    s.render(&mut plugin, 4800, |_| MAX_BLOCK)?;
    plugin.stop();
    plugin.start(Setup::new(44_100.0, 256)).map_err(err)?;
    let out = s.render(&mut plugin, 4410, |_| 256)?;
    let energy: f64 = out.iter().flatten().map(|&x| f64::from(x) * f64::from(x)).sum();
    if energy == 0.0 {
        return Err("silent after resuming at 44.1 kHz".to_owned());
    }
    Ok(String::new())
}

fn other_thread(s: &Subject) -> Outcome {
    let mut plugin = s.started(Setup::new(SR, MAX_BLOCK))?;
    std::thread::scope(|scope| scope.spawn(|| s.render(&mut plugin, 4800, |_| 128)).join())
        .map_err(|_| "the processing thread panicked".to_owned())??;
    plugin.idle().map_err(err)?;
    Ok(String::new())
}

fn reinitialize(s: &Subject) -> Outcome {
    let mut plugin = Plugin::new(Arc::clone(&s.module)).map_err(err)?;
    for _ in 0..3 {
        plugin.reinitialize().map_err(err)?;
    }
    plugin.start(Setup::new(SR, MAX_BLOCK)).map_err(err)?;
    s.render(&mut plugin, 4800, |_| MAX_BLOCK)?;
    Ok(String::new())
}

fn arrangements(s: &Subject) -> Outcome {
    let mut plugin = Plugin::new(Arc::clone(&s.module)).map_err(err)?;
    let six = SpeakerArr::k51;
    let ins: Vec<u64> = if s.effect { vec![six] } else { vec![] };
    if plugin.set_bus_arrangements(&ins, &[six]).is_ok() {
        return Err("a 5.1 arrangement was accepted".to_owned());
    }
    let outs = plugin.buses(MediaTypes_::kAudio, BusDirections_::kOutput);
    if outs.first().map(|b| b.channel_count) == Some(6) {
        return Err("the refused arrangement was kept".to_owned());
    }
    plugin.start(Setup::new(SR, MAX_BLOCK)).map_err(err)?;
    s.render(&mut plugin, 2048, |_| 256)?;
    Ok(String::new())
}

fn silence(s: &Subject) -> Outcome {
    let mut plugin = s.started(Setup::new(SR, MAX_BLOCK))?;
    for block in 0..20 {
        plugin.process_audio(MAX_BLOCK, &[], &[], &[]).map_err(err)?;
        let flags = plugin.silence_flags().first().copied();
        let out = plugin.output();
        if out.iter().flatten().any(|&x| x != 0.0) {
            return Err(format!("block {block} is not silent"));
        }
        let channels = out.len();
        let all = if channels >= 64 { u64::MAX } else { (1u64 << channels) - 1 };
        if flags.unwrap_or(0) & all != all {
            return Err(format!("block {block} is silent but flagged {:#x}", flags.unwrap_or(0)));
        }
    }
    Ok(String::new())
}
