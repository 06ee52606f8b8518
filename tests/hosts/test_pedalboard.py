"""The bundle in pedalboard (Spotify; JUCE's VST3 hosting inside)."""

import time

import mido
import numpy as np
import pedalboard

from conftest import SR, fundamental, high_band_energy, host_key


def load(bundle):
    return pedalboard.load_plugin(bundle, initialization_timeout=0)


def notes(pitches, on=0.0, off=1.0, velocity=100):
    msgs = [mido.Message("note_on", note=n, velocity=velocity, time=on) for n in pitches]
    msgs += [mido.Message("note_off", note=n, velocity=0, time=off) for n in pitches]
    return msgs


def test_loads_as_an_instrument_with_the_control_modules_parameters(bundle, definitions):
    start = time.perf_counter()
    plugin = load(bundle)
    # Comparisons with nih-plug are measured side by side by `cargo xtask bench`.
    print(f"\npedalboard load time: {(time.perf_counter() - start) * 1000:.1f} ms")
    assert plugin.is_instrument
    # The hidden parameters hosts map MIDI controllers to are named "MIDI CC <n>" (JUCE's
    # convention), which pedalboard leaves out of a plugin's parameters.
    midi = [d for d in definitions if d["name"].startswith("MIDI CC ")]
    assert [d["name"] for d in midi] == ["MIDI CC 129 (Pitch Bend)"], midi
    assert all(d["flags"] & 16 for d in midi), midi  # trio::abi::param_flags::HIDDEN
    own = [d for d in definitions if d not in midi]
    assert set(plugin.parameters) == {host_key(d) for d in own}
    numeric = 0
    for d in own:
        param = plugin.parameters[host_key(d)]
        lo, hi, _step = param.range
        if isinstance(lo, (int, float)) and not isinstance(lo, bool) and lo is not None and hi is not None:
            scale = 100.0 if d["unit"] == "%" else 1.0
            assert abs(lo - d["min"] * scale) < 1e-6, (d["name"], param.range)
            assert abs(hi - d["max"] * scale) < 1e-6, (d["name"], param.range)
            numeric += 1
    # Gain, sustain, cutoff, resonance and velocity sensitivity read as plain numbers.
    assert numeric >= 5, numeric


def test_a_note_has_the_right_pitch_and_a_chord_releases_to_silence(bundle):
    plugin = load(bundle)
    a4 = plugin(notes([69], off=1.0), duration=1.5, sample_rate=SR, buffer_size=512)
    assert a4.shape[0] == 2
    f = fundamental(a4[0, int(0.1 * SR) : int(0.9 * SR)])
    assert abs(f - 440.0) < 1.0, f

    chord = plugin(notes([60, 64, 67], off=1.0), duration=2.0, sample_rate=SR, buffer_size=512)
    held = chord[:, int(0.1 * SR) : SR]
    assert np.sqrt(np.mean(held**2)) > 0.02
    # Default release is 300 ms: from 1.5 s on the output is exactly silent.
    assert np.all(chord[:, int(1.5 * SR) :] == 0.0)


def test_a_parameter_set_in_plain_units_changes_the_sound(bundle):
    plugin = load(bundle)
    bright = plugin(notes([48]), duration=0.8, sample_rate=SR, buffer_size=512)[0, 4800:]
    plugin.filter_cutoff_hz = 400
    # pedalboard maps plain values through a table of display texts, so allow 2 %.
    assert abs(plugin.filter_cutoff_hz - 400) <= 8.0
    dark = plugin(notes([48]), duration=0.8, sample_rate=SR, buffer_size=512)[0, 4800:]
    assert high_band_energy(dark) < 0.05 * high_band_energy(bright)


def test_state_round_trips_into_a_new_instance(bundle):
    plugin = load(bundle)
    plugin.filter_cutoff_hz = 1200
    plugin.resonance = 60
    plugin.waveform = "Square"
    first = plugin(notes([57, 60, 64]), duration=1.5, sample_rate=SR, buffer_size=512)
    state = plugin.raw_state

    other = load(bundle)
    assert other.filter_cutoff_hz != plugin.filter_cutoff_hz
    other.raw_state = state
    assert other.waveform == "Square"
    second = other(notes([57, 60, 64]), duration=1.5, sample_rate=SR, buffer_size=512)
    assert np.array_equal(first, second)


def test_render_time_of_a_16_note_chord(bundle):
    plugin = load(bundle)
    chord = [48, 52, 55, 59, 60, 62, 64, 65, 67, 69, 71, 72, 74, 76, 77, 79]
    times = []
    for _ in range(5):
        start = time.perf_counter()
        out = plugin(notes(chord, off=8.0), duration=10.0, sample_rate=SR, buffer_size=512)
        times.append(time.perf_counter() - start)
    median = sorted(times)[len(times) // 2] * 1000
    print(f"\npedalboard: 16-note chord held 8 s, 10 s render at 48 kHz, buffer 512: {median:.1f} ms median of 5"
          " (against nih-plug in the same process: cargo xtask bench)")
    assert np.abs(out).max() > 0.1
    assert np.all(out[:, int(9.5 * SR) :] == 0.0)
