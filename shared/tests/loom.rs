//! Model checks of the SPSC ring protocol under every interleaving that loom explores.
//!
//! Run with:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 \
//!     cargo test -p shared --test loom --release --target-dir target/loom
//! ```
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use trio::ring::{PopError, PushError, SpscRing};

/// Pushes `values` in order, yielding to the model while the ring is full.
fn push_all<const N: usize>(ring: &SpscRing<u32, N>, values: &[u32]) {
    // SAFETY: the calling thread is the only producer of `ring`.
    let mut producer = unsafe { ring.producer() };
    for &value in values {
        let mut value = value;
        while let Err(PushError::Full(v)) = producer.push(value) {
            value = v;
            thread::yield_now();
        }
    }
}

/// Pops `count` values, yielding to the model while the ring is empty.
fn pop_count<const N: usize>(ring: &SpscRing<u32, N>, count: usize) -> Vec<u32> {
    // SAFETY: the calling thread is the only consumer of `ring`.
    let mut consumer = unsafe { ring.consumer() };
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        match consumer.pop() {
            Ok(value) => out.push(value),
            Err(PopError::Empty) => thread::yield_now(),
        }
    }
    assert_eq!(consumer.pop(), Err(PopError::Empty));
    out
}

/// Three values through two slots: the producer meets a full ring and the indices wrap
/// around the slot array; the consumer must see every value once, in order.
#[test]
fn ring_passes_values_in_order_through_full_and_wraparound() {
    loom::model(|| {
        let ring = Arc::new(SpscRing::<u32, 2>::new());
        let producer_ring = Arc::clone(&ring);
        let producer = thread::spawn(move || push_all(&producer_ring, &[1, 2, 3]));
        let received = pop_count(&ring, 3);
        producer.join().unwrap();
        assert_eq!(received, [1, 2, 3]);
        assert!(ring.is_empty());
    });
}

/// The producer trusts `free_slots` and the consumer trusts `len`: every slot they report
/// must be usable at once, and the cached index those calls leave behind must make the
/// following slot accesses race-free (loom reports any unsynchronised slot access).
#[test]
fn ring_len_and_free_slots_are_safe_to_act_on() {
    loom::model(|| {
        let ring = Arc::new(SpscRing::<u32, 2>::new());
        let producer_ring = Arc::clone(&ring);
        let producer = thread::spawn(move || {
            // SAFETY: this thread is the only producer of `producer_ring`.
            let mut producer = unsafe { producer_ring.producer() };
            let mut next = 0;
            while next < 3 {
                let free = producer.free_slots();
                for _ in 0..free.min(3 - next as usize) {
                    assert_eq!(producer.push(next), Ok(()));
                    next += 1;
                }
                if free == 0 {
                    thread::yield_now();
                }
            }
        });

        // SAFETY: this thread is the only consumer of `ring`.
        let mut consumer = unsafe { ring.consumer() };
        let mut expected = 0;
        while expected < 3 {
            let ready = consumer.len();
            assert!(ready <= 2);
            for _ in 0..ready {
                assert_eq!(consumer.pop(), Ok(expected));
                expected += 1;
            }
            if ready == 0 {
                thread::yield_now();
            }
        }
        producer.join().unwrap();
        assert!(consumer.is_empty());
    });
}

/// The consumer peeks before popping (as the engine does for events timed after the
/// current block): `peek` must return the value that the following `pop` removes, and
/// never a value the producer has not finished writing.
#[test]
fn ring_peek_then_pop() {
    loom::model(|| {
        let ring = Arc::new(SpscRing::<u32, 2>::new());
        let producer_ring = Arc::clone(&ring);
        let producer = thread::spawn(move || push_all(&producer_ring, &[10, 20, 30]));

        // SAFETY: this thread is the only consumer of `ring`.
        let mut consumer = unsafe { ring.consumer() };
        let mut received = Vec::new();
        while received.len() < 3 {
            match consumer.peek() {
                Some(front) => {
                    assert_eq!(consumer.peek(), Some(front));
                    assert_eq!(consumer.pop(), Ok(front));
                    received.push(front);
                }
                None => thread::yield_now(),
            }
        }
        producer.join().unwrap();
        assert_eq!(received, [10, 20, 30]);
        assert_eq!(consumer.peek(), None);
    });
}
