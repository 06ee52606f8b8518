//! Notes in seconds: parsed from a short text syntax or a MIDI file, scheduled into
//! blocks, rendered through a plugin and written to a WAV file.

use std::path::Path;

use crate::error::HostError;
use crate::plugin::{NoteEvent, Plugin};

/// A note: pitch, velocity, start and length in seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Note {
    /// MIDI note number.
    pub pitch: u8,
    /// Velocity `0..=1`.
    pub velocity: f32,
    /// Start, seconds.
    pub start: f64,
    /// Length, seconds.
    pub length: f64,
    /// MIDI channel `0..16`.
    pub channel: u8,
}

/// Velocity of notes that do not give one.
pub const DEFAULT_VELOCITY: f32 = 0.8;

/// Parses `PITCH@START+LENGTH[:VELOCITY]`, comma-separated, in seconds:
/// `"60@0.0+1.0,64@0.5+1.0:0.6"`.
///
/// # Examples
/// ```
/// let notes = trio_host::parse_notes("69@0+1, 72@0.5+0.25:0.5").unwrap();
/// assert_eq!(notes.len(), 2);
/// assert_eq!((notes[1].pitch, notes[1].start, notes[1].length, notes[1].velocity), (72, 0.5, 0.25, 0.5));
/// ```
///
/// # Errors
/// [`HostError::NoteSyntax`] naming the note and what is wrong with it.
pub fn parse_notes(text: &str) -> Result<Vec<Note>, HostError> {
    let mut notes = Vec::new();
    for item in text.split(',').map(str::trim) {
        if item.is_empty() {
            if text.trim().is_empty() {
                return Err(HostError::NoteSyntax { text: text.to_owned(), reason: "there are no notes".into() });
            }
            continue;
        }
        notes.push(parse_note(item)?);
    }
    Ok(notes)
}

fn parse_note(item: &str) -> Result<Note, HostError> {
    let bad = |reason: String| HostError::NoteSyntax { text: item.to_owned(), reason };
    let (pitch, rest) = item.split_once('@').ok_or_else(|| bad("it has no '@' before the start time".into()))?;
    let (start, rest) = rest.split_once('+').ok_or_else(|| bad("it has no '+' before the length".into()))?;
    let (length, velocity) = match rest.split_once(':') {
        Some((l, v)) => (l, Some(v)),
        None => (rest, None),
    };
    let pitch: u8 = pitch
        .trim()
        .parse()
        .ok()
        .filter(|&p| p < 128)
        .ok_or_else(|| bad(format!("the pitch {:?} is not a MIDI note number 0..=127", pitch.trim())))?;
    let number = |what: &str, text: &str| -> Result<f64, HostError> {
        text.trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| bad(format!("the {what} {:?} is not a number of seconds >= 0", text.trim())))
    };
    let start = number("start", start)?;
    let length = number("length", length)?;
    let velocity = match velocity {
        None => DEFAULT_VELOCITY,
        Some(v) => v
            .trim()
            .parse::<f32>()
            .ok()
            .filter(|v| (0.0..=1.0).contains(v) && *v > 0.0)
            .ok_or_else(|| bad(format!("the velocity {:?} is not a number in (0, 1]", v.trim())))?,
    };
    Ok(Note { pitch, velocity, start, length, channel: 0 })
}

/// Reads the notes of a standard MIDI file (all tracks, tempo changes honoured; SMPTE
/// timing too). A note-on of velocity 0 ends a note; a note still held at the end of
/// the file ends there.
///
/// # Errors
/// [`HostError::MidiFile`] naming the file and what is wrong.
pub fn read_midi_file(path: &Path) -> Result<Vec<Note>, HostError> {
    let bad = |reason: String| HostError::MidiFile { path: path.to_path_buf(), reason };
    let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let smf = midly::Smf::parse(&bytes).map_err(|e| bad(format!("it is not a valid MIDI file ({e})")))?;
    // (absolute tick, track, event) of every event, in time order.
    let mut timeline = Vec::new();
    for (track, events) in smf.tracks.iter().enumerate() {
        let mut tick = 0u64;
        for event in events {
            tick += u64::from(event.delta.as_int());
            timeline.push((tick, track, event.kind));
        }
    }
    timeline.sort_by_key(|&(tick, track, _)| (tick, track));
    let seconds_per_tick_at = |micros_per_beat: f64| -> Result<f64, HostError> {
        match smf.header.timing {
            midly::Timing::Metrical(tpb) if tpb.as_int() > 0 => Ok(micros_per_beat / 1e6 / f64::from(tpb.as_int())),
            midly::Timing::Metrical(_) => Err(bad("its header says 0 ticks per beat".into())),
            midly::Timing::Timecode(fps, sub) => Ok(1.0 / (f64::from(fps.as_f32()) * f64::from(sub.max(1)))),
        }
    };
    let mut per_tick = seconds_per_tick_at(500_000.0)?;
    let (mut last_tick, mut now) = (0u64, 0.0f64);
    // Open notes: (channel, pitch) -> (start, velocity).
    let mut open: Vec<(u8, u8, f64, f32)> = Vec::new();
    let mut notes = Vec::new();
    for (tick, _, kind) in timeline {
        now += (tick - last_tick) as f64 * per_tick;
        last_tick = tick;
        match kind {
            midly::TrackEventKind::Meta(midly::MetaMessage::Tempo(t)) => {
                per_tick = seconds_per_tick_at(f64::from(t.as_int()))?;
            }
            midly::TrackEventKind::Midi { channel, message } => {
                let ch = channel.as_int();
                match message {
                    midly::MidiMessage::NoteOn { key, vel } if vel.as_int() > 0 => {
                        open.push((ch, key.as_int(), now, f32::from(vel.as_int()) / 127.0));
                    }
                    midly::MidiMessage::NoteOn { key, .. } | midly::MidiMessage::NoteOff { key, .. } => {
                        if let Some(i) = open.iter().position(|&(c, p, _, _)| c == ch && p == key.as_int()) {
                            let (_, pitch, start, velocity) = open.remove(i);
                            notes.push(Note { pitch, velocity, start, length: now - start, channel: ch });
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    for (channel, pitch, start, velocity) in open {
        notes.push(Note { pitch, velocity, start, length: now - start, channel });
    }
    notes.sort_by(|a, b| a.start.total_cmp(&b.start));
    Ok(notes)
}

/// Notes turned into timed note events at one sample rate, handed out block by block.
///
/// # Examples
/// ```
/// use trio_host::{Note, NoteSchedule};
/// let mut schedule = NoteSchedule::new(&[Note { pitch: 60, velocity: 1.0, start: 0.001, length: 0.001, channel: 0 }], 48_000.0);
/// let mut events = Vec::new();
/// schedule.block(0, 64, &mut events); // samples 0..64: the note-on at 48
/// schedule.block(64, 64, &mut events); // samples 64..128: the note-off at 96
/// assert_eq!(events.len(), 2);
/// assert_eq!((events[0].offset, events[0].on, events[1].offset, events[1].on), (48, true, 96 - 64, false));
/// ```
pub struct NoteSchedule {
    /// `(sample, event with offset 0)`, sorted by sample (offs before ons at one sample).
    events: Vec<(u64, NoteEvent)>,
    next: usize,
}

impl NoteSchedule {
    /// Schedules `notes` at `sample_rate`.
    pub fn new(notes: &[Note], sample_rate: f64) -> Self {
        let at = |seconds: f64| (seconds * sample_rate).round().max(0.0) as u64;
        let mut events = Vec::with_capacity(notes.len() * 2);
        for n in notes {
            let on = at(n.start);
            let off = at(n.start + n.length).max(on + 1);
            let event = NoteEvent { offset: 0, pitch: n.pitch, velocity: n.velocity, on: true, channel: n.channel };
            events.push((on, event));
            events.push((off, NoteEvent { on: false, velocity: 0.0, ..event }));
        }
        events.sort_by_key(|&(sample, e)| (sample, e.on));
        Self { events, next: 0 }
    }

    /// Appends to `out` the events of the block starting at sample `start` with `frames`
    /// frames, with offsets relative to the block. Call for consecutive blocks.
    pub fn block(&mut self, start: u64, frames: usize, out: &mut Vec<NoteEvent>) {
        let end = start + frames as u64;
        while let Some(&(sample, event)) = self.events.get(self.next) {
            if sample >= end {
                break;
            }
            self.next += 1;
            out.push(NoteEvent { offset: sample.saturating_sub(start) as u32, ..event });
        }
    }

    /// The sample of the last event (0 if none).
    pub fn end_sample(&self) -> u64 {
        self.events.last().map_or(0, |&(s, _)| s)
    }
}

/// Renders `notes` through a started plugin for `frames` frames in blocks of `block`
/// (the last one shorter), returning the first output bus's channels.
///
/// # Errors
/// The first block that fails.
pub fn render(plugin: &mut Plugin, notes: &[Note], frames: usize, block: usize) -> Result<Vec<Vec<f32>>, HostError> {
    render_paced(plugin, notes, frames, block, false)
}

/// [`render`], optionally paced like a live host: with `realtime`, each block is
/// processed when its audio is due by the wall clock (the first at once), and the
/// plugin gets main-thread time ([`Plugin::idle`]) every 10 ms, as a host's audio
/// device and user interface give it. Start the plugin with `offline: false` for that.
///
/// # Errors
/// As [`render`].
pub fn render_paced(
    plugin: &mut Plugin,
    notes: &[Note],
    frames: usize,
    block: usize,
    realtime: bool,
) -> Result<Vec<Vec<f32>>, HostError> {
    let setup = plugin.setup().ok_or(HostError::NotSetUp)?;
    let started = std::time::Instant::now();
    let mut last_idle = started;
    let block = block.clamp(1, setup.max_block);
    let mut schedule = NoteSchedule::new(notes, setup.sample_rate);
    let mut out: Vec<Vec<f32>> = Vec::new();
    let mut events = Vec::new();
    let mut done = 0usize;
    while done < frames {
        let n = block.min(frames - done);
        if realtime {
            let due = started + std::time::Duration::from_secs_f64(done as f64 / setup.sample_rate);
            if let Some(wait) = due.checked_duration_since(std::time::Instant::now()) {
                std::thread::sleep(wait);
            }
            if last_idle.elapsed() >= std::time::Duration::from_millis(10) {
                last_idle = std::time::Instant::now();
                plugin.idle()?;
            }
        }
        events.clear();
        schedule.block(done as u64, n, &mut events);
        let channels = plugin.process(n, &events, &[])?;
        if out.is_empty() {
            out = channels.iter().map(|_| Vec::with_capacity(frames)).collect();
        }
        for (o, c) in out.iter_mut().zip(channels) {
            o.extend_from_slice(c);
        }
        done += n;
    }
    Ok(out)
}

/// Writes `channels` (equal lengths) as a 32-bit float WAV file.
///
/// # Errors
/// [`HostError::Wav`] naming the file.
pub fn write_wav(path: &Path, channels: &[Vec<f32>], sample_rate: f64) -> Result<(), HostError> {
    let bad = |reason: String| HostError::Wav { path: path.to_path_buf(), reason };
    if channels.is_empty() {
        return Err(bad("the plugin produced no output channels".into()));
    }
    let spec = hound::WavSpec {
        channels: channels.len() as u16,
        sample_rate: sample_rate.round() as u32,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut writer = hound::WavWriter::create(path, spec).map_err(|e| bad(e.to_string()))?;
    let frames = channels.iter().map(Vec::len).min().unwrap_or(0);
    for i in 0..frames {
        for c in channels {
            writer.write_sample(c[i]).map_err(|e| bad(e.to_string()))?;
        }
    }
    writer.finalize().map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syntax_error(text: &str) -> String {
        match parse_notes(text) {
            Err(e @ HostError::NoteSyntax { .. }) => e.to_string(),
            other => panic!("{text:?}: {other:?}"),
        }
    }

    #[test]
    fn parses_notes_with_and_without_velocity() {
        let notes = parse_notes("60@0.0+1.0, 64@0.5+1:0.25,").unwrap();
        assert_eq!(notes.len(), 2);
        assert_eq!(notes[0], Note { pitch: 60, velocity: DEFAULT_VELOCITY, start: 0.0, length: 1.0, channel: 0 });
        assert_eq!((notes[1].pitch, notes[1].start, notes[1].velocity), (64, 0.5, 0.25));
    }

    #[test]
    fn every_bad_note_names_itself_and_the_syntax() {
        for (text, needle) in [
            ("", "no notes"),
            ("60", "no '@'"),
            ("60@1", "no '+'"),
            ("128@0+1", "pitch \"128\""),
            ("C4@0+1", "pitch \"C4\""),
            ("60@-1+1", "start \"-1\""),
            ("60@0+long", "length \"long\""),
            ("60@0+1:2", "velocity \"2\""),
            ("60@0+1:0", "velocity \"0\""),
            ("60@0+1,61@x+1", "start \"x\""),
        ] {
            let msg = syntax_error(text);
            assert!(msg.contains(needle), "{text:?}: {msg}");
            assert!(msg.contains("PITCH@START+LENGTH"), "{msg}");
        }
    }

    #[test]
    fn schedules_events_into_the_right_blocks_with_offs_first() {
        let notes = parse_notes("60@0+0.5,62@0.5+0.5").unwrap();
        let mut schedule = NoteSchedule::new(&notes, 1000.0);
        let mut events = Vec::new();
        schedule.block(0, 400, &mut events);
        assert_eq!(events.len(), 1);
        events.clear();
        schedule.block(400, 400, &mut events);
        // At sample 500 the first note ends and the second starts: off before on.
        assert_eq!(
            events.iter().map(|e| (e.offset, e.pitch, e.on)).collect::<Vec<_>>(),
            [(100, 60, false), (100, 62, true)]
        );
        assert_eq!(schedule.end_sample(), 1000);
    }

    fn write_midi(path: &Path) {
        use midly::num::{u4, u7, u15, u24, u28};
        use midly::{Format, Header, MetaMessage, MidiMessage, Smf, Timing, TrackEvent, TrackEventKind};
        let ev = |delta: u32, kind| TrackEvent { delta: u28::new(delta), kind };
        let note = |on: bool, key: u8, vel: u8| TrackEventKind::Midi {
            channel: u4::new(0),
            message: if on {
                MidiMessage::NoteOn { key: u7::new(key), vel: u7::new(vel) }
            } else {
                MidiMessage::NoteOff { key: u7::new(key), vel: u7::new(0) }
            },
        };
        let track = vec![
            // 120 bpm, 480 ticks per beat: 1 beat = 0.5 s.
            ev(0, TrackEventKind::Meta(MetaMessage::Tempo(u24::new(500_000)))),
            ev(0, note(true, 69, 127)),
            ev(480, note(false, 69, 0)),
            // Tempo halves: a beat is now 1 s.
            ev(0, TrackEventKind::Meta(MetaMessage::Tempo(u24::new(1_000_000)))),
            ev(0, note(true, 72, 64)),
            // A note-on of velocity 0 ends the note.
            ev(480, note(true, 72, 0)),
            ev(0, note(true, 76, 100)),
            ev(240, TrackEventKind::Meta(MetaMessage::EndOfTrack)),
        ];
        let smf =
            Smf { header: Header::new(Format::SingleTrack, Timing::Metrical(u15::new(480))), tracks: vec![track] };
        smf.save(path).unwrap();
    }

    #[test]
    fn reads_a_midi_file_with_tempo_changes() {
        let path = std::env::temp_dir().join(format!("trio-host-test-{}.mid", std::process::id()));
        write_midi(&path);
        let notes = read_midi_file(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        let summary: Vec<(u8, f64, f64)> = notes.iter().map(|n| (n.pitch, n.start, n.length)).collect();
        assert_eq!(summary, [(69, 0.0, 0.5), (72, 0.5, 1.0), (76, 1.5, 0.5)]);
        assert_eq!(notes[0].velocity, 1.0);
    }

    #[test]
    fn a_bad_midi_file_is_named_in_the_error() {
        let path = std::env::temp_dir().join(format!("trio-host-bad-{}.mid", std::process::id()));
        std::fs::write(&path, b"MThd but not really").unwrap();
        let msg = read_midi_file(&path).unwrap_err().to_string();
        let _ = std::fs::remove_file(&path);
        assert!(msg.contains(&path.display().to_string()) && msg.contains("not a valid MIDI file"), "{msg}");
        let missing = read_midi_file(Path::new("/nonexistent/song.mid")).unwrap_err().to_string();
        assert!(missing.contains("/nonexistent/song.mid") && missing.contains(".mid"), "{missing}");
    }

    #[test]
    fn writes_a_float_wav_that_reads_back() {
        let path = std::env::temp_dir().join(format!("trio-host-test-{}.wav", std::process::id()));
        let channels = vec![vec![0.0, 0.5, -0.25], vec![1.0, -1.0, 0.125]];
        write_wav(&path, &channels, 44_100.0).unwrap();
        let mut reader = hound::WavReader::open(&path).unwrap();
        assert_eq!(reader.spec().channels, 2);
        assert_eq!(reader.spec().sample_rate, 44_100);
        let samples: Vec<f32> = reader.samples::<f32>().map(Result::unwrap).collect();
        let _ = std::fs::remove_file(&path);
        assert_eq!(samples, [0.0, 1.0, 0.5, -1.0, -0.25, 0.125]);
        let msg = write_wav(Path::new("/nonexistent/dir/out.wav"), &channels, 48_000.0).unwrap_err().to_string();
        assert!(msg.contains("/nonexistent/dir/out.wav") && msg.contains("writable"), "{msg}");
    }
}
