//! Cost of a parameter's value text as hosts ask for it (`getParamStringByValue`; pedalboard
//! asks 2,002 per parameter while loading): the bridge formats from the display rule the
//! control module published in the block, on the calling thread. Prints ns per call beside
//! a same-run reference: the same formatting done by the control module's own export,
//! called directly on this thread.

use std::time::Instant;

use integration::{Build, ModuleDir};

fn main() -> anyhow::Result<()> {
    let dir = ModuleDir::new(Build::Release)?;
    let modules = trio_bridge::Modules::load(&dir.paths(), None)?;
    let inst = trio_bridge::Instance::new(&modules, trio_bridge::ProcessSetup::default())?;
    let n = 20_000u32;
    let mut rounds = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        for i in 0..n {
            let _ = std::hint::black_box(inst.format_value(6, f64::from(i % 1000) / 1000.0)?);
        }
        rounds.push(t.elapsed().as_nanos() as f64 / f64::from(n));
    }
    rounds.sort_by(f64::total_cmp);
    let worker = rounds[rounds.len() / 2];

    // Reference: the same export called directly on this thread.
    // SAFETY: the control library's export has this signature; the instance pointer is
    // only used for formatting, which reads nothing but its argument.
    let direct = unsafe {
        let lib = libloading::Library::new(dir.control())?;
        type Format = unsafe extern "C" fn(*mut std::ffi::c_void, u32, f64, *mut u8, usize, *mut usize) -> i32;
        type Create = unsafe extern "C" fn(*const trio::block::SharedBlock, u32, *mut *mut std::ffi::c_void) -> i32;
        let format: libloading::Symbol<Format> = lib.get(b"trio_control_format_value\0")?;
        let create: libloading::Symbol<Create> = lib.get(b"trio_control_create\0")?;
        let area = trio::abi::AreaLayout::of::<synth_common::SynthArea>();
        let block = trio::block::HeapBlock::new(&area);
        let mut ctl = std::ptr::null_mut();
        assert_eq!(create(block.as_ptr(), 0, &mut ctl), 0);
        let mut buf = [0u8; 64];
        let mut len = 0;
        let mut rounds = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            for i in 0..n {
                format(ctl, 6, f64::from(i % 1000) / 1000.0, buf.as_mut_ptr(), buf.len(), &mut len);
                std::hint::black_box(&buf);
            }
            rounds.push(t.elapsed().as_nanos() as f64 / f64::from(n));
        }
        rounds.sort_by(f64::total_cmp);
        rounds[rounds.len() / 2]
    };
    println!("value text (format_value), median of 5 x {n} calls:");
    println!("  through the bridge (block's display rule): {worker:>9.0} ns/call");
    println!("  the control module's export, direct      : {direct:>9.0} ns/call");
    println!("  ratio                                    : {:>9.2}x", worker / direct);
    Ok(())
}
