//! Delivery through the host's run loop (`Steinberg::Linux::IRunLoop`).
//!
//! Host notifications (`restartComponent` after a reload changed the parameters, a changed
//! latency) go out on the host's main thread, at the next main-thread call the host makes.
//! A host that plays with no window open may make none for a long time. When the host
//! context given to `initialize` offers an `IRunLoop`, the plugin registers a timer on it
//! ([`INTERVAL_MS`]) whose tick does the same main-thread work, so notifications arrive
//! within that time. The tick costs a few atomic loads when nothing is pending; hosts
//! without a run loop on their context (pedalboard, DawDreamer) get no timer and no
//! wake-up.

use std::sync::Mutex;

use vst3::Steinberg::Linux::{IRunLoop, IRunLoopTrait, ITimerHandler, ITimerHandlerTrait};
use vst3::Steinberg::{FUnknown, kResultOk};
use vst3::{Class, ComPtr, ComRef, ComWrapper};

use super::plugin::TrioPlugin;

/// How often the host's run loop ticks the plugin, milliseconds.
pub const INTERVAL_MS: u64 = 100;

/// The plugin a timer ticks.
struct Target(*const TrioPlugin);

// SAFETY: the pointer is only dereferenced in `onTimer`, on the host's main thread, while
// the timer is registered; the plugin unregisters it (terminate or drop) before it is
// freed, and the host does not run the timer concurrently with those calls (all are on
// its main thread).
unsafe impl Send for Target {}
// SAFETY: as above.
unsafe impl Sync for Target {}

/// The timer handler registered with the host's run loop.
pub(crate) struct Timer {
    target: Target,
}

impl Class for Timer {
    type Interfaces = (ITimerHandler,);
}

impl ITimerHandlerTrait for Timer {
    unsafe fn onTimer(&self) {
        // SAFETY: see `Target`: the plugin outlives its registration.
        let plugin = unsafe { &*self.target.0 };
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| plugin.main_thread_work()));
    }
}

/// A timer registered with a host's run loop; dropping it unregisters it.
pub(crate) struct Registration {
    run_loop: ComPtr<IRunLoop>,
    timer: ComWrapper<Timer>,
}

impl Registration {
    /// Registers a timer that ticks `plugin` on `context`'s run loop, if the context
    /// offers one. The plugin must drop the registration before it is freed.
    pub(crate) fn register(context: *mut FUnknown, plugin: &TrioPlugin) -> Option<Self> {
        // SAFETY: the host passes its context object or null; `from_raw` takes no
        // reference and `cast` adds one.
        let run_loop = unsafe { ComRef::from_raw(context) }?.cast::<IRunLoop>()?;
        let timer = ComWrapper::new(Timer { target: Target(plugin) });
        let handler = timer.as_com_ref::<ITimerHandler>()?.as_ptr();
        // SAFETY: a valid run loop and handler; the run loop keeps its own reference.
        let result = unsafe { run_loop.registerTimer(handler, INTERVAL_MS) };
        if result != kResultOk {
            log::debug!("the host's run loop refused a timer (result {result}); notifications wait for host calls");
            return None;
        }
        Some(Self { run_loop, timer })
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(handler) = self.timer.as_com_ref::<ITimerHandler>() {
            // SAFETY: the handler registered in `register`, on the same run loop.
            unsafe { self.run_loop.unregisterTimer(handler.as_ptr()) };
        }
    }
}

/// Where a plugin keeps its registration (none when the host offers no run loop).
pub(crate) type Slot = Mutex<Option<Registration>>;
