"""Control-rate logic gives the same music offline as in real time (DESIGN §6): TrioSynth's
arpeggiator, rendered offline by pedalboard and DawDreamer (faster than real time), plays
its notes at exactly the samples of a render paced in real time by the test host
(`trio-host render --realtime`, where a timer ticks the control module), at several block
sizes and tempos, and identically in five runs.

Each note is a sine with a 1 ms release and a 50 % gate, so notes are separated by exact
silence and a note-on is the first non-zero sample after at least 200 zeros (the sine
starts at phase 0, so its first sample is 0: onsets are the note-on sample plus one)."""

import os
import subprocess

import dawdreamer as daw
import mido
import numpy as np
import pedalboard
import pytest
from pedalboard.io import AudioFile

from conftest import SR

CHORD = (60, 64, 67)
KEY_ON, KEY_OFF, SECONDS = 0.1, 2.4, 2.7
SETTINGS = ["Arpeggiator=On", "Waveform=Sine", "Release=1 ms"]


def onsets(channel):
    nz = channel != 0.0
    starts = np.flatnonzero(nz[1:] & ~nz[:-1]) + 1
    return [int(i) for i in starts if i >= 200 and not nz[i - 200 : i].any()]


# What the plugin logs when events of its control module reached the engine after their
# sample (the control worker ran later than its lookahead).
LATE = "came after their sample time"


def reference(bundle, tmp_path, block, extra):
    """Note-ons of a real-time-paced render in the test host. A render during which the
    machine held the control worker back for longer than its lookahead (a block plus
    20 ms) played some steps late, and the plugin says so: that render shows the machine,
    not the real-time behaviour, and is made again (up to three renders)."""
    host = os.environ.get("TRIO_HOST")
    assert host, "TRIO_HOST must name the trio-host binary (scripts/real_hosts.sh sets it)"
    out = tmp_path / f"reference-{block}.wav"
    notes = ",".join(f"{n}@{KEY_ON}+{KEY_OFF - KEY_ON}" for n in CHORD)
    args = [host, "render", bundle, "--notes", notes, "--seconds", str(SECONDS), "--block", str(block), "--realtime"]
    for setting in SETTINGS:
        args += ["--param", setting]
    for attempt in range(1, 4):
        done = subprocess.run(args + extra + ["--out", str(out)], check=True, capture_output=True, text=True)
        late = [line for line in done.stderr.splitlines() if LATE in line]
        if not late:
            break
        print(f"\nreal-time reference, block {block}, render {attempt}: {late[0]}")
    else:
        pytest.fail(f"three real-time reference renders in a row played late control events:\n{done.stderr}")
    with AudioFile(str(out)) as f:
        return onsets(f.read(f.frames)[0])


@pytest.mark.parametrize("rate", ["1/8", "1/16"])
@pytest.mark.parametrize("block", [64, 512, 1024])
def test_pedalboard_offline_renders_play_the_real_time_steps(bundle, tmp_path, block, rate):
    # pedalboard's transport gives 120 BPM and stands still: the arp follows that tempo
    # from the first key.
    expected = reference(bundle, tmp_path, block, ["--tempo", "120", "--stopped", "--param", f"Arp Rate={rate}"])
    plugin = pedalboard.load_plugin(bundle, initialization_timeout=0)
    plugin.arpeggiator = True
    plugin.waveform = "Sine"
    plugin.release_s = "1.0 ms"
    plugin.arp_rate = rate
    msgs = [mido.Message("note_on", note=n, velocity=100, time=KEY_ON) for n in CHORD]
    msgs += [mido.Message("note_off", note=n, velocity=0, time=KEY_OFF) for n in CHORD]
    runs = [onsets(plugin(msgs, duration=SECONDS, sample_rate=SR, buffer_size=block, reset=True)[0]) for _ in range(5)]
    print(f"\npedalboard, block {block}, {rate}: {len(runs[0])} steps, first at {runs[0][:3]}; "
          f"real time: {len(expected)} steps, first at {expected[:3]}")
    assert all(run == runs[0] for run in runs), "the five offline renders differ"
    assert runs[0] == expected
    step = {"1/8": 0.25, "1/16": 0.125}[rate] * SR  # at 120 BPM
    assert len(expected) == int((KEY_OFF - KEY_ON) * SR / step) + 1


@pytest.mark.parametrize("tempo", [100, 140])
@pytest.mark.parametrize("block", [128, 512])
def test_dawdreamer_offline_renders_play_the_real_time_steps(bundle, tmp_path, block, tempo):
    # DawDreamer plays a transport at its tempo: the arp follows the host's beat grid.
    expected = reference(bundle, tmp_path, block, ["--tempo", str(tempo)])
    runs = []
    for _ in range(5):
        engine = daw.RenderEngine(SR, block)
        engine.set_bpm(tempo)
        synth = engine.make_plugin_processor("synth", bundle)
        by_name = {d["name"]: d["index"] for d in synth.get_parameters_description()}
        synth.set_parameter(by_name["Arpeggiator"], 1.0)
        synth.set_parameter(by_name["Waveform"], 1.0)  # the last of Saw, Square, Sine
        synth.set_parameter(by_name["Release"], 0.0)  # 1 ms
        for n in CHORD:
            synth.add_midi_note(n, 100, KEY_ON, KEY_OFF - KEY_ON)
        engine.load_graph([(synth, [])])
        engine.render(SECONDS)
        runs.append(onsets(engine.get_audio()[0]))
    print(f"\nDawDreamer, block {block}, {tempo} BPM: {len(runs[0])} steps, first at {runs[0][:3]}; "
          f"real time: {len(expected)} steps, first at {expected[:3]}")
    assert all(run == runs[0] for run in runs), "the five offline renders differ"
    assert runs[0] == expected
    assert len(expected) >= 14
