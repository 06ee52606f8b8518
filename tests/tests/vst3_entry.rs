//! The bridge's VST3 entry points, loaded from a bundle-shaped folder with `dlopen`, the
//! way a host loads it: factory info, instance creation, a note through `process`, state
//! through `IBStream`, and the failure modes of a broken bundle.

use std::ffi::c_void;
use std::path::Path;

use std::sync::Mutex;

use anyhow::{Context, Result};
use integration::TestBundle;
use vst3::Steinberg::Vst::*;
use vst3::Steinberg::*;
use vst3::{Class, ComPtr, ComWrapper};

/// The bridge library and its factory.
struct Loaded {
    factory: ComPtr<IPluginFactory>,
    _lib: libloading::Library,
}

fn load(bridge: &Path) -> Result<Loaded> {
    // SAFETY: the bridge is our own library; `GetPluginFactory` has this signature and
    // returns a new reference, which `ComPtr::from_raw` takes over.
    unsafe {
        let lib = libloading::Library::new(bridge)?;
        let entry: libloading::Symbol<unsafe extern "system" fn(*mut c_void) -> bool> = lib.get(b"ModuleEntry\0")?;
        assert!(entry(std::ptr::null_mut()));
        let get: libloading::Symbol<unsafe extern "system" fn() -> *mut IPluginFactory> =
            lib.get(b"GetPluginFactory\0")?;
        let factory = ComPtr::from_raw(get()).context("GetPluginFactory returned null")?;
        Ok(Loaded { factory, _lib: lib })
    }
}

fn create<I: vst3::Interface>(bundle: &TestBundle, factory: &ComPtr<IPluginFactory>) -> Option<ComPtr<I>> {
    let cid = bundle.cid();
    let mut obj: *mut c_void = std::ptr::null_mut();
    // SAFETY: valid TUIDs and out pointer; a returned object carries a reference we own.
    let result = unsafe { factory.createInstance(cid.as_ptr(), I::IID.as_ptr() as FIDString, &mut obj) };
    if result != kResultOk {
        return None;
    }
    // SAFETY: a new reference to an `I`.
    unsafe { ComPtr::from_raw(obj.cast()) }
}

fn c_str(chars: &[std::ffi::c_char]) -> String {
    let bytes: Vec<u8> = chars.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn w_str(chars: &[TChar]) -> String {
    String::from_utf16_lossy(&chars.iter().take_while(|&&c| c != 0).copied().collect::<Vec<u16>>())
}

#[test]
fn the_factory_reports_what_moduleinfo_json_says() -> Result<()> {
    let bundle = TestBundle::synth()?;
    let loaded = load(&bundle.bridge())?;
    let info_json = &bundle.moduleinfo;
    let class_json = &info_json["Classes"][0];
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    // SAFETY: valid out structs.
    unsafe {
        let mut info: PFactoryInfo = std::mem::zeroed();
        assert_eq!(loaded.factory.getFactoryInfo(&mut info), kResultOk);
        assert_eq!(c_str(&info.vendor), text(&info_json["Factory Info"]["Vendor"]));
        assert_eq!(c_str(&info.url), text(&info_json["Factory Info"]["URL"]));
        assert_eq!(c_str(&info.email), text(&info_json["Factory Info"]["E-Mail"]));
        assert_eq!(loaded.factory.countClasses() as usize, info_json["Classes"].as_array().map_or(0, Vec::len));
        let f2 = loaded.factory.cast::<IPluginFactory2>().context("no IPluginFactory2")?;
        let mut c2: PClassInfo2 = std::mem::zeroed();
        assert_eq!(f2.getClassInfo2(0, &mut c2), kResultOk);
        assert_eq!(c2.cid, bundle.cid());
        assert_eq!(c_str(&c2.category), text(&class_json["Category"]));
        assert_eq!(c_str(&c2.name), text(&class_json["Name"]));
        assert_eq!(c_str(&c2.vendor), text(&class_json["Vendor"]));
        assert_eq!(c_str(&c2.version), text(&class_json["Version"]));
        assert_eq!(c_str(&c2.sdkVersion), text(&class_json["SDKVersion"]));
        let subs: Vec<String> = class_json["Sub Categories"].as_array().into_iter().flatten().map(text).collect();
        assert_eq!(c_str(&c2.subCategories), subs.join("|"));
        assert_eq!(u64::from(c2.classFlags), class_json["Class Flags"].as_u64().unwrap_or(u64::MAX));
        assert_eq!(i64::from(c2.cardinality), class_json["Cardinality"].as_i64().unwrap_or(-1));
        let f3 = loaded.factory.cast::<IPluginFactory3>().context("no IPluginFactory3")?;
        let mut cw: PClassInfoW = std::mem::zeroed();
        assert_eq!(f3.getClassInfoUnicode(0, &mut cw), kResultOk);
        assert_eq!(w_str(&cw.name), text(&class_json["Name"]));
        assert_eq!(w_str(&cw.vendor), text(&class_json["Vendor"]));
        assert_eq!(loaded.factory.getClassInfo(1, &mut std::mem::zeroed()), kInvalidArgument);
    }
    Ok(())
}

/// A host-side event list.
struct EventList(Mutex<Vec<Event>>);

impl Class for EventList {
    type Interfaces = (IEventList,);
}

impl IEventListTrait for EventList {
    unsafe fn getEventCount(&self) -> int32 {
        self.0.lock().unwrap().len() as int32
    }
    unsafe fn getEvent(&self, index: int32, e: *mut Event) -> tresult {
        match self.0.lock().unwrap().get(index as usize) {
            Some(ev) => {
                // SAFETY: the plugin passes a valid out pointer.
                unsafe { *e = *ev };
                kResultOk
            }
            None => kInvalidArgument,
        }
    }
    unsafe fn addEvent(&self, _e: *mut Event) -> tresult {
        kResultFalse
    }
}

fn note_on(offset: i32, pitch: i16) -> Event {
    // SAFETY: plain data.
    let mut e: Event = unsafe { std::mem::zeroed() };
    e.sampleOffset = offset;
    e.r#type = Event_::EventTypes_::kNoteOnEvent as u16;
    e.__field0.noteOn = NoteOnEvent { channel: 0, pitch, tuning: 0.0, velocity: 0.8, length: 0, noteId: -1 };
    e
}

/// A host-side memory stream.
struct Stream(Mutex<(Vec<u8>, usize)>);

impl Class for Stream {
    type Interfaces = (IBStream,);
}

impl IBStreamTrait for Stream {
    unsafe fn read(&self, buffer: *mut c_void, n: int32, read: *mut int32) -> tresult {
        let mut s = self.0.lock().unwrap();
        let (data, pos) = &mut *s;
        let count = (n.max(0) as usize).min(data.len() - *pos);
        // SAFETY: the plugin's buffer holds `n >= count` bytes.
        unsafe { std::ptr::copy_nonoverlapping(data[*pos..].as_ptr(), buffer.cast(), count) };
        *pos += count;
        if !read.is_null() {
            // SAFETY: non-null out pointer.
            unsafe { *read = count as int32 };
        }
        kResultOk
    }
    unsafe fn write(&self, buffer: *mut c_void, n: int32, written: *mut int32) -> tresult {
        let mut s = self.0.lock().unwrap();
        // SAFETY: the plugin's buffer holds `n` bytes.
        s.0.extend_from_slice(unsafe { std::slice::from_raw_parts(buffer.cast::<u8>(), n.max(0) as usize) });
        if !written.is_null() {
            // SAFETY: non-null out pointer.
            unsafe { *written = n };
        }
        kResultOk
    }
    unsafe fn seek(&self, _pos: int64, _mode: int32, _result: *mut int64) -> tresult {
        kNotImplemented
    }
    unsafe fn tell(&self, pos: *mut int64) -> tresult {
        // SAFETY: the plugin passes a valid pointer.
        unsafe { *pos = self.0.lock().unwrap().1 as int64 };
        kResultOk
    }
}

#[test]
fn an_instance_plays_a_note_through_process_and_round_trips_state() -> Result<()> {
    let bundle = TestBundle::synth()?;
    let loaded = load(&bundle.bridge())?;
    let processor = create::<IAudioProcessor>(&bundle, &loaded.factory).context("createInstance refused")?;
    let component = processor.cast::<IComponent>().context("no IComponent")?;
    let controller = processor.cast::<IEditController>().context("the component is not its own controller")?;
    let sr = 48_000.0;
    // SAFETY: all pointers below are to locals valid for each call.
    unsafe {
        assert_eq!(component.initialize(std::ptr::null_mut()), kResultOk);
        assert_eq!(component.getBusCount(MediaTypes_::kAudio as i32, BusDirections_::kOutput as i32), 1);
        assert_eq!(component.getBusCount(MediaTypes_::kEvent as i32, BusDirections_::kInput as i32), 1);
        assert!(controller.getParameterCount() >= 11);
        let mut info: ParameterInfo = std::mem::zeroed();
        assert_eq!(controller.getParameterInfo(6, &mut info), kResultOk);
        assert_eq!(w_str(&info.title), "Filter Cutoff");
        let mut text: String128 = [0; 128];
        assert_eq!(controller.getParamStringByValue(info.id, info.defaultNormalizedValue, &mut text), kResultOk);
        assert_eq!(w_str(&text), "8.00 kHz");

        let mut setup = ProcessSetup {
            processMode: ProcessModes_::kRealtime as i32,
            symbolicSampleSize: SymbolicSampleSizes_::kSample32 as i32,
            maxSamplesPerBlock: 512,
            sampleRate: sr,
        };
        assert_eq!(processor.setupProcessing(&mut setup), kResultOk);
        assert_eq!(component.setActive(1), kResultOk);
        assert_eq!(processor.setProcessing(1), kResultOk);

        let (mut left, mut right) = (vec![0.0f32; 512], vec![0.0f32; 512]);
        let mut rendered = Vec::new();
        let events = ComWrapper::new(EventList(Mutex::new(vec![note_on(100, 69)])));
        let events = events.to_com_ptr::<IEventList>().unwrap();
        for block in 0..20 {
            let mut channels = [left.as_mut_ptr(), right.as_mut_ptr()];
            let mut out = AudioBusBuffers {
                numChannels: 2,
                silenceFlags: 0,
                __field0: AudioBusBuffers__type0 { channelBuffers32: channels.as_mut_ptr() },
            };
            let mut data = ProcessData {
                processMode: ProcessModes_::kRealtime as i32,
                symbolicSampleSize: SymbolicSampleSizes_::kSample32 as i32,
                numSamples: 512,
                numInputs: 0,
                numOutputs: 1,
                inputs: std::ptr::null_mut(),
                outputs: &mut out,
                inputParameterChanges: std::ptr::null_mut(),
                outputParameterChanges: std::ptr::null_mut(),
                inputEvents: if block == 0 { events.as_ptr() } else { std::ptr::null_mut() },
                outputEvents: std::ptr::null_mut(),
                processContext: std::ptr::null_mut(),
            };
            assert_eq!(processor.process(&mut data), kResultOk);
            rendered.extend_from_slice(&left);
        }
        assert!(rendered[..100].iter().all(|&s| s == 0.0), "sound before the note's offset");
        let f = integration::peak_frequency(&rendered[4800..], sr, 400.0, 480.0, 0.5);
        assert!((f - 440.0).abs() < 1.0, "fundamental at {f} Hz");

        // State: save, change, restore; garbage changes nothing.
        let saved = ComWrapper::new(Stream(Mutex::new((Vec::new(), 0))));
        assert_eq!(component.getState(saved.to_com_ptr::<IBStream>().unwrap().as_ptr()), kResultOk);
        let bytes = saved.0.lock().unwrap().0.clone();
        assert!(String::from_utf8_lossy(&bytes).contains("\"version\":1"));
        let before = controller.getParamNormalized(6);
        assert_eq!(controller.setParamNormalized(6, 0.1), kResultOk);
        assert_eq!(controller.getParamNormalized(6), 0.1);
        let restore = ComWrapper::new(Stream(Mutex::new((bytes, 0))));
        assert_eq!(component.setState(restore.to_com_ptr::<IBStream>().unwrap().as_ptr()), kResultOk);
        assert_eq!(controller.getParamNormalized(6), before);
        for bad in [&b""[..], b"{\"format\":", b"\xff\xfe garbage"] {
            let stream = ComWrapper::new(Stream(Mutex::new((bad.to_vec(), 0))));
            assert_eq!(component.setState(stream.to_com_ptr::<IBStream>().unwrap().as_ptr()), kResultFalse);
            assert_eq!(controller.getParamNormalized(6), before);
        }
        assert_eq!(component.setActive(0), kResultOk);
        assert_eq!(component.terminate(), kResultOk);
    }
    Ok(())
}

#[test]
fn a_bundle_with_a_broken_module_refuses_instances_without_crashing() -> Result<()> {
    let bundle = TestBundle::synth()?;
    std::fs::write(bundle.bin("rt_engine.so"), "not a library\n".repeat(20))?;
    let loaded = load(&bundle.bridge())?;
    // SAFETY: a valid factory.
    assert_eq!(unsafe { loaded.factory.countClasses() }, 1, "the class is still described");
    assert!(create::<IAudioProcessor>(&bundle, &loaded.factory).is_none());
    Ok(())
}

/// The identity is compiled into the bridge: an edited or missing `moduleinfo.json`
/// changes nothing a host sees through the factory.
#[test]
fn an_edited_or_missing_moduleinfo_changes_nothing_the_host_sees() -> Result<()> {
    for edit in [true, false] {
        let bundle = TestBundle::synth()?;
        let original = bundle.name();
        let info = bundle.path.join("Contents/Resources/moduleinfo.json");
        if edit {
            let text = std::fs::read_to_string(&info)?.replace(&original, "Impostor").replace("Trio Audio", "Nobody");
            std::fs::write(&info, text)?;
        } else {
            std::fs::remove_file(&info)?;
        }
        let loaded = load(&bundle.bridge())?;
        // SAFETY: a valid factory and valid out structs.
        unsafe {
            assert_eq!(loaded.factory.countClasses(), 1);
            let mut c: PClassInfo = std::mem::zeroed();
            assert_eq!(loaded.factory.getClassInfo(0, &mut c), kResultOk);
            assert_eq!(c_str(&c.name), original);
            assert_eq!(c.cid, bundle.cid());
            let mut f: PFactoryInfo = std::mem::zeroed();
            assert_eq!(loaded.factory.getFactoryInfo(&mut f), kResultOk);
            assert_eq!(c_str(&f.vendor), "Trio Audio");
        }
        assert!(create::<IAudioProcessor>(&bundle, &loaded.factory).is_some(), "edit {edit}");
    }
    Ok(())
}
