//! Loom model check of the seqlock protocol: a reader never accepts a snapshot that mixes
//! two writes. Run with `RUSTFLAGS="--cfg loom" cargo test -p shared --tests --release`.
#![cfg(loom)]

use loom::sync::Arc;
use trio::seqlock::SeqLock;

#[test]
fn a_reader_sees_one_whole_write_or_none() {
    loom::model(|| {
        let lock = Arc::new(SeqLock::<2>::new());
        let writer = {
            let lock = Arc::clone(&lock);
            loom::thread::spawn(move || {
                // SAFETY: this thread is the only writer.
                unsafe { lock.write([1, 1]) };
                // SAFETY: as above.
                unsafe { lock.write([2, 2]) };
            })
        };
        if let Some([a, b]) = lock.read() {
            assert_eq!(a, b, "mixed snapshot");
            assert!(a <= 2);
        }
        writer.join().unwrap();
        assert_eq!(lock.read(), Some([2, 2]));
    });
}
