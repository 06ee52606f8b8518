//! Test helper: creates a shared block segment, prints its name, then waits to be killed.
//! The stale-segment test kills it with SIGKILL and checks the segment gets cleaned up.

fn main() {
    match trio::segment::BlockSegment::create(&trio::abi::AreaLayout::default()) {
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
