//! Helpers for the integration tests: where the built libraries are, a scratch module
//! folder laid out like a bundle's binary folder, signal analysis, and ELF patching to
//! make deliberately broken modules out of the real ones.
//!
//! The libraries are built by `cargo xtask test` before the tests run (the normal build
//! into `target/debug`, and the test-only probe build with `rt_engine/alloc-probe` and
//! `control/fault-injection`, in release mode, into `target/probes/release`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use object::{Object, ObjectSection, ObjectSymbol};

/// Which build of the modules to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Build {
    /// The normal development build.
    Normal,
    /// The test-only release build: the engine allocates in `rt_process`, the control
    /// module has fault injection.
    Probes,
    /// The normal release build (`cargo build --release -p rt_engine -p control`), for
    /// benchmarks.
    Release,
}

/// The workspace's target folder.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
    }
}

/// The folder holding `librt_engine.so` and `libcontrol.so` of `build`.
pub fn artifact_dir(build: Build) -> PathBuf {
    match build {
        Build::Normal => target_dir().join("debug"),
        Build::Probes => target_dir().join("probes/release"),
        Build::Release => target_dir().join("release"),
    }
}

/// A scratch folder laid out like a bundle's binary folder (`rt_engine.so`,
/// `control.so`), removed when dropped.
pub struct ModuleDir {
    /// The folder.
    pub path: PathBuf,
}

impl ModuleDir {
    /// Copies the built modules of `build` into a fresh folder. A fresh path per test
    /// also means each test loads its own copy of the libraries.
    pub fn new(build: Build) -> Result<Self> {
        let src = artifact_dir(build);
        let path = scratch_dir("modules")?;
        for (from, to) in [("librt_engine.so", trio_bridge::ENGINE_FILE), ("libcontrol.so", trio_bridge::CONTROL_FILE)]
        {
            let from = src.join(from);
            if !from.is_file() {
                let how = match build {
                    Build::Release => "cargo build --release -p rt_engine -p control",
                    _ => "cargo xtask test",
                };
                bail!("{} is missing: build the modules first with `{how}`", from.display());
            }
            std::fs::copy(&from, path.join(to)).with_context(|| format!("copying {}", from.display()))?;
        }
        Ok(Self { path })
    }

    /// The module paths in this folder.
    pub fn paths(&self) -> trio_bridge::ModulePaths {
        trio_bridge::ModulePaths::in_dir(&self.path)
    }

    /// The engine file.
    pub fn engine(&self) -> PathBuf {
        self.path.join(trio_bridge::ENGINE_FILE)
    }

    /// The control file.
    pub fn control(&self) -> PathBuf {
        self.path.join(trio_bridge::CONTROL_FILE)
    }
}

impl Drop for ModuleDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A bundle made by the build tool (`cargo xtask bundle`, debug build) in a scratch
/// folder, removed when dropped. Each test makes its own, so tests run in parallel and
/// each loads its own copy of the libraries, as separate hosts would.
pub struct TestBundle {
    /// The `.vst3` folder.
    pub path: PathBuf,
    /// The bundle's `moduleinfo.json`.
    pub moduleinfo: serde_json::Value,
    scratch: PathBuf,
}

impl TestBundle {
    /// Bundles the plugin of `manifest` (a `build.yaml`).
    pub fn new(manifest: &Path) -> Result<Self> {
        let scratch = scratch_dir("bundle")?;
        let report = trio_xtask::bundle::bundle(&trio_xtask::bundle::BundleOptions {
            manifest: manifest.to_owned(),
            release: false,
            out_dir: Some(scratch.clone()),
        })?;
        let info = report.path.join("Contents/Resources/moduleinfo.json");
        let moduleinfo =
            serde_json::from_slice(&std::fs::read(&info).with_context(|| format!("reading {}", info.display()))?)
                .with_context(|| format!("parsing {}", info.display()))?;
        Ok(Self { path: report.path, moduleinfo, scratch })
    }

    /// The example instrument (TrioSynth, the repository's `build.yaml`).
    pub fn synth() -> Result<Self> {
        Self::new(&trio_xtask::framework_root().join("build.yaml"))
    }

    /// The example effect (TrioEcho).
    pub fn echo() -> Result<Self> {
        Self::new(&trio_xtask::framework_root().join("examples/trio_echo/build.yaml"))
    }

    /// The plugin's name, as the bundle declares it.
    pub fn name(&self) -> String {
        self.moduleinfo["Name"].as_str().unwrap_or_default().to_owned()
    }

    /// A file in the bundle's binary folder.
    pub fn bin(&self, file: &str) -> PathBuf {
        self.path.join("Contents/x86_64-linux").join(file)
    }

    /// The bridge library (the one the host loads).
    pub fn bridge(&self) -> PathBuf {
        self.bin(&format!("{}.so", self.name()))
    }

    /// The first class's id, from `moduleinfo.json`.
    pub fn cid(&self) -> [std::ffi::c_char; 16] {
        let text = self.moduleinfo["Classes"][0]["CID"].as_str().unwrap_or_default();
        let mut cid = [0 as std::ffi::c_char; 16];
        for (i, b) in cid.iter_mut().enumerate() {
            *b = text.get(2 * i..2 * i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()).unwrap_or(0)
                as std::ffi::c_char;
        }
        cid
    }
}

impl Drop for TestBundle {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

/// Runs `f` with this process's stderr going to a file; returns `f`'s result and what was
/// written to stderr meanwhile (by any thread).
pub fn captured_stderr<T>(f: impl FnOnce() -> Result<T>) -> Result<(T, String)> {
    let path = scratch_dir("stderr")?.join("stderr.txt");
    let file = std::fs::File::create(&path)?;
    // SAFETY: descriptor calls on this process's own descriptors; fd 2 is restored before
    // this function returns.
    let saved = unsafe { libc::dup(2) };
    // SAFETY: as above.
    unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&file), 2) };
    let result = f();
    // SAFETY: as above.
    unsafe {
        libc::dup2(saved, 2);
        libc::close(saved);
    }
    let text = std::fs::read_to_string(&path)?;
    let _ = std::fs::remove_dir_all(path.parent().unwrap_or(&path));
    Ok((result?, text))
}

/// Resident set size of this process, bytes.
pub fn rss() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .context("no VmRSS in /proc/self/status")?;
    Ok(kb * 1024)
}

/// Lines of `/proc/self/maps` that belong to a staged (reloaded) control library other
/// than `serving`.
pub fn stale_mappings(serving: &Path) -> Result<Vec<String>> {
    let serving = serving.to_string_lossy().into_owned();
    Ok(std::fs::read_to_string("/proc/self/maps")?
        .lines()
        .filter(|l| l.contains("trio-reload") && !l.ends_with(&serving))
        .map(str::to_owned)
        .collect())
}

/// Arms a fault in a probe build's control library at `library` (already loaded by the
/// bridge from that path, so the same image): the next call reaching `point` performs
/// `action` (`trio::fault`'s numbers; that module exists in probe builds only). Keep the
/// returned handle while the fault matters.
pub fn arm_control_fault(library: &Path, point: u32, action: u32) -> Result<libloading::Library> {
    // SAFETY: the probe library has no initialisers beyond std's; in the fault-injection
    // build the symbol has this signature.
    unsafe {
        let lib = libloading::Library::new(library)?;
        let inject: libloading::Symbol<unsafe extern "C" fn(u32, u32)> = lib.get(b"trio_control_fault_inject\0")?;
        inject(point, action);
        Ok(lib)
    }
}

/// Makes the next `process` of the probe engine library at `library` (already loaded by
/// the bridge from that path) panic. Keep the returned handle while the fault matters.
pub fn arm_engine_panic(library: &Path) -> Result<libloading::Library> {
    const PANIC: u32 = 1; // `trio::fault::PANIC`
    // SAFETY: as `arm_control_fault`, for `trio_engine_fault_inject(u32)`.
    unsafe {
        let lib = libloading::Library::new(library)?;
        let inject: libloading::Symbol<unsafe extern "C" fn(u32)> = lib.get(b"trio_engine_fault_inject\0")?;
        inject(PANIC);
        Ok(lib)
    }
}

/// A new empty folder under the system temp folder.
pub fn scratch_dir(tag: &str) -> Result<PathBuf> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let path = std::env::temp_dir().join(format!(
        "trio-test-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&path);
    std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
    Ok(path)
}

/// File offset of the start of the dynamic symbol `name`'s data.
pub fn symbol_file_offset(bytes: &[u8], name: &str) -> Result<usize> {
    let file = object::File::parse(bytes).context("parsing ELF")?;
    let symbol =
        file.dynamic_symbols().find(|s| s.name() == Ok(name)).with_context(|| format!("no dynamic symbol {name}"))?;
    let index = symbol.section_index().with_context(|| format!("{name} has no section"))?;
    let section = file.section_by_index(index)?;
    let (start, _) = section.file_range().with_context(|| format!("{name}'s section has no file data"))?;
    Ok((symbol.address() - section.address() + start) as usize)
}

/// Overwrites the `u32` at `offset` within symbol `name` of the library at `path`.
pub fn patch_symbol_u32(path: &Path, name: &str, offset: usize, value: u32) -> Result<()> {
    let mut bytes = std::fs::read(path)?;
    let at = symbol_file_offset(&bytes, name)? + offset;
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
    std::fs::write(path, bytes)?;
    Ok(())
}

/// Overwrites the `u64` at `offset` within symbol `name` of the library at `path`.
pub fn patch_symbol_u64(path: &Path, name: &str, offset: usize, value: u64) -> Result<()> {
    let mut bytes = std::fs::read(path)?;
    let at = symbol_file_offset(&bytes, name)? + offset;
    bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
    std::fs::write(path, bytes)?;
    Ok(())
}

/// Renames dynamic symbol `name` to `new_name` (same length) in the library at `path`,
/// so the export is gone as far as `dlsym` is concerned.
pub fn rename_export(path: &Path, name: &str, new_name: &str) -> Result<()> {
    assert_eq!(name.len(), new_name.len(), "the new name must have the same length");
    let mut bytes = std::fs::read(path)?;
    let (start, end) = {
        let file = object::File::parse(&*bytes)?;
        let dynstr = file.section_by_name(".dynstr").context("no .dynstr")?;
        let (start, size) = dynstr.file_range().context(".dynstr has no file data")?;
        (start as usize, (start + size) as usize)
    };
    let needle = format!("\0{name}\0");
    let pos = bytes[start..end]
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())
        .with_context(|| format!("{name} not in .dynstr"))?;
    let at = start + pos + 1;
    bytes[at..at + name.len()].copy_from_slice(new_name.as_bytes());
    std::fs::write(path, bytes)?;
    Ok(())
}

/// Magnitude of frequency `freq` in `signal` (Hann-windowed single-bin DFT).
pub fn magnitude_at(signal: &[f32], sample_rate: f64, freq: f64) -> f64 {
    let n = signal.len() as f64;
    let (mut re, mut im) = (0.0f64, 0.0f64);
    for (i, &s) in signal.iter().enumerate() {
        let w = 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n).cos();
        let phase = 2.0 * std::f64::consts::PI * freq * i as f64 / sample_rate;
        re += f64::from(s) * w * phase.cos();
        im -= f64::from(s) * w * phase.sin();
    }
    (re * re + im * im).sqrt()
}

/// The strongest frequency in `lo..=hi`, scanned at `step` Hz and refined by a parabola.
pub fn peak_frequency(signal: &[f32], sample_rate: f64, lo: f64, hi: f64, step: f64) -> f64 {
    let bins: Vec<(f64, f64)> = (0..)
        .map(|i| lo + f64::from(i) * step)
        .take_while(|&f| f <= hi)
        .map(|f| (f, magnitude_at(signal, sample_rate, f)))
        .collect();
    let best = (0..bins.len()).max_by(|&a, &b| bins[a].1.total_cmp(&bins[b].1)).unwrap_or(0);
    if best == 0 || best + 1 >= bins.len() {
        return bins[best].0;
    }
    let (a, b, c) = (bins[best - 1].1, bins[best].1, bins[best + 1].1);
    let denom = a - 2.0 * b + c;
    let shift = if denom.abs() > 1e-12 { 0.5 * (a - c) / denom } else { 0.0 };
    bins[best].0 + shift * step
}

/// Root mean square.
pub fn rms(signal: &[f32]) -> f64 {
    if signal.is_empty() {
        return 0.0;
    }
    (signal.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / signal.len() as f64).sqrt()
}

/// Energy above `cutoff_hz`, by a first-order difference high-pass cascade (crude but
/// monotonic, enough to compare two renders).
pub fn high_band_energy(signal: &[f32], sample_rate: f64, cutoff_hz: f64) -> f64 {
    let rc = 1.0 / (2.0 * std::f64::consts::PI * cutoff_hz);
    let dt = 1.0 / sample_rate;
    let alpha = rc / (rc + dt);
    let mut stage = signal.iter().map(|&s| f64::from(s)).collect::<Vec<_>>();
    for _ in 0..4 {
        let mut out = vec![0.0; stage.len()];
        for i in 1..stage.len() {
            out[i] = alpha * (out[i - 1] + stage[i] - stage[i - 1]);
        }
        stage = out;
    }
    stage.iter().map(|x| x * x).sum()
}
