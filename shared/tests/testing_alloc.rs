//! The rig's allocation check, proven both ways: this test binary exports an engine with
//! `export_engine!`, as a plugin's engine crate does, so its global allocator is the
//! engine's (`assert_no_alloc`'s); an engine that allocates in `process` is counted, one
//! that does not is not.
#![cfg(not(loom))]

use trio::control::{Control, ControlContext};
use trio::engine::{Block, Engine, EngineContext, Event};
use trio::params::{ParamDef, ParamMapping};
use trio::testing::{HostEvent, Rig, Setup, alloc_check_active};

const ALLOCATE: u32 = 0;

/// Allocates once per block while `Allocate` is on.
pub struct Careless {
    on: bool,
}

impl Engine for Careless {
    type Area = ();
    fn new(ctx: &mut EngineContext<'_, ()>) -> Self {
        Careless { on: ctx.params().is_on(ALLOCATE) }
    }
    fn process(&mut self, block: &mut Block<'_, ()>) {
        while let Some(timed) = block.next_event() {
            if let Event::Param { id: ALLOCATE, plain, .. } = timed.event {
                self.on = plain >= 0.5;
            }
        }
        if self.on {
            std::hint::black_box(Vec::<u8>::with_capacity(64));
        }
    }
}

trio::export_engine!(Careless);

pub struct Switch;

impl Control for Switch {
    type Area = ();
    const STATE_FORMAT: &'static str = "careless-state";
    fn params() -> Vec<ParamDef> {
        vec![ParamDef::float(ALLOCATE, "allocate", "Allocate", ParamMapping::stepped(0.0, 1.0), 0.0)]
    }
    fn new(_ctx: &mut ControlContext<'_, ()>) -> Self {
        Switch
    }
}

#[test]
fn an_allocation_in_process_is_counted_and_none_is_not() {
    assert!(alloc_check_active(), "export_engine! installs the checking allocator in this binary");
    let mut rig = Rig::<Careless, Switch>::new(Setup { max_block: 64, ..Setup::default() }).unwrap();
    rig.render(640, &[]).unwrap();
    assert_eq!(rig.alloc_violations(), Some(0));
    // On from sample 100: blocks 1..=9 allocate (and free) once each.
    rig.render(640, &[(100, HostEvent::param(ALLOCATE, 1.0))]).unwrap();
    let caught = rig.alloc_violations().unwrap();
    assert_eq!(caught, 9 * 2, "one allocation and one free per block");
    println!("an engine allocating in 9 of 10 blocks: {caught} allocator calls caught (9 allocations, 9 frees)");
}
