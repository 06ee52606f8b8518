//! The three libraries working together, loaded from disk the way the bridge loads them
//! in a bundle. Build the libraries first: `cargo xtask test` does it and runs these.

use std::sync::atomic::Ordering;

use anyhow::Result;
use integration::{Build, ModuleDir, high_band_energy, peak_frequency, rms};
use synth_common::id;
use trio::abi::{Event, status};
use trio_bridge::{ControlError, Instance, LoadError, Modules, ProcessSetup};

const SR: f64 = 48_000.0;
const BLOCK: usize = 512;

fn setup() -> ProcessSetup {
    ProcessSetup { sample_rate: SR, max_block_size: BLOCK as u32, offline: false }
}

fn instance(dir: &ModuleDir) -> Result<Instance> {
    let modules = Modules::load(&dir.paths(), None)?;
    Ok(Instance::new(&modules, setup())?)
}

/// Renders `seconds` of stereo audio in `BLOCK`-sized blocks. `events` carry absolute
/// sample times; each is delivered in its block at its offset.
fn render(inst: &Instance, seconds: f64, events: &[Event]) -> (Vec<f32>, Vec<f32>) {
    let total = (seconds * SR) as usize;
    let (mut left, mut right) = (vec![0.0f32; total], vec![0.0f32; total]);
    let mut start = 0;
    while start < total {
        let n = BLOCK.min(total - start);
        let block_events: Vec<Event> = events
            .iter()
            .filter(|e| (e.time as usize) >= start && (e.time as usize) < start + n)
            .map(|e| Event { time: e.time - start as u64, ..*e })
            .collect();
        let (l, r) = (&mut left[start..start + n], &mut right[start..start + n]);
        let code = inst.process(&mut [l, r], &block_events);
        assert_eq!(code, status::OK, "process failed: {}", status::describe(code));
        start += n;
    }
    (left, right)
}

fn normalized(inst: &Instance, param: u32, text: &str) -> f64 {
    inst.parse_value(param, text).unwrap_or_else(|e| panic!("parse {text}: {e}"))
}

#[test]
fn a4_has_its_fundamental_at_440_hz() -> Result<()> {
    let dir = ModuleDir::new(Build::Normal)?;
    let inst = instance(&dir)?;
    let (left, _) = render(&inst, 1.0, &[Event::note_on(0, 69, 0.9)]);
    let tail = &left[4800..];
    assert!(rms(tail) > 0.01, "note is silent: rms {}", rms(tail));
    let f = peak_frequency(tail, SR, 400.0, 480.0, 0.5);
    assert!((f - 440.0).abs() < 1.0, "fundamental at {f} Hz");
    Ok(())
}

#[test]
fn a_chord_sounds_and_releases_to_silence_within_the_release_time() -> Result<()> {
    let dir = ModuleDir::new(Build::Normal)?;
    let inst = instance(&dir)?;
    let release_s = 0.1;
    inst.set_param_normalized(id::RELEASE, normalized(&inst, id::RELEASE, "100 ms"));
    let off = (0.5 * SR) as u64;
    let events = [
        Event::note_on(0, 60, 0.8),
        Event::note_on(0, 64, 0.8),
        Event::note_on(0, 67, 0.8),
        Event::note_off(off, 60),
        Event::note_off(off, 64),
        Event::note_off(off, 67),
    ];
    let (left, right) = render(&inst, 1.0, &events);
    let held = &left[2400..off as usize];
    assert!(rms(held) > 0.02, "chord too quiet: rms {}", rms(held));
    let silent_from = off as usize + (release_s * SR) as usize;
    let last_sound = left.iter().rposition(|&s| s != 0.0).unwrap_or(0);
    assert!(
        last_sound < silent_from,
        "sound continues {} ms after note-off; release is {} ms",
        (last_sound - off as usize) as f64 * 1000.0 / SR,
        release_s * 1000.0
    );
    assert!(right[silent_from..].iter().all(|&s| s == 0.0));
    assert_eq!(inst.block().meters.active_voices.load(Ordering::Relaxed), 0);
    Ok(())
}

#[test]
fn voice_states_and_meters_reach_the_block() -> Result<()> {
    let dir = ModuleDir::new(Build::Normal)?;
    let inst = instance(&dir)?;
    render(&inst, 0.1, &[Event::note_on(0, 60, 0.5), Event::note_on(0, 72, 1.0)]);
    let block = inst.block();
    // The notes of the voices the block shows sounding.
    let sounding = |block: &trio::block::SharedBlock| -> Vec<u32> {
        let mut notes: Vec<u32> = block
            .voices
            .iter()
            .filter(|v| v.active.load(Ordering::Relaxed) != 0)
            .map(|v| v.note.load(Ordering::Relaxed))
            .collect();
        notes.sort();
        notes
    };
    assert_eq!(block.meters.active_voices.load(Ordering::Relaxed), 2);
    assert_eq!(sounding(block), [60, 72]);
    assert!(block.meters.peak[0].load(Ordering::Relaxed) > 0.0);
    assert_eq!(block.header.sample_clock.load(Ordering::Relaxed), (0.1 * SR) as u64);
    assert!(block.stats.blocks_processed.load(Ordering::Relaxed) >= 9);
    // A voice that stops is published idle once more (the engine publishes only the
    // voices that sound or just stopped): after one release only the other note shows,
    // after both nothing does.
    render(&inst, 2.0, &[Event::note_off(0, 72)]);
    assert_eq!(sounding(block), [60]);
    assert_eq!(block.meters.active_voices.load(Ordering::Relaxed), 1);
    render(&inst, 0.1, &[Event::note_on(0, 64, 0.7)]);
    assert_eq!(sounding(block), [60, 64]);
    render(&inst, 2.0, &[Event::note_off(0, 60), Event::note_off(0, 64)]);
    assert_eq!(sounding(block), [0u32; 0]);
    assert_eq!(block.meters.active_voices.load(Ordering::Relaxed), 0);
    Ok(())
}

#[test]
fn lowering_the_cutoff_through_the_block_removes_high_frequencies() -> Result<()> {
    let dir = ModuleDir::new(Build::Normal)?;
    let bright = instance(&dir)?;
    let dark = instance(&dir)?;
    dark.set_param_normalized(id::CUTOFF, normalized(&dark, id::CUTOFF, "400 Hz"));
    let note = [Event::note_on(0, 48, 1.0)];
    let (b, _) = render(&bright, 0.5, &note);
    let (d, _) = render(&dark, 0.5, &note);
    let (eb, ed) = (high_band_energy(&b[4800..], SR, 3000.0), high_band_energy(&d[4800..], SR, 3000.0));
    assert!(ed < eb * 0.05, "high-band energy bright {eb}, dark {ed}");
    Ok(())
}

#[test]
fn notes_and_parameter_changes_take_effect_at_their_sample() -> Result<()> {
    let dir = ModuleDir::new(Build::Normal)?;
    let inst = instance(&dir)?;
    let mut left = vec![0.0f32; BLOCK];
    let mut right = vec![0.0f32; BLOCK];
    let code = inst.process(&mut [&mut left, &mut right], &[Event::note_on(137, 69, 1.0)]);
    assert_eq!(code, status::OK);
    assert!(left[..137].iter().all(|&s| s == 0.0), "sound before the note's offset");
    assert!(left[137..150].iter().any(|&s| s != 0.0), "no sound right after the note's offset");

    // A bypass switched on at offset 300 leaves the block identical up to 300 and
    // different after (the fade starts exactly there).
    let dir2 = ModuleDir::new(Build::Normal)?;
    let a = instance(&dir2)?;
    let b = instance(&dir2)?;
    let on = [Event::note_on(0, 57, 1.0)];
    let (mut la, mut ra, mut lb, mut rb) = (vec![0.0; BLOCK], vec![0.0; BLOCK], vec![0.0; BLOCK], vec![0.0; BLOCK]);
    a.process(&mut [&mut la, &mut ra], &on);
    b.process(&mut [&mut lb, &mut rb], &on);
    a.process(&mut [&mut la, &mut ra], &[]);
    b.process(&mut [&mut lb, &mut rb], &[Event::param(300, id::BYPASS, 1.0)]);
    assert_eq!(la[..300], lb[..300]);
    assert_ne!(la[300..], lb[300..]);
    assert_eq!(b.param_normalized(id::BYPASS), Some(1.0), "applied automation is published to the block");
    Ok(())
}

#[test]
fn identical_runs_are_bit_identical() -> Result<()> {
    let dir = ModuleDir::new(Build::Normal)?;
    let events: Vec<Event> = (0..24)
        .flat_map(|i| {
            let t = i * 4000;
            [
                Event::note_on(t, 40 + (i as u8 * 5) % 40, 0.5 + (i % 4) as f64 / 8.0),
                Event::note_off(t + 9000, 40 + (i as u8 * 5) % 40),
            ]
        })
        .chain((0..40).map(|i| Event::param(i * 2400 + 17, id::CUTOFF, (i % 10) as f64 / 10.0)))
        .collect::<Vec<_>>();
    let mut sorted = events.clone();
    sorted.sort_by_key(|e| e.time);
    let first = instance(&dir)?;
    let second = instance(&dir)?;
    let (l1, r1) = render(&first, 2.0, &sorted);
    let (l2, r2) = render(&second, 2.0, &sorted);
    assert!(rms(&l1) > 0.01);
    assert!(l1.iter().zip(&l2).all(|(a, b)| a.to_bits() == b.to_bits()));
    assert!(r1.iter().zip(&r2).all(|(a, b)| a.to_bits() == b.to_bits()));
    Ok(())
}

#[test]
fn the_audio_path_allocates_nothing() -> Result<()> {
    let dir = ModuleDir::new(Build::Normal)?;
    let inst = instance(&dir)?;
    let events: Vec<Event> = (0..64u8)
        .map(|n| Event::note_on(u64::from(n) * 300, 36 + n, 0.7))
        .chain([Event::param(100, id::CUTOFF, 0.3)])
        .collect();
    render(&inst, 2.0, &events);
    let stats = &inst.block().stats;
    assert!(stats.blocks_processed.load(Ordering::Relaxed) > 180);
    assert_eq!(stats.alloc_violations.load(Ordering::Relaxed), 0);
    Ok(())
}

#[test]
fn an_allocating_engine_is_caught_by_the_allocation_check() -> Result<()> {
    let dir = ModuleDir::new(Build::Probes)?;
    let inst = instance(&dir)?;
    render(&inst, 0.1, &[Event::note_on(0, 60, 1.0)]);
    let violations = inst.block().stats.alloc_violations.load(Ordering::Relaxed);
    // The probe allocates (and frees) once per block: at least one violation per block.
    assert!(violations >= 9, "only {violations} allocation violations caught");
    Ok(())
}

/// The check never prints on the audio thread (a write to stderr is a system call): the
/// probe's allocations are counted, and its render writes nothing to stderr.
#[test]
fn a_caught_allocation_prints_nothing_on_the_audio_thread() -> Result<()> {
    let dir = ModuleDir::new(Build::Probes)?;
    let inst = instance(&dir)?;
    let (violations, text) = integration::captured_stderr(|| {
        std::thread::scope(|s| {
            s.spawn(|| {
                render(&inst, 0.1, &[Event::note_on(0, 60, 1.0)]);
                inst.block().stats.alloc_violations.load(Ordering::Relaxed)
            })
            .join()
        })
        .map_err(|_| anyhow::anyhow!("the audio thread panicked"))
    })?;
    assert!(violations >= 9, "only {violations} allocation violations caught");
    assert!(!text.contains("Tried to (de)allocate"), "the audio thread printed:\n{text}");
    Ok(())
}

/// An engine panic on the audio thread is caught without an allocator call (the panic's
/// payload and exception object come from the engine library's emergency arena) and
/// without printing; the engine outputs silence until reset, and the block tells where
/// and why it panicked, for the host's main thread to log.
#[test]
fn an_engine_panic_is_caught_without_allocating_or_printing_and_noted_in_the_block() -> Result<()> {
    let dir = ModuleDir::new(Build::Probes)?;
    let inst = instance(&dir)?;
    let stats = &inst.block().stats;
    let violations = || stats.alloc_violations.load(Ordering::Relaxed);
    // The probe engine allocates once per block (the allocation check's own test): the
    // count a normal block adds is the baseline a panicking block is compared with.
    let block = |inst: &Instance| {
        let (mut l, mut r) = (vec![0.0f32; BLOCK], vec![0.0f32; BLOCK]);
        let code = inst.process(&mut [&mut l, &mut r], &[Event::note_on(0, 60, 1.0)]);
        (code, l)
    };
    block(&inst);
    let before = violations();
    block(&inst);
    let per_block = violations() - before;
    assert!(per_block > 0, "the probe engine's allocation was not counted");
    let _lib = integration::arm_engine_panic(&dir.engine())?;
    // On a thread of its own, as a host's audio thread.
    let ((code, out, made), printed) = integration::captured_stderr(|| {
        let before = violations();
        let (code, out) = std::thread::scope(|s| s.spawn(|| block(&inst)).join())
            .map_err(|_| anyhow::anyhow!("the panic crossed into the audio thread's caller"))?;
        Ok((code, out, violations() - before))
    })?;
    assert_eq!(made, 0, "the panicking block made {made} allocator call(s) (a normal block: {per_block})");
    assert_eq!(code, status::PANIC, "{}", status::describe(code));
    assert!(out.iter().all(|&s| s == 0.0), "a faulted engine outputs silence");
    assert_eq!(printed, "", "the audio thread printed");
    assert_eq!(stats.engine_panics.load(Ordering::Relaxed), 1);
    let note = stats.panic_note.read().unwrap_or_default();
    assert!(note.contains("fault.rs:") && note.contains("fault injected at point 6"), "{note}");
    Ok(())
}

fn load_error(dir: &ModuleDir) -> LoadError {
    match Modules::load(&dir.paths(), None) {
        Ok(_) => panic!("a broken module was accepted"),
        Err(e) => e,
    }
}

#[test]
fn a_module_with_another_abi_version_is_refused_naming_both_versions() -> Result<()> {
    let dir = ModuleDir::new(Build::Normal)?;
    // abi_version is at offset 8 of the descriptor.
    integration::patch_symbol_u32(&dir.control(), trio::abi::control::DESCRIPTOR, 8, 99)?;
    let err = load_error(&dir);
    let text = err.to_string();
    let expected = trio::abi::ABI_VERSION;
    assert!(matches!(err, LoadError::AbiVersion { found: 99, expected: e, .. } if e == expected), "{text}");
    assert!(text.contains("ABI version 99") && text.contains(&format!("ABI version {expected}")), "{text}");
    assert!(text.contains("control.so"), "{text}");
    Ok(())
}

#[test]
fn a_module_with_another_layout_hash_is_refused_naming_both_hashes() -> Result<()> {
    let dir = ModuleDir::new(Build::Normal)?;
    // layout_hash is at offset 16 of the descriptor.
    integration::patch_symbol_u64(&dir.engine(), trio::abi::engine::DESCRIPTOR, 16, 0x1234_5678_9abc_def0)?;
    let err = load_error(&dir);
    let text = err.to_string();
    assert!(text.contains("0x123456789abcdef0"), "{text}");
    assert!(text.contains(&format!("{:#018x}", trio::layout::LAYOUT_HASH)), "{text}");
    assert!(text.contains("rt_engine"), "{text}");
    Ok(())
}

#[test]
fn a_missing_export_is_refused_naming_the_symbol() -> Result<()> {
    let dir = ModuleDir::new(Build::Normal)?;
    integration::rename_export(&dir.engine(), "trio_engine_reset", "trio_engine_resex")?;
    let err = load_error(&dir);
    assert!(matches!(&err, LoadError::MissingSymbol { symbol, .. } if symbol == "trio_engine_reset"), "{err}");
    assert!(err.to_string().contains("`trio_engine_reset`"), "{err}");

    let dir = ModuleDir::new(Build::Normal)?;
    integration::rename_export(&dir.control(), "trio_control_save_state", "trio_control_save_stat_")?;
    let err = load_error(&dir);
    assert!(err.to_string().contains("`trio_control_save_state`"), "{err}");
    Ok(())
}

#[test]
fn files_that_are_not_modules_are_refused_with_their_path() -> Result<()> {
    let dir = ModuleDir::new(Build::Normal)?;
    std::fs::write(dir.control(), "this is not an ELF file\n".repeat(10))?;
    let err = load_error(&dir);
    assert!(matches!(err, LoadError::Open { .. }) && err.to_string().contains("not an ELF file"), "{err}");
    assert!(err.to_string().contains(&dir.control().display().to_string()), "{err}");

    let dir = ModuleDir::new(Build::Normal)?;
    let bytes = std::fs::read(dir.engine())?;
    std::fs::write(dir.engine(), &bytes[..bytes.len() / 3])?;
    let err = load_error(&dir);
    assert!(matches!(err, LoadError::Open { .. }) && err.to_string().contains("truncated"), "{err}");

    let dir = ModuleDir::new(Build::Normal)?;
    std::fs::remove_file(dir.engine())?;
    let err = load_error(&dir);
    assert!(matches!(err, LoadError::NotFound { .. }) && err.to_string().contains("rt_engine.so"), "{err}");

    // The engine and control files swapped.
    let dir = ModuleDir::new(Build::Normal)?;
    let err = match Modules::load(&trio_bridge::ModulePaths { engine: dir.control(), control: dir.engine() }, None) {
        Ok(_) => panic!("swapped modules were accepted"),
        Err(e) => e,
    };
    assert!(matches!(err, LoadError::WrongKind { .. }), "{err}");
    Ok(())
}

/// Arms a fault in the probe control library loaded from `dir` (the test's own copy).
fn arm_fault(dir: &ModuleDir, point: u32, action: u32) -> Result<libloading::Library> {
    integration::arm_control_fault(&dir.control(), point, action)
}

#[test]
fn a_panicking_control_export_returns_an_error_and_nothing_else_breaks() -> Result<()> {
    const LOAD_STATE: u32 = 2;
    const PANIC: u32 = 1;
    let dir = ModuleDir::new(Build::Probes)?;
    let inst = instance(&dir)?;
    let saved = inst.save_state()?;
    let _lib = arm_fault(&dir, LOAD_STATE, PANIC)?;
    let err = inst.load_state(&saved).expect_err("the armed panic did not happen");
    assert!(matches!(err, ControlError::Failed { code: status::PANIC, .. }), "{err}");
    assert!(err.to_string().contains("panicked"), "{err}");
    assert_eq!(inst.block().stats.control_errors.load(Ordering::Relaxed), 1);
    // The module keeps serving, and audio is unaffected.
    inst.load_state(&saved)?;
    let (left, _) = render(&inst, 0.2, &[Event::note_on(0, 60, 1.0)]);
    assert!(rms(&left) > 0.01);
    Ok(())
}

#[test]
fn a_hanging_control_export_times_out_and_audio_goes_on() -> Result<()> {
    const SAVE_STATE: u32 = 3;
    const HANG: u32 = 2;
    let dir = ModuleDir::new(Build::Probes)?;
    let modules = Modules::load(&dir.paths(), None)?;
    let inst = Instance::new(&modules, setup())?;
    modules.control.set_call_timeout(std::time::Duration::from_millis(200));
    let _lib = arm_fault(&dir, SAVE_STATE, HANG)?;
    // The call times out; the state then comes from the block (values only).
    let started = std::time::Instant::now();
    let state = inst.save_state()?;
    assert!(started.elapsed() >= std::time::Duration::from_millis(200), "the armed hang did not happen");
    assert!(state.starts_with(b"{\"format\":\"trio-param-values\""), "{}", String::from_utf8_lossy(&state));
    assert!(matches!(inst.preset_names(), Err(ControlError::WorkerGone)));
    // Parameter texts come from the block: they keep working while control is hung.
    assert_eq!(inst.format_value(id::GAIN, inst.parse_value(id::GAIN, "-6 dB")?)?, "-6.0 dB");
    let (left, _) = render(&inst, 0.2, &[Event::note_on(0, 60, 1.0)]);
    assert!(rms(&left) > 0.01);
    Ok(())
}

/// A control call that outlives its time limit and then returns (a slow module, not a
/// stuck one) must find the block it uses still mapped, even though the host dropped the
/// instance in the meantime; afterwards that module runs nothing more, and fresh modules
/// serve new instances in the same process.
#[test]
fn a_slow_control_call_that_returns_after_its_instance_is_gone_touches_nothing_freed() -> Result<()> {
    const SAVE_STATE: u32 = 3;
    const SLOW: u32 = 3;
    let dir = ModuleDir::new(Build::Probes)?;
    let modules = Modules::load(&dir.paths(), None)?;
    modules.control.set_call_timeout(std::time::Duration::from_millis(200));
    let inst = Instance::new(&modules, setup())?;
    let (left, _) = render(&inst, 0.1, &[Event::note_on(0, 60, 1.0)]);
    assert!(rms(&left) > 0.01);
    let _lib = arm_fault(&dir, SAVE_STATE, SLOW)?;
    // The call times out (the state then comes from the block, values only).
    let state = inst.save_state()?;
    assert!(state.starts_with(b"{\"format\":\"trio-param-values\""), "the armed slow call returned in time");
    // The host gives up on the instance while the call still sleeps inside the module;
    // when it wakes it writes the state from this instance's block.
    drop(inst);
    std::thread::sleep(std::time::Duration::from_millis(1500 + 500)); // the slow action sleeps 1.5 s
    // The retired module serves no new instance, with a clear error.
    let refused = Instance::new(&modules, setup()).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(!refused.is_empty(), "a hung module made a new instance");
    // The process is healthy: fresh modules make, play and save new instances.
    let fresh = Modules::load(&dir.paths(), None)?;
    let other = Instance::new(&fresh, setup())?;
    let (left, _) = render(&other, 0.2, &[Event::note_on(0, 64, 1.0)]);
    assert!(rms(&left) > 0.01);
    assert!(!other.save_state()?.is_empty());
    Ok(())
}

/// Whether this process still maps the shared-memory segment `name` (`/trio-...`).
fn segment_mapped(name: &str) -> Result<bool> {
    Ok(std::fs::read_to_string("/proc/self/maps")?.lines().any(|l| l.contains(&format!("/dev/shm{name}"))))
}

/// Idle control logic of an instance the host has switched off is not ticked at all (a
/// loaded, unused plugin wakes nothing), even while the worker wakes for another, switched
/// on instance; switched on, it is ticked on the idle grid again.
#[test]
fn idle_control_logic_of_a_switched_off_instance_is_not_ticked() -> Result<()> {
    use trio::block::state_flags::ACTIVE;
    let dir = ModuleDir::new(Build::Normal)?;
    let modules = Modules::load(&dir.paths(), None)?;
    let inst = Instance::new(&modules, setup())?;
    let other = Instance::new(&modules, setup())?;
    let ticks = || inst.block().stats.control_ticks.load(Ordering::Relaxed);
    let other_ticks = || other.block().stats.control_ticks.load(Ordering::Relaxed);
    inst.note_host_state(ACTIVE, false);
    other.note_host_state(ACTIVE, true);
    // Ticks already due, and the watch for blocks (10 checks, 20 ms apart), run out.
    std::thread::sleep(trio_bridge::IDLE_TICK_INTERVAL * 2);
    let (before, other_before) = (ticks(), other_ticks());
    std::thread::sleep(trio_bridge::IDLE_TICK_INTERVAL * 4);
    assert_eq!(ticks(), before, "idle logic of a switched-off instance was ticked");
    assert!(!inst.control_wants_ticks(), "the control logic is not idle; the check above proves nothing");
    assert!(other_ticks() > other_before, "the switched-on instance was not ticked: the worker slept throughout");
    inst.note_host_state(ACTIVE, true);
    inst.expect_blocks();
    let on = std::time::Instant::now();
    while ticks() == before {
        assert!(on.elapsed() < trio_bridge::IDLE_TICK_INTERVAL * 10, "a switched-on instance is not ticked");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Ok(())
}

/// After a module's first instance, the host's thread never waits for the control worker
/// to create or destroy an instance: with the worker stuck in a slow `create`, a new
/// instance is defined, playable and settable at once, and dropping another one returns
/// at once with its segment's name gone. Queued calls then see everything in order: the
/// slow instance keeps the value the host set before its control instance existed.
#[test]
fn the_hosts_thread_does_not_wait_for_the_worker_to_create_or_destroy() -> Result<()> {
    const CREATE: u32 = 1;
    const SLOW: u32 = 3;
    const SLOW_TIME: std::time::Duration = std::time::Duration::from_millis(1500);
    let dir = ModuleDir::new(Build::Probes)?;
    let modules = Modules::load(&dir.paths(), None)?;
    let first = Instance::new(&modules, setup())?;
    let other = Instance::new(&modules, setup())?;
    // Waits for `other`'s background creation, so the armed fault is the next one's.
    other.preset_names()?;
    let _lib = arm_fault(&dir, CREATE, SLOW)?;
    let armed = std::time::Instant::now();
    let slow = Instance::new(&modules, setup())?;
    // The worker now sleeps in `create` for 1.5 s.
    let other_segment = other.segment_name().to_owned();
    drop(other);
    let returned = armed.elapsed();
    assert!(returned < SLOW_TIME / 2, "creating one instance and dropping another took {returned:?}");
    assert!(!std::path::Path::new(&format!("/dev/shm{other_segment}")).exists(), "the dropped segment's name stays");
    assert!(segment_mapped(&other_segment)?, "the segment was unmapped before its control instance was destroyed");

    // Defined as the first instance was, with the same defaults.
    let (a, b) = (first.definitions(), slow.definitions());
    assert_eq!((&a.params, &a.cc_map, &a.raw_midi), (&b.params, &b.cc_map, &b.raw_midi));
    for p in &a.params {
        assert_eq!(slow.param_normalized(p.id), first.param_normalized(p.id), "parameter {}", p.id);
    }
    // Playable and settable before its control instance exists.
    assert!(slow.set_param_normalized(id::CUTOFF, 0.25));
    assert_eq!(slow.format_value(id::GAIN, slow.parse_value(id::GAIN, "-6 dB")?)?, "-6.0 dB");
    let (left, _) = render(&slow, 0.1, &[Event::note_on(0, 60, 1.0)]);
    assert!(rms(&left) > 0.01);
    assert!(armed.elapsed() < SLOW_TIME, "the checks above ran after the slow create ended; the test proves nothing");

    // A call waits for the creation queued before it, and sees the host's value kept.
    let state = slow.save_state()?;
    assert!(armed.elapsed() >= SLOW_TIME, "the armed slow create did not happen");
    assert_eq!(slow.param_normalized(id::CUTOFF), Some(0.25));
    first.load_state(&state)?;
    let cutoff = first.param_normalized(id::CUTOFF).unwrap_or(f64::NAN);
    assert!((cutoff - 0.25).abs() < 1e-9, "the saved state lost the host's value: {cutoff}");
    // The dropped instance's destruction ran in its turn and released the mapping.
    assert!(!segment_mapped(&other_segment)?, "{other_segment} is still mapped after the worker's queue drained");
    Ok(())
}

/// A background creation that never returns, with no call waiting for it: unloading the
/// modules gives up on the stuck worker after the call time limit instead of hanging the
/// host.
#[test]
fn a_background_creation_stuck_in_the_module_hangs_nothing() -> Result<()> {
    const CREATE: u32 = 1;
    const HANG: u32 = 2;
    const LIMIT: std::time::Duration = std::time::Duration::from_millis(300);
    let dir = ModuleDir::new(Build::Probes)?;
    let modules = Modules::load(&dir.paths(), None)?;
    modules.control.set_call_timeout(LIMIT);
    let first = Instance::new(&modules, setup())?;
    let _lib = arm_fault(&dir, CREATE, HANG)?;
    let armed = std::time::Instant::now();
    let stuck = Instance::new(&modules, setup())?;
    let (left, _) = render(&stuck, 0.1, &[Event::note_on(0, 60, 1.0)]);
    assert!(rms(&left) > 0.01, "an instance whose control instance is stuck does not play");
    let first_segment = first.segment_name().to_owned();
    drop(stuck);
    drop(first);
    let started = std::time::Instant::now();
    drop(modules);
    let unloaded = started.elapsed();
    assert!(unloaded < LIMIT * 10, "unloading waited {unloaded:?} for a stuck worker");
    // The destruction queued behind the stuck creation never ran, so nothing was freed
    // under it (and the hang did happen).
    assert!(segment_mapped(&first_segment)?, "the first instance's block was released: the create did not hang");
    assert!(armed.elapsed() >= LIMIT);
    // Fresh modules serve new instances in the same process.
    let fresh = Modules::load(&dir.paths(), None)?;
    let other = Instance::new(&fresh, setup())?;
    assert!(!other.save_state()?.is_empty());
    Ok(())
}

/// A control instance whose background creation fails leaves a working instance: calls to
/// its control logic try to create it again and, while that fails, say why; its state then
/// holds the host's values; the first call that succeeds heals it, keeping those values.
#[test]
fn a_failed_background_creation_is_reported_and_retried_and_loses_no_values() -> Result<()> {
    const CREATE: u32 = 1;
    const PANIC: u32 = 1;
    let dir = ModuleDir::new(Build::Probes)?;
    let modules = Modules::load(&dir.paths(), None)?;
    let first = Instance::new(&modules, setup())?;
    assert!(first.set_param_normalized(id::RESONANCE, 0.75));
    let project = first.save_state()?;
    let _lib = arm_fault(&dir, CREATE, PANIC)?;
    let broken = Instance::new(&modules, setup())?;
    assert!(broken.set_param_normalized(id::CUTOFF, 0.25));
    // A tick does not try again (offline renders tick every block): it waits for the
    // background creation and reports how it failed.
    let err = broken.tick(0).expect_err("a control instance that panicked in create ticked");
    for part in ["could not be created", "panicked"] {
        assert!(err.to_string().contains(part), "{err}");
    }
    // Calls try again; while that fails too, they say why.
    let _again = arm_fault(&dir, CREATE, PANIC)?;
    let err = broken.preset_names().expect_err("a control instance that panicked in create answered");
    assert!(matches!(err, ControlError::Failed { code: status::PANIC, .. }), "{err}");
    assert!(err.to_string().contains("could not be created"), "{err}");
    // The state then holds the values, read from the block.
    let _once_more = arm_fault(&dir, CREATE, PANIC)?;
    let state = broken.save_state()?;
    assert!(state.starts_with(b"{\"format\":\"trio-param-values\""), "{}", String::from_utf8_lossy(&state));
    first.load_state(&state)?;
    let cutoff = first.param_normalized(id::CUTOFF).unwrap_or(f64::NAN);
    assert!((cutoff - 0.25).abs() < 1e-9, "the saved state lost the host's value: {cutoff}");
    let (left, _) = render(&broken, 0.1, &[Event::note_on(0, 60, 1.0)]);
    assert!(rms(&left) > 0.01);
    // The fault passed: the next call creates the control instance, and the host's
    // project loads whole.
    broken.load_state(&project)?;
    let resonance = broken.param_normalized(id::RESONANCE).unwrap_or(f64::NAN);
    assert!((resonance - 0.75).abs() < 1e-9, "the project's value was not loaded: {resonance}");
    assert!(!broken.preset_names()?.is_empty());
    let state = broken.save_state()?;
    assert!(!state.starts_with(b"{\"format\":\"trio-param-values\""), "the healed instance saves values only");
    Ok(())
}

/// A development bundle opened after its control crate was rebuilt serves the newer
/// build (checked like a reload); an older or broken one leaves the bundle's copy serving.
#[test]
fn a_development_bundle_starts_with_the_newer_control_build() -> Result<()> {
    use std::time::{Duration, SystemTime};
    let dir = ModuleDir::new(Build::Normal)?;
    let variant = integration::target_dir().join("variant/debug/libcontrol.so");
    anyhow::ensure!(variant.is_file(), "{} is missing: run `cargo xtask test`", variant.display());
    let scratch = integration::scratch_dir("newest")?;
    let watched = scratch.join("libcontrol.so");
    let set_time = |path: &std::path::Path, t: SystemTime| -> Result<()> {
        std::fs::File::options().write(true).open(path)?.set_modified(t)?;
        Ok(())
    };
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    let cutoff_unit = |modules: &std::sync::Arc<Modules>| -> Result<String> {
        let inst = Instance::new(modules, setup())?;
        Ok(inst.definitions().param(id::CUTOFF).map(|p| p.unit.clone()).unwrap_or_default())
    };

    // An older build in the target folder: the bundle's copy serves.
    std::fs::copy(&variant, &watched)?;
    set_time(&watched, hour_ago)?;
    set_time(&dir.control(), SystemTime::now())?;
    let modules = Modules::load(&dir.paths(), Some(&watched))?;
    modules.stop_watching();
    assert_eq!(modules.control.current().path(), dir.control());
    assert_eq!(cutoff_unit(&modules)?, "Hz");
    drop(modules);

    // A newer one (the crate was rebuilt after bundling): it serves.
    set_time(&dir.control(), hour_ago)?;
    set_time(&watched, SystemTime::now())?;
    let modules = Modules::load(&dir.paths(), Some(&watched))?;
    modules.stop_watching();
    assert_ne!(modules.control.current().path(), dir.control());
    assert_eq!(cutoff_unit(&modules)?, "Hertz", "the newer (variant) build does not serve");
    drop(modules);

    // A newer file that is no library: refused, the bundle's copy serves.
    std::fs::write(&watched, b"half a library")?;
    set_time(&watched, SystemTime::now())?;
    let modules = Modules::load(&dir.paths(), Some(&watched))?;
    modules.stop_watching();
    assert_eq!(modules.control.current().path(), dir.control());
    assert_eq!(cutoff_unit(&modules)?, "Hz");
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}

#[test]
fn parameters_come_from_the_control_module() -> Result<()> {
    let dir = ModuleDir::new(Build::Normal)?;
    let inst = instance(&dir)?;
    let defs = inst.definitions();
    let infos = &defs.params;
    assert_eq!(infos.len(), id::COUNT as usize);
    let cutoff = &infos[id::CUTOFF as usize];
    assert_eq!(cutoff.name, "Filter Cutoff");
    assert_eq!(cutoff.unit, "Hz");
    assert_eq!(infos[id::WAVEFORM as usize].mapping.step_count(), 2);
    // The block holds the defaults the control module wrote.
    assert_eq!(inst.param_normalized(id::CUTOFF), Some(cutoff.default_normalized));
    assert_eq!(inst.format_value(id::CUTOFF, inst.parse_value(id::CUTOFF, "440 Hz")?)?, "440 Hz");
    assert_eq!(inst.format_value(id::GAIN, inst.parse_value(id::GAIN, "-6 dB")?)?, "-6.0 dB");
    assert_eq!(inst.format_value(id::WAVEFORM, 0.5)?, "Square");
    let err = inst.parse_value(id::CUTOFF, "loud").expect_err("garbage parsed");
    assert!(err.to_string().contains("Filter Cutoff") && err.to_string().contains("\"loud\""), "{err}");
    assert_eq!(inst.midi_cc_param(74), Some(id::CUTOFF));
    assert_eq!(inst.midi_cc_param(3), None);
    Ok(())
}

#[test]
fn state_round_trips_and_bad_state_changes_nothing() -> Result<()> {
    let dir = ModuleDir::new(Build::Normal)?;
    let a = instance(&dir)?;
    a.set_param_normalized(id::CUTOFF, 0.25);
    a.set_param_normalized(id::WAVEFORM, 1.0);
    let saved = a.save_state()?;
    assert!(String::from_utf8_lossy(&saved).contains("\"version\":1"));

    let b = instance(&dir)?;
    b.load_state(&saved)?;
    for p in 0..id::COUNT {
        let (va, vb) = (a.param_normalized(p).unwrap(), b.param_normalized(p).unwrap());
        assert!((va - vb).abs() < 1e-9, "param {p}: {va} vs {vb}");
    }
    let before: Vec<f64> = (0..id::COUNT).map(|p| b.param_normalized(p).unwrap()).collect();
    for bad in [
        &b""[..],
        b"{",
        b"garbage",
        &saved[..saved.len() / 2],
        br#"{"format":"trio-synth-state","version":99,"params":{}}"#,
    ] {
        let err = b.load_state(bad).expect_err("bad state accepted");
        assert!(err.to_string().contains("nothing changed"), "{err}");
    }
    let after: Vec<f64> = (0..id::COUNT).map(|p| b.param_normalized(p).unwrap()).collect();
    assert_eq!(before, after);
    Ok(())
}

#[test]
fn presets_load_into_the_block() -> Result<()> {
    let dir = ModuleDir::new(Build::Normal)?;
    let inst = instance(&dir)?;
    let names = inst.preset_names()?;
    assert!(names.len() >= 3, "{names:?}");
    let bass = names.iter().position(|n| n == "Acid Bass").expect("Acid Bass preset") as u32;
    inst.load_preset(bass)?;
    assert_eq!(inst.format_value(id::WAVEFORM, inst.param_normalized(id::WAVEFORM).unwrap())?, "Square");
    assert!(inst.load_preset(999).is_err());
    Ok(())
}

#[test]
fn the_segment_is_private_and_removed_with_the_instance() -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = ModuleDir::new(Build::Normal)?;
    let inst = instance(&dir)?;
    let path = format!("/dev/shm{}", inst.segment_name());
    let mode = std::fs::metadata(&path)?.permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "segment mode {mode:o}");
    drop(inst);
    assert!(!std::path::Path::new(&path).exists(), "{path} left behind");
    Ok(())
}

#[test]
fn a_segment_left_by_a_killed_process_is_cleaned_up() -> Result<()> {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_segment-holder"))
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line)?;
    let path = format!("/dev/shm{}", line.trim());
    assert!(std::path::Path::new(&path).exists(), "{path} was not created");
    child.kill()?; // SIGKILL: no chance to clean up.
    child.wait()?;
    assert!(std::path::Path::new(&path).exists(), "{path} vanished by itself");
    // A process's first segment sweeps stale ones (a host started after a crash).
    let fresh = std::process::Command::new(env!("CARGO_BIN_EXE_segment-holder")).arg("--exit").output()?;
    assert!(fresh.status.success(), "{}", String::from_utf8_lossy(&fresh.stderr));
    assert!(!std::path::Path::new(&path).exists(), "stale {path} was not removed");
    Ok(())
}

#[test]
fn invalid_setup_is_refused_with_the_value() -> Result<()> {
    let dir = ModuleDir::new(Build::Normal)?;
    let modules = Modules::load(&dir.paths(), None)?;
    let err = match Instance::new(&modules, ProcessSetup { sample_rate: 0.0, max_block_size: 512, offline: false }) {
        Ok(_) => panic!("sample rate 0 accepted"),
        Err(e) => e,
    };
    assert!(err.to_string().contains("sample rate 0"), "{err}");
    let inst = Instance::new(&modules, setup())?;
    let mut big = vec![0.0f32; BLOCK * 2];
    assert_eq!(inst.process(&mut [&mut big], &[]), status::INVALID_ARGUMENT);
    assert!(big.iter().all(|&s| s == 0.0));
    Ok(())
}

#[test]
fn the_bridge_finds_its_own_file() -> Result<()> {
    // Linked into this test binary, the bridge's code lives in the executable itself.
    let own = trio_bridge::own_library_path().expect("dladdr found nothing");
    assert_eq!(own.canonicalize()?, std::env::current_exe()?.canonicalize()?);
    let paths = trio_bridge::ModulePaths::beside_bridge()?;
    assert_eq!(paths.engine, own.parent().unwrap().join(trio_bridge::ENGINE_FILE));
    Ok(())
}
