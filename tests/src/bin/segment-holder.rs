//! Test helper: creates a shared block segment and prints its name. Then it waits to be
//! killed (the stale-segment test kills it with SIGKILL and checks the segment gets
//! cleaned up), or with `--exit` removes its segment and exits (a fresh process whose
//! first segment sweeps the stale ones).

fn main() {
    let exit = std::env::args().any(|a| a == "--exit");
    match trio::segment::BlockSegment::create(&trio::abi::AreaLayout::default()) {
        Ok(segment) if exit => println!("{}", segment.os_id()),
        Ok(segment) => {
            println!("{}", segment.os_id());
            std::mem::forget(segment);
            loop {
                std::thread::sleep(std::time::Duration::from_secs(60));
            }
        }
        Err(e) => {
            eprintln!("segment-holder: {e}");
            std::process::exit(1);
        }
    }
}
