//! Many host threads at once through the bridge's VST3 surface.
//!
//! - Eight threads load the plugin the way a host that never calls `ModuleEntry` does
//!   (`GetPluginFactory`, `createInstance`, `initialize`, `terminate`), started together
//!   by a barrier, a hundred rounds. Between rounds the modules are released, so every
//!   round races the lazy first load again.
//! - While one thread processes audio and another loads states, four threads each set
//!   their own parameters with `setParamNormalized`. No value is lost: a read after a
//!   write returns that write or a value a state load put there since (never an older
//!   write of its own, nor anything nobody wrote); every read of any writer's parameter
//!   is a value some thread wrote or a state held; once the state loads stop, each
//!   writer's last value is what `getParamNormalized` returns, what `getState` saves, and
//!   what the engine plays with.

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};

use anyhow::{Result, ensure};
use integration::{TestBundle, rms};
use trio_host::{MemoryStream, Module, NoteEvent, ParameterInfo, Plugin, Setup};
use vst3::Steinberg::Vst::ParameterInfo_::ParameterFlags_;
use vst3::Steinberg::Vst::*;
use vst3::Steinberg::*;
use vst3::{ComPtr, Interface};

type GetPluginFactoryFn = unsafe extern "system" fn() -> *mut IPluginFactory;
type ModuleExitFn = unsafe extern "system" fn() -> bool;

const SR: f64 = 48_000.0;
const FRAMES: usize = 256;

/// Names of the threads in this process (`/proc/self/task`).
fn thread_names() -> Result<Vec<String>> {
    let mut names = Vec::new();
    for task in std::fs::read_dir("/proc/self/task")? {
        let comm = std::fs::read_to_string(task?.path().join("comm")).unwrap_or_default();
        names.push(comm.trim().to_owned());
    }
    Ok(names)
}

/// One thread's part of a round: a factory, an instance, `initialize`, a parameter round
/// trip with a value no other thread uses (instances share nothing), `terminate`.
fn one_round(get_factory: GetPluginFactoryFn, cid: &TUID, value: f64) -> Result<(), String> {
    // SAFETY: `GetPluginFactory` returns null or a new reference, which `from_raw` takes.
    let factory = unsafe { ComPtr::from_raw(get_factory()) }.ok_or("GetPluginFactory returned null")?;
    // SAFETY: a valid factory.
    let classes = unsafe { factory.countClasses() };
    if classes != 1 {
        return Err(format!("countClasses returned {classes}"));
    }
    let mut obj: *mut c_void = std::ptr::null_mut();
    // SAFETY: valid TUIDs and out pointer.
    let code = unsafe { factory.createInstance(cid.as_ptr(), IComponent::IID.as_ptr() as FIDString, &mut obj) };
    if code != kResultOk {
        return Err(format!("createInstance returned {code}"));
    }
    // SAFETY: on success `obj` is a new reference to an `IComponent`.
    let component = unsafe { ComPtr::<IComponent>::from_raw(obj.cast()) }.ok_or("createInstance gave null")?;
    // SAFETY: a valid component; a null host context is allowed.
    let code = unsafe { component.initialize(std::ptr::null_mut()) };
    if code != kResultOk {
        return Err(format!("initialize returned {code}"));
    }
    let controller = component.cast::<IEditController>().ok_or("the component is not an IEditController")?;
    // SAFETY: plain data, filled by the plugin.
    let mut info: vst3::Steinberg::Vst::ParameterInfo = unsafe { std::mem::zeroed() };
    // SAFETY: a valid controller and out struct.
    let code = unsafe { controller.getParameterInfo(0, &mut info) };
    if code != kResultOk {
        return Err(format!("getParameterInfo(0) returned {code}"));
    }
    // SAFETY: a valid controller.
    let (set, got) = unsafe { (controller.setParamNormalized(info.id, value), controller.getParamNormalized(info.id)) };
    if set != kResultOk || got.to_bits() != value.to_bits() {
        return Err(format!("parameter {} set to {value} ({set}) reads back as {got}", info.id));
    }
    // SAFETY: a valid, initialised component.
    let code = unsafe { component.terminate() };
    if code != kResultOk {
        return Err(format!("terminate returned {code}"));
    }
    Ok(())
}

#[test]
fn eight_threads_create_initialize_and_terminate_at_once_without_module_entry() -> Result<()> {
    const THREADS: usize = 8;
    const ROUNDS: usize = 100;
    let bundle = TestBundle::synth()?;
    let cid = bundle.cid();
    // SAFETY: our own bridge library; loading it runs only its initialisers. `ModuleEntry`
    // is deliberately never called.
    let library = unsafe { libloading::Library::new(bundle.bridge()) }?;
    // SAFETY: the VST3 entry points have these signatures; they are used only while
    // `library` is loaded (it outlives every thread below).
    let (get_factory, module_exit) = unsafe {
        (*library.get::<GetPluginFactoryFn>(b"GetPluginFactory\0")?, *library.get::<ModuleExitFn>(b"ModuleExit\0")?)
    };
    let threads_before = thread_names()?.len();
    let start = Barrier::new(THREADS);
    let end = Barrier::new(THREADS);
    let started = std::time::Instant::now();
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (start, end, cid) = (&start, &end, &cid);
                scope.spawn(move || {
                    // No early return and no panic: every thread meets every barrier.
                    let mut failures = Vec::new();
                    for round in 0..ROUNDS {
                        start.wait();
                        let value = (1 + round * THREADS + t) as f64 / (ROUNDS * THREADS + 2) as f64;
                        if let Err(e) = one_round(get_factory, cid, value) {
                            failures.push(format!("round {round}, thread {t}: {e}"));
                        }
                        // Every instance of the round is gone: release the modules, so the
                        // next round's `createInstance` calls race to load them again.
                        if end.wait().is_leader() {
                            // SAFETY: the library is loaded; no object made from it is alive.
                            if !unsafe { module_exit() } {
                                failures.push(format!("round {round}: ModuleExit returned false"));
                            }
                        }
                    }
                    failures
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|_| vec!["a thread panicked".into()])).collect()
    });
    let elapsed = started.elapsed();
    println!(
        "{ROUNDS} rounds of {THREADS} threads: {:.1} s, {:.1} ms per round",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e3 / ROUNDS as f64
    );
    ensure!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
    // The modules were released after the last round: their threads end. The control
    // workers are joined by then; the file watcher of a development bundle (`notify`)
    // only tells its threads to stop, so they may take a moment. No leak means the count
    // comes back down, where a leak would leave a few per round.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut threads_after = thread_names()?;
    while threads_after.len() > threads_before && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(1));
        threads_after = thread_names()?;
    }
    ensure!(
        threads_after.len() <= threads_before,
        "{threads_before} threads before the rounds, {} 5 s after the last ModuleExit: {threads_after:?}",
        threads_after.len()
    );
    Ok(())
}

/// Whether a host may set `p` at all: not read-only, not hidden, not the bypass switch.
fn writable(p: &ParameterInfo) -> bool {
    let flags = p.flags;
    flags & (ParameterFlags_::kIsReadOnly | ParameterFlags_::kIsHidden | ParameterFlags_::kIsBypass) == 0
        && flags & ParameterFlags_::kCanAutomate != 0
}

const WRITERS: usize = 4;
const PER_WRITER: usize = 2;
/// Writes per parameter at most (the values below stay distinct up to here).
const MAX_WRITES: usize = 1 << 20;
/// Index of every writer's last value: about 0.5, a middle setting, so the engine check
/// below plays an audible sound whatever the parameters are.
const LAST: usize = MAX_WRITES - 1;
/// Every writer value is a multiple of this: exact in `f64`, at most 0.5.
const STEP: f64 = 1.0 / (1u64 << 24) as f64;

/// The `i`-th value writer `w` writes to its parameter `j`: distinct for every
/// `(w, j, i)`, all in `(0, 0.5]`, and recognisable (see [`writer_of`]).
fn written_value(w: usize, j: usize, i: usize) -> f64 {
    (1 + (i * WRITERS + w) * PER_WRITER + j) as f64 * STEP
}

/// `Some((w, j, i))` if `x` is a value [`written_value`] makes.
fn writer_of(x: f64) -> Option<(usize, usize, usize)> {
    let n = x / STEP;
    if !(n >= 1.0 && n.fract() == 0.0 && n <= (MAX_WRITES * WRITERS * PER_WRITER) as f64) {
        return None;
    }
    let k = n as usize - 1;
    Some(((k / PER_WRITER) % WRITERS, k % PER_WRITER, k / (PER_WRITER * WRITERS)))
}

/// What `getParamNormalized` may return for writer `w`'s parameter `j`: a value that
/// writer wrote, or one a state holds.
fn is_possible(x: f64, w: usize, j: usize, state_values: &[Vec<f64>]) -> bool {
    writer_of(x).is_some_and(|(ww, jj, _)| ww == w && jj == j)
        || state_values.iter().any(|s| s[w * PER_WRITER + j].to_bits() == x.to_bits())
}

/// A new reference to `stream` as an `IBStream`.
fn stream_of(bytes: &[u8]) -> Result<ComPtr<IBStream>, String> {
    MemoryStream::new(bytes.to_vec()).to_com_ptr::<IBStream>().ok_or_else(|| "no IBStream".to_owned())
}

/// A block of the performance the audio thread plays: a chord every 40 blocks, released
/// after 30.
fn chord_at(block: usize) -> Vec<NoteEvent> {
    match block % 40 {
        0 => [48, 55, 60, 64].iter().map(|&p| NoteEvent::on(0, p, 0.8)).collect(),
        30 => [48, 55, 60, 64].iter().map(|&p| NoteEvent::off(10, p)).collect(),
        _ => Vec::new(),
    }
}

/// Restarts processing (as a host does after a setup change: every voice and smoother
/// reset), then renders a chord held for 0.8 s and released for 0.27 s.
fn restarted_render(plugin: &mut Plugin) -> Result<Vec<f32>> {
    plugin.stop();
    plugin.start(Setup::new(SR, FRAMES))?;
    let mut out = Vec::new();
    for block in 0..200 {
        let notes: Vec<NoteEvent> = match block {
            0 => [45, 57, 64, 69].iter().map(|&p| NoteEvent::on(0, p, 0.9)).collect(),
            150 => [45, 57, 64, 69].iter().map(|&p| NoteEvent::off(0, p)).collect(),
            _ => Vec::new(),
        };
        out.extend_from_slice(&plugin.process(FRAMES, &notes, &[])?[0]);
    }
    Ok(out)
}

#[test]
fn four_threads_set_parameters_while_audio_runs_and_states_load_and_no_value_is_lost() -> Result<()> {
    /// State loads at least; more while the audio or a writer has hardly started.
    const LOADS: usize = 200;
    let bundle = TestBundle::synth()?;
    let module = Arc::new(Module::load(&bundle.path)?);
    let mut plugin = Plugin::new(Arc::clone(&module))?;
    plugin.start(Setup::new(SR, FRAMES))?;
    let chosen: Vec<ParameterInfo> =
        plugin.parameters().into_iter().filter(writable).take(WRITERS * PER_WRITER).collect();
    ensure!(chosen.len() == WRITERS * PER_WRITER, "only {} writable parameters", chosen.len());
    let ids: Vec<u32> = chosen.iter().map(|p| p.id).collect();
    println!("writers' parameters: {:?}", chosen.iter().map(|p| (p.id, p.title.as_str())).collect::<Vec<_>>());

    // Three states, each with its own value for every chosen parameter (above 0.5, or a
    // list parameter's step), and the values each one leaves once loaded.
    let mut states = Vec::new();
    let mut state_values: Vec<Vec<f64>> = Vec::new();
    for k in 0..3 {
        for (n, &id) in ids.iter().enumerate() {
            plugin.set_param_normalized(id, 0.6 + 0.1 * k as f64 + 0.01 * n as f64 + 0.001)?;
        }
        states.push(plugin.component_state()?);
    }
    for state in &states {
        plugin.set_component_state(state)?;
        state_values.push(ids.iter().map(|&id| plugin.param_normalized(id)).collect());
    }
    // No state value is one a writer writes to the same parameter (a list parameter's
    // states hold its steps; the writers' values are off them but for 0.5, which is
    // another writer's).
    for values in &state_values {
        for (k, &v) in values.iter().enumerate() {
            let clash = writer_of(v).is_some_and(|(w, j, _)| w * PER_WRITER + j == k);
            ensure!(!clash, "a state holds {v} for parameter {}, a value its writer writes", ids[k]);
        }
    }
    println!("values the states leave: {state_values:?}");

    let controller = plugin.controller().clone();
    let component = plugin.component().clone();
    let start = Barrier::new(WRITERS + 2);
    let audio_stop = AtomicBool::new(false);
    let loads_done = AtomicBool::new(false);
    let blocks = AtomicU64::new(0);
    let progress: Vec<AtomicU64> = (0..WRITERS).map(|_| AtomicU64::new(0)).collect();
    let failures = Mutex::new(Vec::<String>::new());
    let fail = |text: String| failures.lock().unwrap_or_else(|p| p.into_inner()).push(text);
    let ids = &ids;
    let state_values = &state_values;

    let (finals, loads, audio_result) = std::thread::scope(|scope| {
        let audio = scope.spawn(|| {
            let plugin = &mut plugin;
            start.wait();
            let mut last = Vec::new();
            let mut b = 0;
            // No early return: the loader waits for blocks to be counted.
            while !audio_stop.load(Ordering::Acquire) {
                match plugin.process(FRAMES, &chord_at(b), &[]) {
                    Ok(out) if out.iter().flatten().all(|s| s.is_finite()) => last.extend_from_slice(&out[0]),
                    Ok(_) => fail(format!("audio block {b}: a non-finite sample")),
                    Err(e) => fail(format!("audio block {b}: {e}")),
                }
                if last.len() > 48_000 {
                    last.drain(..last.len() - 48_000);
                }
                b += 1;
                blocks.store(b as u64, Ordering::Release);
            }
            last
        });
        let loader = scope.spawn(|| {
            start.wait();
            let first_block = blocks.load(Ordering::Acquire);
            let mut n = 0;
            // Until the audio and every writer demonstrably ran during the loads.
            while n < LOADS
                || blocks.load(Ordering::Acquire) < first_block + 50
                || progress.iter().any(|p| p.load(Ordering::Acquire) < 1_000)
            {
                let bytes = &states[n % states.len()];
                match (stream_of(bytes), stream_of(bytes)) {
                    (Ok(a), Ok(b)) => {
                        // SAFETY: valid component, controller and streams.
                        let codes =
                            unsafe { (component.setState(a.as_ptr()), controller.setComponentState(b.as_ptr())) };
                        if codes != (kResultOk, kResultOk) {
                            fail(format!("load {n}: setState, setComponentState returned {codes:?}"));
                        }
                    }
                    (Err(e), _) | (_, Err(e)) => fail(e),
                }
                for (k, &id) in ids.iter().enumerate() {
                    // SAFETY: a valid controller.
                    let x = unsafe { controller.getParamNormalized(id) };
                    if !is_possible(x, k / PER_WRITER, k % PER_WRITER, state_values) {
                        fail(format!("after load {n}: parameter {id} reads {x}, which nobody wrote"));
                    }
                }
                n += 1;
            }
            loads_done.store(true, Ordering::Release);
            n
        });
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (start, progress, loads_done, controller) = (&start, &progress, &loads_done, &controller);
                scope.spawn(move || {
                    let mine = &ids[w * PER_WRITER..][..PER_WRITER];
                    let neighbour = (w + 1) % WRITERS;
                    start.wait();
                    let mut i = 0;
                    // The state loads have all returned once `loads_done` is seen: the
                    // write after that is this writer's last, and nothing overwrites it.
                    let mut last_round = false;
                    loop {
                        last_round |= loads_done.load(Ordering::Acquire) || i + 1 == LAST;
                        let n = if last_round { LAST } else { i };
                        for (j, &id) in mine.iter().enumerate() {
                            let v = written_value(w, j, n);
                            // SAFETY: a valid controller.
                            let (code, x) =
                                unsafe { (controller.setParamNormalized(id, v), controller.getParamNormalized(id)) };
                            if code != kResultOk {
                                fail(format!("writer {w}: setParamNormalized({id}, {v}) returned {code}"));
                            }
                            let own = x.to_bits() == v.to_bits();
                            let from_state =
                                state_values.iter().any(|s| s[w * PER_WRITER + j].to_bits() == x.to_bits());
                            if !(own || from_state) {
                                fail(format!(
                                    "writer {w}: parameter {id} set to {v} (write {n}) reads back as {x} ({:?})",
                                    writer_of(x)
                                ));
                            }
                        }
                        for j in 0..PER_WRITER {
                            let id = ids[neighbour * PER_WRITER + j];
                            // SAFETY: a valid controller.
                            let x = unsafe { controller.getParamNormalized(id) };
                            if !is_possible(x, neighbour, j, state_values) {
                                fail(format!("writer {w}: writer {neighbour}'s parameter {id} reads {x}"));
                            }
                        }
                        if last_round {
                            break;
                        }
                        i += 1;
                        progress[w].store(i as u64, Ordering::Release);
                    }
                    (0..PER_WRITER).map(|j| written_value(w, j, LAST)).collect::<Vec<f64>>()
                })
            })
            .collect();
        let loads = loader.join();
        let finals: Vec<Result<Vec<f64>, _>> = writers.into_iter().map(|h| h.join()).collect();
        audio_stop.store(true, Ordering::Release);
        (finals, loads, audio.join())
    });
    let audio_tail = audio_result.map_err(|_| anyhow::anyhow!("the audio thread panicked"))?;
    let loads = loads.map_err(|_| anyhow::anyhow!("the state loader panicked"))?;
    let mut last = Vec::new();
    for (w, f) in finals.into_iter().enumerate() {
        last.extend(f.map_err(|_| anyhow::anyhow!("writer {w} panicked"))?);
    }
    let writes: Vec<u64> = progress.iter().map(|p| p.load(Ordering::Relaxed)).collect();
    println!("{loads} state loads, {} audio blocks, writes per writer {writes:?}", blocks.load(Ordering::Relaxed));
    let failures = failures.into_inner().unwrap_or_else(|p| p.into_inner());
    ensure!(
        failures.is_empty(),
        "{} failures, the first ones:\n{}",
        failures.len(),
        failures[..failures.len().min(20)].join("\n")
    );
    ensure!(rms(&audio_tail) > 0.001, "the audio thread's last second is silent");

    // The last writes stand: in the controller, ...
    for (&id, &v) in ids.iter().zip(&last) {
        let x = plugin.param_normalized(id);
        ensure!(x.to_bits() == v.to_bits(), "parameter {id}: the last write was {v}, it reads {x}");
    }
    // ... in the state: a state holds plain values, so it restores a continuous
    // parameter's last write to within rounding of its mapping (far closer than any other
    // write: they are 2^-21 apart), and a list parameter's to its step ...
    let state = plugin.component_state()?;
    let mut reference = Plugin::new(Arc::clone(&module))?;
    reference.start(Setup::new(SR, FRAMES))?;
    reference.set_component_state(&state)?;
    for (p, &v) in chosen.iter().zip(&last) {
        let x = reference.param_normalized(p.id);
        let same = if p.step_count == 0 {
            (x - v).abs() <= 1e-12
        } else {
            reference.to_plain(p.id, x) == plugin.to_plain(p.id, v)
        };
        ensure!(same, "parameter {}: the last write was {v}, the saved state restores {x}", p.id);
    }
    // ... and in the engine: after a restart, it plays exactly as an engine that was given
    // the same values and nothing else.
    for p in plugin.parameters().iter().filter(|p| writable(p)) {
        reference.set_param_normalized(p.id, plugin.param_normalized(p.id))?;
    }
    let got = restarted_render(&mut plugin)?;
    let want = restarted_render(&mut reference)?;
    ensure!(rms(&want) > 0.001, "the reference render is silent");
    let first_difference = got.iter().zip(&want).position(|(a, b)| a.to_bits() != b.to_bits());
    ensure!(
        first_difference.is_none(),
        "the engine plays other values than the last ones written, from sample {first_difference:?}"
    );
    drop(reference);
    drop(plugin);
    drop(module);
    Ok(())
}
