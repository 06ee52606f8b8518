//! Compares `trio::ring::SpscRing` with `rtrb::RingBuffer` on the same workloads.
//!
//! Run with `cargo bench -p shared --bench ring`. Each workload runs several rounds,
//! alternating between the two rings, and the medians are reported as nanoseconds per
//! item together with the ratio `rtrb / ours` (above 1.0 means ours is faster).

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use trio::ring::{Consumer, Producer, SpscRing};

/// A note or parameter event as the engine queues it: 24 bytes, plain data.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Event {
    time: u64,
    kind: u32,
    index: u32,
    value: f32,
    note_id: i32,
}

const _: () = assert!(size_of::<Event>() == 24);

/// Ring capacity for every workload.
const CAPACITY: usize = 1024;
/// Items pushed before popping them all, in the single-thread workload.
const BURST: usize = 64;
/// Bursts per round in the single-thread workload.
const BURSTS: usize = 200_000;
/// Items per round in the two-thread workload.
const THREADED_ITEMS: u64 = 10_000_000;
/// Rounds per ring and workload; the median is reported.
const ROUNDS: usize = 21;

type OurRing = SpscRing<Event, CAPACITY>;

fn event(time: u64) -> Event {
    Event { time, kind: (time & 3) as u32, index: time as u32, value: time as f32, note_id: -1 }
}

/// The producing half of a ring, so both rings run the very same loops.
trait Tx: Send {
    fn try_push(&mut self, event: Event) -> bool;
}

/// The consuming half of a ring.
trait Rx: Send {
    fn try_pop(&mut self) -> Option<Event>;
}

impl Tx for Producer<'_, Event, CAPACITY> {
    #[inline(always)]
    fn try_push(&mut self, event: Event) -> bool {
        self.push(event).is_ok()
    }
}

impl Rx for Consumer<'_, Event, CAPACITY> {
    #[inline(always)]
    fn try_pop(&mut self) -> Option<Event> {
        self.pop().ok()
    }
}

impl Tx for rtrb::Producer<Event> {
    #[inline(always)]
    fn try_push(&mut self, event: Event) -> bool {
        self.push(event).is_ok()
    }
}

impl Rx for rtrb::Consumer<Event> {
    #[inline(always)]
    fn try_pop(&mut self) -> Option<Event> {
        self.pop().ok()
    }
}

/// Pushes `BURST` events then pops them, `BURSTS` times, on one thread.
fn bursts(tx: &mut impl Tx, rx: &mut impl Rx) -> Duration {
    let start = Instant::now();
    let mut time = 0;
    let mut checksum = 0u64;
    for _ in 0..BURSTS {
        for _ in 0..BURST {
            assert!(tx.try_push(event(time)), "ring full");
            time += 1;
        }
        for _ in 0..BURST {
            let Some(event) = rx.try_pop() else {
                panic!("ring empty");
            };
            checksum = checksum.wrapping_add(event.time ^ u64::from(event.index));
        }
    }
    let elapsed = start.elapsed();
    black_box(checksum);
    assert!(rx.try_pop().is_none());
    elapsed
}

/// One thread pushes `THREADED_ITEMS` events, another pops and checks them; returns the
/// consumer's time from the common start to the last item.
///
/// Each handle is moved into its thread, so the two handles (whose cached indices change
/// on every call) do not share a cache line on one stack.
fn threaded(mut tx: impl Tx, mut rx: impl Rx) -> Duration {
    let barrier = &Barrier::new(2);
    std::thread::scope(|s| {
        s.spawn(move || {
            barrier.wait();
            for time in 0..THREADED_ITEMS {
                let event = event(time);
                while !tx.try_push(event) {
                    std::hint::spin_loop();
                }
            }
        });
        let consumer = s.spawn(move || {
            barrier.wait();
            let start = Instant::now();
            let mut expected = 0;
            while expected < THREADED_ITEMS {
                match rx.try_pop() {
                    Some(event) => {
                        assert_eq!(event.time, expected, "lost or reordered event");
                        expected += 1;
                    }
                    None => std::hint::spin_loop(),
                }
            }
            start.elapsed()
        });
        consumer.join().expect("consumer thread panicked")
    })
}

fn ours_bursts() -> Duration {
    let ring = Box::new(OurRing::new());
    // SAFETY: the only producer and consumer of `ring`.
    let (mut tx, mut rx) = unsafe { (ring.producer(), ring.consumer()) };
    bursts(&mut tx, &mut rx)
}

fn rtrb_bursts() -> Duration {
    let (mut tx, mut rx) = rtrb::RingBuffer::new(CAPACITY);
    bursts(&mut tx, &mut rx)
}

fn ours_threaded() -> Duration {
    let ring = Box::new(OurRing::new());
    // SAFETY: the only producer and consumer of `ring`.
    let (tx, rx) = unsafe { (ring.producer(), ring.consumer()) };
    threaded(tx, rx)
}

fn rtrb_threaded() -> Duration {
    let (tx, rx) = rtrb::RingBuffer::new(CAPACITY);
    threaded(tx, rx)
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ns_per_item(time: Duration, items: u64) -> f64 {
    time.as_secs_f64() * 1e9 / items as f64
}

/// Runs both rings `ROUNDS` times each, alternating, and prints the medians.
fn compare(label: &str, items: u64, ours: fn() -> Duration, theirs: fn() -> Duration) {
    // One untimed warm-up each (page faults, CPU frequency).
    ours();
    theirs();
    let mut our_times = Vec::with_capacity(ROUNDS);
    let mut rtrb_times = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        our_times.push(ours());
        rtrb_times.push(theirs());
    }
    let (our_best, rtrb_best) = (our_times.iter().min(), rtrb_times.iter().min());
    let (our_best, rtrb_best) = (ns_per_item(*our_best.unwrap(), items), ns_per_item(*rtrb_best.unwrap(), items));
    let ours = ns_per_item(median(our_times), items);
    let rtrb = ns_per_item(median(rtrb_times), items);
    println!("{label}");
    println!("  SpscRing  median {ours:7.3} ns/item   (best {our_best:.3})");
    println!("  rtrb      median {rtrb:7.3} ns/item   (best {rtrb_best:.3})");
    println!("  ratio rtrb/ours = {:.3}", rtrb / ours);
}

fn main() {
    println!(
        "SPSC ring benchmark: {}-byte event, capacity {CAPACITY}, {ROUNDS} rounds per ring \
         (alternating), medians",
        size_of::<Event>()
    );
    let burst_items = (BURSTS * BURST) as u64;
    compare(
        &format!("single thread: push {BURST} then pop {BURST}, {burst_items} items per round"),
        burst_items,
        ours_bursts,
        rtrb_bursts,
    );
    compare(
        &format!("two threads: producer and consumer, {THREADED_ITEMS} items per round"),
        THREADED_ITEMS,
        ours_threaded,
        rtrb_threaded,
    );
}
