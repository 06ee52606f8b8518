//! `trio-host`: inspect a VST3 bundle, or render notes or a MIDI file through it to WAV.
//!
//! ```text
//! trio-host info <bundle.vst3>
//! trio-host conformance <bundle.vst3>
//! trio-host render <bundle.vst3> (--midi F.mid | --notes "60@0.0+1.0,64@0.5+1.0")
//!           [--seconds S] [--sample-rate R] [--block N] [--f64] [--realtime]
//!           [--tempo BPM] [--stopped | --no-transport] [--param Title=Text]... [--out out.wav]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use trio_host::vst3::Steinberg::Vst::{BusDirections_, MediaTypes_};
use trio_host::{HostError, Module, Note, Plugin, Precision, Setup};

const USAGE: &str = "usage:
  trio-host info <bundle.vst3>
  trio-host conformance <bundle.vst3>
  trio-host render <bundle.vst3> (--midi FILE.mid | --notes \"60@0.0+1.0,64@0.5+1.0\")
            [--seconds S] [--sample-rate R] [--block N] [--f64] [--realtime]
            [--tempo BPM] [--stopped | --no-transport] [--param Title=Text]... [--out out.wav]

notes are PITCH@START+LENGTH in seconds, optionally :VELOCITY (0..1);
--seconds defaults to the end of the last note plus the plugin's tail;
--realtime processes in realtime mode, paced by the clock as a live host does (the
default is an offline render, as fast as it goes); the transport plays from 0 at
--tempo (default 120), stands still with --stopped, or is absent with --no-transport; --param sets a parameter by its
title and display text before rendering, e.g. --param \"Arpeggiator=On\"";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("trio-host: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A command-line error: a host error or a usage mistake.
enum CliError {
    Host(HostError),
    Usage(String),
    /// The command ran but what it checked does not hold.
    Failed(String),
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Host(e) => write!(f, "{e}"),
            Self::Usage(msg) => write!(f, "{msg}\n{USAGE}"),
            Self::Failed(msg) => write!(f, "{msg}"),
        }
    }
}

impl From<HostError> for CliError {
    fn from(e: HostError) -> Self {
        Self::Host(e)
    }
}

fn run(args: &[String]) -> Result<(), CliError> {
    match args.first().map(String::as_str) {
        Some("info") => match args.get(1..) {
            Some([bundle]) => info(&PathBuf::from(bundle)),
            _ => Err(CliError::Usage("info takes exactly one bundle path".into())),
        },
        Some("conformance") => match args.get(1..) {
            Some([bundle]) => conformance(&PathBuf::from(bundle)),
            _ => Err(CliError::Usage("conformance takes exactly one bundle path".into())),
        },
        Some("render") => render(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(CliError::Usage(format!("unknown command {other:?}"))),
        None => Err(CliError::Usage("no command given".into())),
    }
}

/// Runs the generic conformance suite; fails (exit status 1) if any check fails.
fn conformance(bundle: &std::path::Path) -> Result<(), CliError> {
    let report = trio_host::conformance::run(bundle)?;
    print!("{report}");
    let failed = report.failures().len();
    if failed == 0 {
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "{failed} of {} conformance checks failed on {}",
            report.checks.len(),
            bundle.display()
        )))
    }
}

fn flags_text(flags: i32, names: &[(i32, &str)]) -> String {
    let set: Vec<&str> = names.iter().filter(|(bit, _)| flags & bit != 0).map(|(_, n)| *n).collect();
    if set.is_empty() { "-".into() } else { set.join(",") }
}

fn info(bundle: &std::path::Path) -> Result<(), CliError> {
    let module = Arc::new(Module::load(bundle)?);
    let factory = module.factory_info()?;
    println!("bundle   {}", bundle.display());
    println!("library  {}", module.library_path().display());
    println!("vendor   {} <{}> {}", factory.vendor, factory.email, factory.url);
    println!("classes");
    for c in module.classes() {
        println!(
            "  {}  {:<24} {:<22} {} (version {}, {})",
            c.cid.iter().map(|b| format!("{b:02X}")).collect::<String>(),
            c.name,
            c.category,
            c.sub_categories,
            c.version,
            c.sdk_version
        );
    }
    let plugin = Plugin::new(Arc::clone(&module))?;
    println!(
        "controller {}",
        if plugin.has_separate_controller() { "separate object" } else { "the component itself" }
    );
    println!("buses");
    for (media, mname) in [(MediaTypes_::kAudio, "audio"), (MediaTypes_::kEvent, "event")] {
        for (dir, dname) in [(BusDirections_::kInput, "in"), (BusDirections_::kOutput, "out")] {
            for b in plugin.buses(media, dir) {
                println!(
                    "  {mname} {dname} {}: {:?}, {} channels, flags {:#x}",
                    b.index, b.name, b.channel_count, b.flags
                );
            }
        }
    }
    println!(
        "processing: 64-bit {}, latency {} samples, tail {} samples",
        if plugin.can_process_f64() { "yes" } else { "no" },
        plugin.latency_samples(),
        plugin.tail_samples()
    );
    let units = plugin.units();
    println!("units");
    for u in &units {
        println!("  {}: {:?} (parent {}, program list {})", u.id, u.name, u.parent, u.program_list);
    }
    use trio_host::vst3::Steinberg::Vst::ParameterInfo_::ParameterFlags_ as F;
    let names = [
        (F::kCanAutomate, "automate"),
        (F::kIsReadOnly, "read-only"),
        (F::kIsList, "list"),
        (F::kIsBypass, "bypass"),
        (F::kIsProgramChange, "program-change"),
    ];
    println!("parameters");
    for p in plugin.parameters() {
        let default = plugin.param_text(p.id, p.default_normalized).unwrap_or_default();
        let unit = units.iter().find(|u| u.id == p.unit_id).map_or("?", |u| u.name.as_str());
        println!(
            "  {:>3} {:<20} [{}] default {:<12} (normalized {:.4}) steps {} unit {:?} flags {}",
            p.id,
            p.title,
            p.units,
            default,
            p.default_normalized,
            p.step_count,
            unit,
            flags_text(p.flags, &names)
        );
    }
    let lists = plugin.program_lists();
    if !lists.is_empty() {
        println!("program lists");
        for l in lists {
            println!("  {} {:?}: {}", l.id, l.name, l.programs.join(", "));
        }
    }
    let mapped: Vec<String> =
        (0..128).filter_map(|cc| plugin.midi_cc_assignment(0, 0, cc).map(|id| format!("CC{cc}->{id}"))).collect();
    println!("midi cc  {}", if mapped.is_empty() { "-".into() } else { mapped.join(" ") });
    Ok(())
}

fn value<T: std::str::FromStr>(
    name: &str,
    text: Option<&String>,
    expected: &str,
    ok: impl Fn(&T) -> bool,
) -> Result<T, CliError> {
    let text = text.ok_or_else(|| CliError::Usage(format!("{name} needs a value")))?;
    text.parse::<T>().ok().filter(|v| ok(v)).ok_or_else(|| {
        CliError::Host(HostError::BadValue { name: name.into(), value: text.clone(), expected: expected.into() })
    })
}

fn render(args: &[String]) -> Result<(), CliError> {
    let Some(bundle) = args.first() else { return Err(CliError::Usage("render needs a bundle path".into())) };
    let (mut midi, mut notes_text, mut seconds, mut rate, mut block, mut wide, mut out) =
        (None, None, None, 48_000.0, 512usize, false, PathBuf::from("out.wav"));
    let (mut realtime, mut params) = (false, Vec::<(String, String)>::new());
    let (mut transport, mut tempo, mut stopped) = (true, None, false);
    let mut i = 1;
    while i < args.len() {
        let next = args.get(i + 1);
        match args[i].as_str() {
            "--midi" => midi = Some(PathBuf::from(next.ok_or_else(|| CliError::Usage("--midi needs a file".into()))?)),
            "--notes" => {
                notes_text = Some(next.ok_or_else(|| CliError::Usage("--notes needs a note list".into()))?.clone())
            }
            "--seconds" => {
                seconds = Some(value("--seconds", next, "a number of seconds > 0 and at most 3600", |s: &f64| {
                    *s > 0.0 && *s <= 3600.0
                })?)
            }
            "--sample-rate" => {
                rate = value("--sample-rate", next, "a sample rate in Hz, 8000 to 384000", |r: &f64| {
                    (8_000.0..=384_000.0).contains(r)
                })?
            }
            "--block" => {
                block = value("--block", next, "a block size of 1 to 8192 frames", |b: &usize| (1..=8192).contains(b))?
            }
            "--out" => out = PathBuf::from(next.ok_or_else(|| CliError::Usage("--out needs a file name".into()))?),
            "--f64" => {
                wide = true;
                i += 1;
                continue;
            }
            "--realtime" => {
                realtime = true;
                i += 1;
                continue;
            }
            "--no-transport" => {
                transport = false;
                i += 1;
                continue;
            }
            "--stopped" => {
                stopped = true;
                i += 1;
                continue;
            }
            "--tempo" => {
                tempo = Some(value("--tempo", next, "a tempo in BPM, 20 to 999", |t: &f64| (20.0..=999.0).contains(t))?)
            }
            "--param" => {
                let text = next.ok_or_else(|| CliError::Usage("--param needs Title=Text".into()))?;
                let (title, setting) = text.split_once('=').ok_or_else(|| {
                    CliError::Usage(format!(
                        "--param {text:?}: write it as Title=Text, e.g. --param \"Arpeggiator=On\""
                    ))
                })?;
                params.push((title.trim().to_owned(), setting.trim().to_owned()));
            }
            other => return Err(CliError::Usage(format!("unknown option {other:?}"))),
        }
        i += 2;
    }
    let notes: Vec<Note> = match (midi, notes_text) {
        (Some(path), None) => trio_host::read_midi_file(&path)?,
        (None, Some(text)) => trio_host::parse_notes(&text)?,
        (Some(_), Some(_)) => return Err(CliError::Usage("give either --midi or --notes, not both".into())),
        (None, None) => return Err(CliError::Usage("render needs --midi FILE or --notes LIST".into())),
    };
    let module = Arc::new(Module::load(&PathBuf::from(bundle))?);
    let mut plugin = Plugin::new(module)?;
    let infos = plugin.parameters();
    for (title, text) in &params {
        let info = infos.iter().find(|p| p.title.eq_ignore_ascii_case(title)).ok_or_else(|| {
            let titles: Vec<&str> = infos.iter().map(|p| p.title.as_str()).collect();
            CliError::Failed(format!(
                "--param {title}={text}: no parameter is titled {title:?} (there are: {})",
                titles.join(", ")
            ))
        })?;
        let value = plugin.param_from_text(info.id, text).ok_or_else(|| {
            CliError::Failed(format!("--param {title}={text}: the plugin does not accept {text:?} for {title}"))
        })?;
        plugin.set_param_normalized(info.id, value)?;
    }
    let precision = if wide { Precision::F64 } else { Precision::F32 };
    plugin.transport = transport;
    plugin.playing = !stopped;
    if let Some(bpm) = tempo {
        plugin.tempo = bpm;
    }
    plugin.start(Setup { sample_rate: rate, max_block: block, precision, offline: !realtime })?;
    let end = notes.iter().map(|n| n.start + n.length).fold(0.0f64, f64::max);
    let seconds = seconds.unwrap_or_else(|| end + f64::from(plugin.tail_samples()) / rate + 0.05);
    let frames = (seconds * rate).round() as usize;
    let started = std::time::Instant::now();
    let audio = trio_host::render_paced(&mut plugin, &notes, frames, block, realtime)?;
    let took = started.elapsed();
    trio_host::write_wav(&out, &audio, rate)?;
    let peak = audio.iter().flatten().fold(0.0f32, |p, s| p.max(s.abs()));
    println!(
        "rendered {} notes, {seconds:.2} s at {rate} Hz in blocks of {block} ({}-bit) in {:.1} ms; peak {:.3}; wrote {}",
        notes.len(),
        if wide { 64 } else { 32 },
        took.as_secs_f64() * 1e3,
        peak,
        out.display()
    );
    Ok(())
}
