//! The host's own COM objects, made with `vst3::ComWrapper`: the host context, the
//! component handler, an event list, parameter changes and an in-memory stream.
//!
//! They are called by the plugin, possibly from any thread, so each keeps its data under
//! a `Mutex`. None of them allocates while the plugin processes: the event list and the
//! parameter queues are filled by the host before `process`, into storage reserved ahead.

use std::ffi::c_void;
use std::sync::{Mutex, MutexGuard};
use std::thread::ThreadId;

use vst3::Steinberg::Vst::*;
use vst3::Steinberg::*;
use vst3::{Class, ComPtr, ComRef, ComWrapper};

/// Locks, ignoring poisoning: the data stays usable for the rest of the session.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Copies `src` into a UTF-16 `String128`, NUL-terminated, truncated.
pub(crate) fn copy_wstr(src: &str, dst: &mut [TChar]) {
    let Some(room) = dst.len().checked_sub(1) else { return };
    let mut len = 0;
    for (d, unit) in dst[..room].iter_mut().zip(src.encode_utf16()) {
        *d = unit as TChar;
        len += 1;
    }
    dst[len] = 0;
}

/// Reads a NUL-terminated UTF-16 array.
pub(crate) fn w_str(chars: &[TChar]) -> String {
    String::from_utf16_lossy(&chars.iter().take_while(|&&c| c != 0).copied().collect::<Vec<u16>>())
}

/// Reads a NUL-terminated 8-bit array.
pub(crate) fn c_str(chars: &[std::ffi::c_char]) -> String {
    let bytes: Vec<u8> = chars.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The host context passed to `initialize`. It also offers a run loop
/// (`Steinberg::Linux::IRunLoop`), as Linux hosts do for plugins with their own timers:
/// the host runs the registered timers when its driver asks ([`HostApplication::run_timers`]).
#[derive(Default)]
pub(crate) struct HostApplication {
    /// Timers the plugin registered, with their interval in milliseconds.
    pub(crate) timers: Mutex<Vec<(ComPtr<Linux::ITimerHandler>, u64)>>,
}

impl Class for HostApplication {
    type Interfaces = (IHostApplication, Linux::IRunLoop);
}

impl HostApplication {
    /// Calls every registered timer once, on this thread; returns how many ran.
    pub(crate) fn run_timers(&self) -> usize {
        // Copies, so a timer may (un)register timers while it runs.
        let timers: Vec<ComPtr<Linux::ITimerHandler>> = lock(&self.timers).iter().map(|(t, _)| t.clone()).collect();
        for timer in &timers {
            // SAFETY: a handler the plugin registered and has not unregistered.
            unsafe { Linux::ITimerHandlerTrait::onTimer(timer) };
        }
        timers.len()
    }
}

impl Linux::IRunLoopTrait for HostApplication {
    unsafe fn registerEventHandler(&self, _handler: *mut Linux::IEventHandler, _fd: Linux::FileDescriptor) -> tresult {
        kNotImplemented
    }

    unsafe fn unregisterEventHandler(&self, _handler: *mut Linux::IEventHandler) -> tresult {
        kNotImplemented
    }

    unsafe fn registerTimer(&self, handler: *mut Linux::ITimerHandler, milliseconds: Linux::TimerInterval) -> tresult {
        // SAFETY: the plugin passes a valid handler or null; `to_com_ptr` adds a reference.
        match unsafe { ComRef::from_raw(handler) } {
            Some(h) if milliseconds > 0 => {
                lock(&self.timers).push((h.to_com_ptr(), milliseconds));
                kResultOk
            }
            _ => kInvalidArgument,
        }
    }

    unsafe fn unregisterTimer(&self, handler: *mut Linux::ITimerHandler) -> tresult {
        let mut timers = lock(&self.timers);
        let before = timers.len();
        timers.retain(|(t, _)| t.as_ptr() != handler);
        if timers.len() < before { kResultOk } else { kInvalidArgument }
    }
}

impl IHostApplicationTrait for HostApplication {
    unsafe fn getName(&self, name: *mut String128) -> tresult {
        // SAFETY: the plugin passes a valid `String128` or null.
        match unsafe { name.as_mut() } {
            Some(name) => {
                copy_wstr("trio-host", name);
                kResultOk
            }
            None => kInvalidArgument,
        }
    }

    unsafe fn createInstance(&self, _cid: *mut TUID, _iid: *mut TUID, obj: *mut *mut c_void) -> tresult {
        // Messages (IMessage) are not offered: the plugins this host drives either are
        // their own controller or connect their two halves directly.
        if !obj.is_null() {
            // SAFETY: non-null out pointer.
            unsafe { *obj = std::ptr::null_mut() };
        }
        kNoInterface
    }
}

/// One call the plugin made to the component handler.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum HandlerCallKind {
    /// `beginEdit(id)`.
    BeginEdit(u32),
    /// `performEdit(id, normalized)`.
    PerformEdit(u32, f64),
    /// `endEdit(id)`.
    EndEdit(u32),
    /// `restartComponent(flags)`.
    RestartComponent(i32),
}

/// A recorded component-handler call and the thread it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct HandlerCall {
    /// What was called.
    pub kind: HandlerCallKind,
    /// The calling thread.
    pub thread: ThreadId,
    /// Whether that is the host's main thread (the one that created the plugin).
    pub on_main_thread: bool,
}

/// The component handler: records every call with its thread.
pub(crate) struct ComponentHandler {
    pub(crate) main_thread: ThreadId,
    pub(crate) calls: Mutex<Vec<HandlerCall>>,
}

impl ComponentHandler {
    fn record(&self, kind: HandlerCallKind) -> tresult {
        let thread = std::thread::current().id();
        lock(&self.calls).push(HandlerCall { kind, thread, on_main_thread: thread == self.main_thread });
        kResultOk
    }
}

impl Class for ComponentHandler {
    type Interfaces = (IComponentHandler,);
}

impl IComponentHandlerTrait for ComponentHandler {
    unsafe fn beginEdit(&self, id: ParamID) -> tresult {
        self.record(HandlerCallKind::BeginEdit(id))
    }

    unsafe fn performEdit(&self, id: ParamID, value: ParamValue) -> tresult {
        self.record(HandlerCallKind::PerformEdit(id, value))
    }

    unsafe fn endEdit(&self, id: ParamID) -> tresult {
        self.record(HandlerCallKind::EndEdit(id))
    }

    unsafe fn restartComponent(&self, flags: int32) -> tresult {
        self.record(HandlerCallKind::RestartComponent(flags))
    }
}

/// The block's input events.
pub(crate) struct EventList {
    pub(crate) events: Mutex<Vec<Event>>,
}

impl Class for EventList {
    type Interfaces = (IEventList,);
}

impl IEventListTrait for EventList {
    unsafe fn getEventCount(&self) -> int32 {
        lock(&self.events).len() as int32
    }

    unsafe fn getEvent(&self, index: int32, e: *mut Event) -> tresult {
        let events = lock(&self.events);
        match (usize::try_from(index).ok().and_then(|i| events.get(i)), e.is_null()) {
            (Some(ev), false) => {
                // SAFETY: the plugin passes a valid out pointer (checked non-null).
                unsafe { *e = *ev };
                kResultOk
            }
            _ => kInvalidArgument,
        }
    }

    unsafe fn addEvent(&self, _e: *mut Event) -> tresult {
        // Input lists are read-only for the plugin.
        kResultFalse
    }
}

/// One parameter's points in a block.
pub(crate) struct ParamQueue {
    /// `(id, [(offset, value)])`.
    pub(crate) data: Mutex<(ParamID, Vec<(i32, f64)>)>,
}

impl Class for ParamQueue {
    type Interfaces = (IParamValueQueue,);
}

impl IParamValueQueueTrait for ParamQueue {
    unsafe fn getParameterId(&self) -> ParamID {
        lock(&self.data).0
    }

    unsafe fn getPointCount(&self) -> int32 {
        lock(&self.data).1.len() as int32
    }

    unsafe fn getPoint(&self, index: int32, offset: *mut int32, value: *mut ParamValue) -> tresult {
        let data = lock(&self.data);
        match usize::try_from(index).ok().and_then(|i| data.1.get(i)) {
            Some(&(o, v)) if !offset.is_null() && !value.is_null() => {
                // SAFETY: non-null out pointers from the plugin.
                unsafe {
                    *offset = o;
                    *value = v;
                }
                kResultOk
            }
            _ => kInvalidArgument,
        }
    }

    unsafe fn addPoint(&self, offset: int32, value: ParamValue, index: *mut int32) -> tresult {
        let mut data = lock(&self.data);
        if data.1.len() == data.1.capacity() {
            // Never allocate while the plugin processes.
            return kResultFalse;
        }
        data.1.push((offset, value));
        if !index.is_null() {
            // SAFETY: non-null out pointer from the plugin.
            unsafe { *index = data.1.len() as int32 - 1 };
        }
        kResultOk
    }
}

/// Most points one parameter's queue holds in a block.
pub(crate) const MAX_POINTS_PER_QUEUE: usize = 64;

/// The block's parameter changes: a pool of queues, the first `used` of them in use.
pub(crate) struct ParameterChanges {
    pub(crate) queues: Vec<ComWrapper<ParamQueue>>,
    pub(crate) used: Mutex<usize>,
}

impl ParameterChanges {
    pub(crate) fn with_capacity(queues: usize) -> Self {
        Self {
            queues: (0..queues)
                .map(|_| {
                    ComWrapper::new(ParamQueue { data: Mutex::new((0, Vec::with_capacity(MAX_POINTS_PER_QUEUE))) })
                })
                .collect(),
            used: Mutex::new(0),
        }
    }
}

impl Class for ParameterChanges {
    type Interfaces = (IParameterChanges,);
}

impl IParameterChangesTrait for ParameterChanges {
    unsafe fn getParameterCount(&self) -> int32 {
        *lock(&self.used) as int32
    }

    unsafe fn getParameterData(&self, index: int32) -> *mut IParamValueQueue {
        let used = *lock(&self.used);
        match usize::try_from(index).ok().filter(|&i| i < used).and_then(|i| self.queues.get(i)) {
            Some(queue) => queue.as_com_ref::<IParamValueQueue>().map_or(std::ptr::null_mut(), |q| q.as_ptr()),
            None => std::ptr::null_mut(),
        }
    }

    unsafe fn addParameterData(&self, id: *const ParamID, index: *mut int32) -> *mut IParamValueQueue {
        if id.is_null() {
            return std::ptr::null_mut();
        }
        // SAFETY: non-null pointer from the plugin.
        let id = unsafe { *id };
        let mut used = lock(&self.used);
        let found = self.queues[..*used].iter().position(|q| lock(&q.data).0 == id);
        let slot = match found {
            Some(i) => i,
            None if *used < self.queues.len() => {
                let mut data = lock(&self.queues[*used].data);
                data.0 = id;
                data.1.clear();
                drop(data);
                *used += 1;
                *used - 1
            }
            None => return std::ptr::null_mut(),
        };
        if !index.is_null() {
            // SAFETY: non-null out pointer from the plugin.
            unsafe { *index = slot as int32 };
        }
        self.queues[slot].as_com_ref::<IParamValueQueue>().map_or(std::ptr::null_mut(), |q| q.as_ptr())
    }
}

/// An in-memory `IBStream`: what the plugin writes, or the bytes it reads.
pub struct MemoryStream {
    data: Mutex<(Vec<u8>, usize)>,
}

impl MemoryStream {
    /// A stream holding `bytes`, positioned at the start.
    pub fn new(bytes: Vec<u8>) -> ComWrapper<Self> {
        ComWrapper::new(Self { data: Mutex::new((bytes, 0)) })
    }

    /// A copy of the bytes in the stream.
    pub fn bytes(&self) -> Vec<u8> {
        lock(&self.data).0.clone()
    }
}

impl Class for MemoryStream {
    type Interfaces = (IBStream,);
}

impl IBStreamTrait for MemoryStream {
    unsafe fn read(&self, buffer: *mut c_void, n: int32, read: *mut int32) -> tresult {
        if buffer.is_null() || n < 0 {
            return kInvalidArgument;
        }
        let mut guard = lock(&self.data);
        let (data, pos) = &mut *guard;
        let count = (n as usize).min(data.len().saturating_sub(*pos));
        // SAFETY: the plugin's buffer holds `n >= count` bytes; ours holds `count` from `pos`.
        unsafe { std::ptr::copy_nonoverlapping(data[*pos..].as_ptr(), buffer.cast::<u8>(), count) };
        *pos += count;
        if !read.is_null() {
            // SAFETY: non-null out pointer.
            unsafe { *read = count as int32 };
        }
        kResultOk
    }

    unsafe fn write(&self, buffer: *mut c_void, n: int32, written: *mut int32) -> tresult {
        if buffer.is_null() || n < 0 {
            return kInvalidArgument;
        }
        let mut guard = lock(&self.data);
        let (data, pos) = &mut *guard;
        // SAFETY: the plugin's buffer holds `n` bytes.
        let src = unsafe { std::slice::from_raw_parts(buffer.cast::<u8>(), n as usize) };
        let end = *pos + src.len();
        if data.len() < end {
            data.resize(end, 0);
        }
        data[*pos..end].copy_from_slice(src);
        *pos = end;
        if !written.is_null() {
            // SAFETY: non-null out pointer.
            unsafe { *written = n };
        }
        kResultOk
    }

    unsafe fn seek(&self, pos: int64, mode: int32, result: *mut int64) -> tresult {
        let mut guard = lock(&self.data);
        let (data, current) = &mut *guard;
        let base = match mode as u32 {
            IBStream_::IStreamSeekMode_::kIBSeekSet => 0,
            IBStream_::IStreamSeekMode_::kIBSeekCur => *current as i64,
            IBStream_::IStreamSeekMode_::kIBSeekEnd => data.len() as i64,
            _ => return kInvalidArgument,
        };
        let Some(target) = base.checked_add(pos).filter(|&p| p >= 0) else { return kInvalidArgument };
        *current = target as usize;
        if !result.is_null() {
            // SAFETY: non-null out pointer.
            unsafe { *result = target };
        }
        kResultOk
    }

    unsafe fn tell(&self, pos: *mut int64) -> tresult {
        if pos.is_null() {
            return kInvalidArgument;
        }
        // SAFETY: non-null out pointer.
        unsafe { *pos = lock(&self.data).1 as int64 };
        kResultOk
    }
}
