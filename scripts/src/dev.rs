//! `cargo xtask dev`: the hot-reload development loop.
//!
//! 1. Builds the bundle in development mode (`cargo xtask bundle`), whose `build.json`
//!    tells the bridge to watch `target/debug/libcontrol.so`.
//! 2. Loads it in the headless test host (`trio-host`) and plays it in real time (an
//!    instrument its notes; an effect a looped WAV file given with `--input`, by default
//!    plucked tones at the notes' pitches and times): to the sound card through `cpal` when the tool was built with the
//!    `audio-device` feature and a device exists, otherwise paced by the clock into a null
//!    sink. Every session is also written to a WAV file.
//! 3. Watches the control crate's sources; on save it runs `cargo build -p <control crate>`.
//!    Cargo links the new library into place, the bridge sees it land and reloads the
//!    control module while the audio keeps playing, and prints one line per reload (module
//!    versions, milliseconds from landing to serving, deadline misses during the reload,
//!    state carried over). A build error is printed and the old module keeps playing.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use trio_host::vst3::Steinberg::Vst::{BusDirections_, MediaTypes_};
use trio_host::{Module, Note, NoteSchedule, Plugin, Setup};

use crate::bundle::{BundleOptions, bundle};
use crate::manifest::Manifest;

/// How long the source watcher waits for more saves before it starts a build.
const SETTLE: Duration = Duration::from_millis(150);

/// What `cargo xtask dev` was asked for.
#[derive(Clone, Debug)]
pub struct DevOptions {
    /// `build.yaml`.
    pub manifest: PathBuf,
    /// The workspace it belongs to.
    pub workspace: PathBuf,
    /// Stop after this many seconds (run until interrupted if `None`).
    pub seconds: Option<f64>,
    /// The WAV file the session is written to.
    pub wav: PathBuf,
    /// Notes to loop; the default is a held chord.
    pub notes: Option<Vec<Note>>,
    /// A WAV file an effect plays, looped (the default is plucked tones at the notes).
    pub input: Option<PathBuf>,
    /// Parameter settings `(title, text)` applied at the start, parsed by the plugin.
    pub params: Vec<(String, String)>,
    /// Sample rate.
    pub sample_rate: f64,
    /// Block size.
    pub block: usize,
    /// Never open a sound card, even when built with `audio-device`.
    pub null_sink: bool,
}

/// The default performance: a minor chord held for 3.5 s of every 4 s.
pub fn default_notes() -> Vec<Note> {
    [57u8, 60, 64, 69].iter().map(|&pitch| Note { pitch, start: 0.0, length: 3.5, velocity: 0.8, channel: 0 }).collect()
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_signal: libc::c_int) {
    // Relaxed: a flag polled by the render loop; nothing else is published with it.
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// Runs the dev loop until `options.seconds` pass or the user presses Ctrl-C.
///
/// # Errors
/// A bundle that does not build, a `build.yaml` whose control module has no `hot_reload`,
/// a bundle the host cannot load, a parameter setting it does not understand.
pub fn run(options: &DevOptions) -> Result<()> {
    let manifest = Manifest::load(&options.manifest)?;
    if !manifest.control.hot_reload {
        bail!(
            "{}: modules.control.hot_reload is false; set it to true for the dev loop to reload the control module",
            options.manifest.display()
        );
    }
    let workspace = options.workspace.clone();
    let control_dir = manifest.control.crate_dir.clone();
    let control_crate = crate::cargo::crate_info(&control_dir)?.package;

    println!("[dev] building the development bundle");
    let report = bundle(&BundleOptions { manifest: options.manifest.clone(), release: false, out_dir: None })?;
    let build_json = report.path.join("Contents/Resources/build.json");
    let watched = std::fs::read_to_string(&build_json)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|j| j["modules"]["control"]["watch"].as_str().map(PathBuf::from))
        .with_context(|| format!("{} names no library to watch", build_json.display()))?;

    // The bridge logs its reload lines at info level.
    let module = std::sync::Arc::new(Module::load(&report.path)?);
    let mut plugin = Plugin::new(module)?;
    plugin.start(Setup::new(options.sample_rate, options.block))?;
    apply_params(&plugin, &options.params)?;

    // SAFETY: `on_interrupt` only stores to an atomic, which is async-signal-safe.
    unsafe { libc::signal(libc::SIGINT, on_interrupt as *const () as libc::sighandler_t) };

    let (changes, changed) = mpsc::channel::<PathBuf>();
    let _source_watcher = watch_sources(&control_dir, changes)?;
    let mut sink = Sink::open(options)?;
    println!(
        "[dev] playing {} at {} Hz, {}-frame blocks, to {}; session recorded to {}",
        report.path.display(),
        options.sample_rate,
        options.block,
        sink.describe(),
        options.wav.display()
    );
    println!(
        "[dev] edit {} and save: the control module is rebuilt and reloaded from {} while this plays (Ctrl-C stops)",
        control_dir.display(),
        watched.display()
    );

    let notes = options.notes.clone().unwrap_or_else(default_notes);
    let loop_len = notes.iter().map(|n| n.start + n.length).fold(0.0, f64::max) + 0.5;
    let mut loop_frames = (loop_len * options.sample_rate) as u64;
    let inputs = plugin.buses(MediaTypes_::kAudio, BusDirections_::kInput);
    let input: Option<Vec<Vec<f32>>> = match (inputs.first(), &options.input) {
        (Some(main), Some(path)) => Some(read_wav(path, main.channel_count.max(1) as usize, options.sample_rate)?),
        (Some(main), None) => {
            Some(plucks(&notes, main.channel_count.max(1) as usize, loop_frames as usize, options.sample_rate))
        }
        (None, Some(path)) => bail!("--input {}: this plugin is an instrument, it has no audio input", path.display()),
        (None, None) => None,
    };
    if let Some(first) = input.as_ref().and_then(|i| i.first()) {
        loop_frames = first.len().max(1) as u64;
        println!(
            "[dev] the effect's input: {}",
            options.input.as_ref().map_or("plucked tones at the notes".into(), |p| p.display().to_string())
        );
    }
    let mut input_slices: Vec<&[f32]> = Vec::new();
    let mut schedule = NoteSchedule::new(&notes, options.sample_rate);
    let mut events = Vec::new();
    let mut wav = WavOut::create(&options.wav, options.sample_rate)?;
    let mut builder: Option<Build> = None;
    let mut pending: Option<(Instant, PathBuf)> = None;
    let (mut frames_done, mut late_blocks) = (0u64, 0u64);
    let start = Instant::now();
    let block_time = Duration::from_secs_f64(options.block as f64 / options.sample_rate);
    let mut last_idle = Instant::now();

    while !INTERRUPTED.load(Ordering::Relaxed) && options.seconds.is_none_or(|s| start.elapsed().as_secs_f64() < s) {
        // One block.
        let position = frames_done % loop_frames;
        if position == 0 && frames_done > 0 {
            schedule = NoteSchedule::new(&notes, options.sample_rate);
        }
        let n = options.block.min((loop_frames - position) as usize);
        events.clear();
        schedule.block(position, n, &mut events);
        let out = match &input {
            Some(channels) => {
                let at = position as usize;
                input_slices.clear();
                input_slices.extend(channels.iter().map(|c| &c[at..at + n]));
                plugin.process_audio(n, &[&input_slices], &events, &[])?
            }
            None => plugin.process(n, &events, &[])?,
        };
        wav.write(out)?;
        frames_done += n as u64;
        if !sink.push(out) {
            // Null sink: keep real time.
            let due = start + block_time.mul_f64(frames_done as f64 / options.block as f64);
            match due.checked_duration_since(Instant::now()) {
                Some(wait) => std::thread::sleep(wait),
                None if Instant::now() - due > block_time => late_blocks += 1,
                None => {}
            }
        }

        // Main-thread work of the host, about every 10 ms.
        if last_idle.elapsed() >= Duration::from_millis(10) {
            last_idle = Instant::now();
            let flags = plugin.idle()?;
            if flags != 0 {
                println!(
                    "[dev] the plugin asked the host to restart with flags {flags:#x} (parameter definitions changed)"
                );
            }
        }

        // Source changes: settle, then build (one build at a time).
        while let Ok(path) = changed.try_recv() {
            pending = Some((Instant::now(), path));
        }
        if let Some(b) = &mut builder
            && let Some(ok) = b.finished()
        {
            if !ok {
                println!("[dev] the build failed (errors above); the old control module keeps playing");
            }
            builder = None;
        }
        if builder.is_none()
            && let Some((at, path)) = &pending
            && at.elapsed() >= SETTLE
        {
            let shown = path.strip_prefix(&workspace).unwrap_or(path);
            println!("[dev] {} changed: building {control_crate}", shown.display());
            builder = Some(Build::start(&workspace, &control_crate)?);
            pending = None;
        }
    }
    wav.finish()?;
    if let Some(mut b) = builder {
        b.wait();
    }
    println!(
        "[dev] stopped after {:.1} s of audio; {late_blocks} block(s) rendered later than real time; session in {}",
        frames_done as f64 / options.sample_rate,
        options.wav.display()
    );
    Ok(())
}

/// An effect's default input: each note a plucked tone at its pitch (a sine with its
/// octave, decaying over about a third of a second), `frames` long, in `channels` channels.
pub fn plucks(notes: &[Note], channels: usize, frames: usize, sample_rate: f64) -> Vec<Vec<f32>> {
    let mut mono = vec![0.0f32; frames];
    for note in notes {
        let hz = 440.0 * 2f64.powf((f64::from(note.pitch) - 69.0) / 12.0);
        let start = (note.start * sample_rate) as usize;
        let end = (((note.start + note.length) * sample_rate) as usize).min(frames);
        for (i, sample) in mono.iter_mut().enumerate().take(end).skip(start) {
            let t = (i - start) as f64 / sample_rate;
            let w = std::f64::consts::TAU * hz * t;
            let tone = (w.sin() + 0.3 * (2.0 * w).sin()) * (-t / 0.3).exp();
            *sample += (0.25 * f64::from(note.velocity) * tone) as f32;
        }
    }
    vec![mono; channels]
}

/// Reads a WAV file as `channels` channels of f32 (a mono file fills every channel; extra
/// channels of the file are dropped).
///
/// # Errors
/// A file that is not a readable WAV file, or whose sample rate is not `sample_rate`.
pub fn read_wav(path: &Path, channels: usize, sample_rate: f64) -> Result<Vec<Vec<f32>>> {
    let mut reader = hound::WavReader::open(path)
        .with_context(|| format!("--input {}: cannot read it as a WAV file", path.display()))?;
    let spec = reader.spec();
    if f64::from(spec.sample_rate) != sample_rate {
        bail!(
            "--input {}: it is sampled at {} Hz and the session runs at {sample_rate} Hz; give --sample-rate {} or convert the file",
            path.display(),
            spec.sample_rate,
            spec.sample_rate
        );
    }
    let samples: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader.samples::<f32>().collect::<Result<_, _>>(),
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32;
            reader.samples::<i32>().map(|s| s.map(|v| v as f32 * scale)).collect::<Result<_, _>>()
        }
    }
    .with_context(|| format!("--input {}: the samples cannot be read", path.display()))?;
    let file_channels = usize::from(spec.channels.max(1));
    if samples.len() < file_channels {
        bail!("--input {}: the file holds no audio", path.display());
    }
    Ok((0..channels)
        .map(|c| samples.chunks_exact(file_channels).map(|frame| frame[c.min(file_channels - 1)]).collect())
        .collect())
}

/// Applies `title=text` settings through the plugin's own text parsing.
fn apply_params(plugin: &Plugin, params: &[(String, String)]) -> Result<()> {
    let infos = plugin.parameters();
    for (title, text) in params {
        let info = infos.iter().find(|p| p.title.eq_ignore_ascii_case(title)).with_context(|| {
            let titles: Vec<&str> = infos.iter().map(|p| p.title.as_str()).collect();
            format!("--param {title}={text}: the plugin has no parameter `{title}` (it has: {})", titles.join(", "))
        })?;
        let value = plugin
            .param_from_text(info.id, text)
            .with_context(|| format!("--param {title}={text}: the plugin does not accept `{text}` for {title}"))?;
        plugin.set_param_normalized(info.id, value)?;
    }
    Ok(())
}

/// A `cargo build` of the control crate, running in the background.
struct Build(std::process::Child);

impl Build {
    fn start(workspace: &Path, krate: &str) -> Result<Self> {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let child = std::process::Command::new(cargo)
            .current_dir(workspace)
            .args(["build", "--quiet", "--message-format", "short", "--package", krate])
            .stdin(std::process::Stdio::null())
            .spawn()
            .context("could not run cargo")?;
        Ok(Self(child))
    }

    /// `Some(success)` once it has exited.
    fn finished(&mut self) -> Option<bool> {
        match self.0.try_wait() {
            Ok(Some(status)) => Some(status.success()),
            Ok(None) => None,
            Err(_) => Some(false),
        }
    }

    fn wait(&mut self) {
        let _ = self.0.wait();
    }
}

/// Watches `dir` recursively and sends each changed source file (`.rs`, `.json`, `.toml`).
fn watch_sources(dir: &Path, changes: mpsc::Sender<PathBuf>) -> Result<notify::RecommendedWatcher> {
    use notify::Watcher as _;
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if !matches!(event.kind, notify::EventKind::Create(_) | notify::EventKind::Modify(_)) {
            return;
        }
        for path in event.paths {
            let source = matches!(path.extension().and_then(|e| e.to_str()), Some("rs" | "json" | "toml"));
            let in_target = path.components().any(|c| c.as_os_str() == "target");
            if source && !in_target {
                let _ = changes.send(path);
            }
        }
    })
    .with_context(|| format!("cannot watch {}", dir.display()))?;
    watcher.watch(dir, notify::RecursiveMode::Recursive).with_context(|| format!("cannot watch {}", dir.display()))?;
    Ok(watcher)
}

/// The session's WAV file (32-bit float), written as it plays.
struct WavOut {
    writer: Option<hound::WavWriter<std::io::BufWriter<std::fs::File>>>,
    path: PathBuf,
}

impl WavOut {
    fn create(path: &Path, sample_rate: f64) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: sample_rate as u32,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        let writer =
            hound::WavWriter::create(path, spec).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Self { writer: Some(writer), path: path.to_owned() })
    }

    fn write(&mut self, channels: &[Vec<f32>]) -> Result<()> {
        let Some(writer) = &mut self.writer else { return Ok(()) };
        let (left, right) = match channels {
            [l, r, ..] => (l, r),
            [m] => (m, m),
            [] => return Ok(()),
        };
        for (l, r) in left.iter().zip(right) {
            writer
                .write_sample(*l)
                .and_then(|()| writer.write_sample(*r))
                .with_context(|| format!("writing {}", self.path.display()))?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        if let Some(writer) = self.writer.take() {
            writer.finalize().with_context(|| format!("finishing {}", self.path.display()))?;
        }
        Ok(())
    }
}

/// Where the audio goes besides the WAV file.
enum Sink {
    /// Nothing: the render loop keeps real time by the clock.
    Null,
    #[cfg(feature = "audio-device")]
    Device(device::Device),
}

impl Sink {
    fn open(options: &DevOptions) -> Result<Self> {
        if options.null_sink {
            return Ok(Self::Null);
        }
        #[cfg(feature = "audio-device")]
        match device::Device::open(options.sample_rate, options.block) {
            Ok(device) => return Ok(Self::Device(device)),
            Err(reason) => println!("[dev] no sound card ({reason}); playing into a null sink"),
        }
        #[cfg(not(feature = "audio-device"))]
        println!("[dev] built without the `audio-device` feature: playing into a null sink (see README)");
        Ok(Self::Null)
    }

    fn describe(&self) -> String {
        match self {
            Self::Null => "a null sink (kept in real time by the clock)".to_owned(),
            #[cfg(feature = "audio-device")]
            Self::Device(d) => d.name.clone(),
        }
    }

    /// Hands a block to the device, waiting while its queue is full. `false` for the null
    /// sink (the caller keeps time).
    fn push(&mut self, _channels: &[Vec<f32>]) -> bool {
        match self {
            Self::Null => false,
            #[cfg(feature = "audio-device")]
            Self::Device(d) => {
                d.push(_channels);
                true
            }
        }
    }
}

#[cfg(feature = "audio-device")]
mod device {
    //! The sound card through `cpal`: the render loop pushes interleaved stereo into an
    //! `rtrb` queue, the device callback pops it (silence on underrun).

    use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};

    pub(super) struct Device {
        pub(super) name: String,
        queue: rtrb::Producer<f32>,
        _stream: cpal::Stream,
    }

    impl Device {
        pub(super) fn open(sample_rate: f64, block: usize) -> Result<Self, String> {
            let host = cpal::default_host();
            let device = host.default_output_device().ok_or("no default output device")?;
            let name = device.name().unwrap_or_else(|_| "the default output device".to_owned());
            let config = cpal::StreamConfig {
                channels: 2,
                sample_rate: cpal::SampleRate(sample_rate as u32),
                buffer_size: cpal::BufferSize::Default,
            };
            let (queue, mut consumer) = rtrb::RingBuffer::<f32>::new(block * 2 * 8);
            let stream = device
                .build_output_stream(
                    &config,
                    move |data: &mut [f32], _| {
                        for sample in data.iter_mut() {
                            *sample = consumer.pop().unwrap_or(0.0);
                        }
                    },
                    |e| eprintln!("[dev] audio device error: {e}"),
                    None,
                )
                .map_err(|e| e.to_string())?;
            stream.play().map_err(|e| e.to_string())?;
            Ok(Self { name, queue, _stream: stream })
        }

        pub(super) fn push(&mut self, channels: &[Vec<f32>]) {
            let (left, right) = match channels {
                [l, r, ..] => (l, r),
                [m] => (m, m),
                [] => return,
            };
            while self.queue.slots() < left.len() * 2 {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            for (l, r) in left.iter().zip(right) {
                let _ = self.queue.push(*l);
                let _ = self.queue.push(*r);
            }
        }
    }
}
