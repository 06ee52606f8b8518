"""The bundle in DawDreamer (JUCE's VST3 hosting inside; normalized parameters)."""

import dawdreamer as daw
import numpy as np

from conftest import SR, fundamental, high_band_energy


def render_note(bundle, pitch, seconds, normalized=None):
    """A fresh engine playing one note for 1 s, with parameters set by name (normalized)."""
    engine = daw.RenderEngine(SR, 512)
    synth = engine.make_plugin_processor("synth", bundle)
    by_name = {d["name"]: d["index"] for d in synth.get_parameters_description()}
    for name, value in (normalized or {}).items():
        synth.set_parameter(by_name[name], value)
    synth.add_midi_note(pitch, 100, 0.0, 1.0)
    engine.load_graph([(synth, [])])
    engine.render(seconds)
    # The engine owns the plugin: the caller keeps it alive while it uses `synth`.
    return engine.get_audio(), synth, by_name, engine


def test_parameters_are_listed_with_names_units_and_defaults(bundle, definitions):
    _, synth, _, _engine = render_note(bundle, 60, 0.1)
    described = {d["name"]: d for d in synth.get_parameters_description()}
    assert set(described) == {d["name"] for d in definitions}
    for d in definitions:
        host = described[d["name"]]
        assert host["label"] == d["unit"], d["name"]
        assert abs(host["defaultValue"] - d["default_normalized"]) < 1e-6, d["name"]
        assert host["defaultValueText"] == d["default_text"], d["name"]


def test_renders_a_note_at_its_pitch_and_releases_to_silence(bundle):
    audio, _, _, _ = render_note(bundle, 69, 1.8)
    assert audio.shape[0] == 2
    f = fundamental(audio[0, int(0.1 * SR) : int(0.9 * SR)])
    assert abs(f - 440.0) < 1.0, f
    assert np.sqrt(np.mean(audio[:, : SR] ** 2)) > 0.01
    # Note-off at 1 s, default release 300 ms.
    assert np.all(audio[:, int(1.5 * SR) :] == 0.0)


def test_a_normalized_parameter_is_heard(bundle):
    bright, _, _, _ = render_note(bundle, 48, 0.8)
    dark, synth, by_name, _engine = render_note(bundle, 48, 0.8, {"Filter Cutoff": 0.2})
    assert synth.get_parameter_text(by_name["Filter Cutoff"]) == "80 Hz"  # 20 Hz * 1000^0.2 = 79.6 Hz
    assert high_band_energy(dark[0, 4800:]) < 0.05 * high_band_energy(bright[0, 4800:])
