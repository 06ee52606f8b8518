//! Framework overhead of the audio path: `Instance::process` (the bridge's wrapper:
//! flush-to-zero, allocation check, panic capture, engine guard, building the block
//! record) beside a direct call of the engine's `rt_process` on the same engine library,
//! in the same run. Silent engine (no notes), 64-frame blocks. Goal: at most 100 ns per
//! block beyond the direct call. The bridge is told to call the engine for every block
//! (`set_sleep_allowed(false)`); a third row gives the block of a sleeping engine, which
//! the bridge answers without calling it.

use std::ffi::c_void;
use std::time::Instant;

use integration::{Build, ModuleDir};
use trio::abi::ProcessData;

const FRAMES: usize = 64;
const BLOCKS: u32 = 200_000;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let dir = ModuleDir::new(Build::Release)?;
    let modules = trio_bridge::Modules::load(&dir.paths(), None)?;
    let inst = trio_bridge::Instance::new(
        &modules,
        trio_bridge::ProcessSetup { sample_rate: 48_000.0, max_block_size: 64, offline: false },
    )?;

    // The direct reference: a second engine instance on its own block, same library.
    // SAFETY: the engine's exports have these signatures (checked by `Modules::load`).
    let (process, engine, _block) = unsafe {
        let lib = libloading::Library::new(dir.engine())?;
        type Create = unsafe extern "C" fn(*const trio::block::SharedBlock, *mut *mut c_void) -> i32;
        type Activate = unsafe extern "C" fn(*mut c_void, f64, u32) -> i32;
        type Process = unsafe extern "C" fn(*mut c_void, *mut ProcessData) -> i32;
        let create = *lib.get::<Create>(b"trio_engine_create\0")?;
        let activate = *lib.get::<Activate>(b"trio_engine_activate\0")?;
        let process = *lib.get::<Process>(b"trio_engine_process\0")?;
        let area = trio::abi::AreaLayout::of::<synth_common::SynthArea>();
        let block = trio::block::HeapBlock::new(&area);
        block.block().init_header(99, 48_000.0, 64, &area);
        let mut engine = std::ptr::null_mut();
        assert_eq!(create(block.as_ptr(), &mut engine), 0);
        assert_eq!(activate(engine, 48_000.0, 64), 0);
        std::mem::forget(lib); // keep the engine's code mapped for the rest of the run
        (process, engine, block)
    };

    let sleeping = trio_bridge::Instance::new(
        &modules,
        trio_bridge::ProcessSetup { sample_rate: 48_000.0, max_block_size: 64, offline: false },
    )?;
    inst.set_sleep_allowed(false);
    sleeping.set_main_input(false);

    let (mut left, mut right) = (vec![0.0f32; FRAMES], vec![0.0f32; FRAMES]);
    let (mut through_bridge, mut direct, mut asleep) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..7 {
        let t = Instant::now();
        for _ in 0..BLOCKS {
            std::hint::black_box(inst.process(&mut [&mut left, &mut right], &[]));
        }
        through_bridge.push(t.elapsed().as_nanos() as f64 / f64::from(BLOCKS));

        let t = Instant::now();
        for _ in 0..BLOCKS {
            std::hint::black_box(sleeping.process(&mut [&mut left, &mut right], &[]));
        }
        asleep.push(t.elapsed().as_nanos() as f64 / f64::from(BLOCKS));

        let channels = [left.as_mut_ptr(), right.as_mut_ptr()];
        let t = Instant::now();
        for _ in 0..BLOCKS {
            let mut data = ProcessData {
                num_samples: FRAMES as u32,
                num_main: 2,
                main: channels.as_ptr(),
                num_sidechain: 0,
                num_events: 0,
                sidechain: std::ptr::null(),
                events: std::ptr::null(),
                transport: Default::default(),
                process_mode: 0,
                engine_state: 0,
                silence_flags: 0,
            };
            // SAFETY: a live engine, valid channel pointers for 64 samples.
            std::hint::black_box(unsafe { process(engine, &mut data) });
        }
        direct.push(t.elapsed().as_nanos() as f64 / f64::from(BLOCKS));
    }
    assert!(sleeping.slept_blocks() > u64::from(BLOCKS), "the idle engine should sleep");
    let (b, d, a) = (median(through_bridge), median(direct), median(asleep));
    println!("process, silent engine, {FRAMES}-frame blocks, median of 7 x {BLOCKS} blocks:");
    println!("  through the bridge (Instance::process): {b:>7.1} ns/block");
    println!("  direct rt_process call (reference)    : {d:>7.1} ns/block");
    println!("  bridge overhead                       : {:>7.1} ns/block (goal <= 100 ns), ratio {:.2}x", b - d, b / d);
    println!("  a sleeping engine's block (no call)   : {a:>7.1} ns/block, {:.2}x the direct call", a / d);
    Ok(())
}
