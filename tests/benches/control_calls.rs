//! Cost of a call into the control module through the bridge's control worker: every
//! `format_value` is a round trip to the worker thread. Hosts such as pedalboard call
//! `getParamStringByValue` thousands of times while loading, so this shows up as load
//! time. Prints ns per call beside a same-run reference: the same formatting done by a
//! direct call of the exported function on the calling thread.

use std::time::Instant;

use integration::{Build, ModuleDir};

fn main() -> anyhow::Result<()> {
    let dir = ModuleDir::new(Build::Release)?;
    let modules = bridge::Modules::load(&dir.paths())?;
    let inst = bridge::Instance::new(&modules, bridge::ProcessSetup::default())?;
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
        type Create = unsafe extern "C" fn(*const shared::block::SharedBlock, u32, *mut *mut std::ffi::c_void) -> i32;
        let format: libloading::Symbol<Format> = lib.get(b"control_format_value\0")?;
        let create: libloading::Symbol<Create> = lib.get(b"control_create\0")?;
        let block = shared::block::SharedBlock::new_boxed();
        block.init_header(1, 48_000.0, 512);
        let mut ctl = std::ptr::null_mut();
        assert_eq!(create(&*block, 0, &mut ctl), 0);
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
    println!("control call round trip (format_value), median of 5 x {n} calls:");
    println!("  through the control worker: {worker:>9.0} ns/call");
    println!("  direct call (reference)   : {direct:>9.0} ns/call");
    println!("  worker overhead ratio     : {:>9.1}x", worker / direct);
    Ok(())
}
