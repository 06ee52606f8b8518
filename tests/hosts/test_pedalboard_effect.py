"""TrioEcho, the example effect, in pedalboard (JUCE's VST3 hosting; renders offline and
compensates the latency a plugin reports, re-reading it when it changes)."""

import math

import numpy as np
import pedalboard

from conftest import SR, host_key


def load(bundle):
    return pedalboard.load_plugin(bundle, initialization_timeout=0)


def noise(seconds=1.0, level=0.25, seed=1):
    rng = np.random.default_rng(seed)
    return ((rng.random((2, int(seconds * SR))) * 2 - 1) * level).astype(np.float32)


def set_time(plugin, seconds):
    """Time maps 1 ms..2 s with a square law (examples/trio_echo/control/src/params.rs);
    pedalboard sets it by display text only, in 0.1 ms steps, so set the raw value."""
    plugin.parameters["time_s"].raw_value = math.sqrt((seconds - 0.001) / (2.0 - 0.001))
    assert plugin.time_s == f"{seconds * 1000:.1f} ms", plugin.time_s


def test_loads_as_an_effect_with_the_control_modules_parameters(effect_bundle, effect_definitions):
    plugin = load(effect_bundle)
    assert plugin.is_effect and not plugin.is_instrument
    assert set(plugin.parameters) == {host_key(d) for d in effect_definitions}


def test_an_impulse_comes_back_at_the_delay_time(effect_bundle):
    plugin = load(effect_bundle)
    plugin.sync = False
    set_time(plugin, 0.25)
    plugin.mix = 100
    plugin.feedback = 0
    impulse = np.zeros((2, SR), dtype=np.float32)
    impulse[:, 1000] = 0.5
    out = plugin(impulse, SR, buffer_size=512)
    at = int(np.argmax(np.abs(out[0])))
    print(f"\npedalboard: impulse at 1000 came back at {at} (latency {plugin.reported_latency_samples}, compensated)")
    # pedalboard removes the reported latency: the echo lands 250 ms = 12000 samples on.
    assert at == 1000 + 12_000
    assert abs(out[0, at] - 0.5) < 1e-3
    assert np.all(np.abs(np.delete(out[0], at)) < 1e-3)


def test_mixed_out_the_output_lines_up_with_the_input(effect_bundle):
    plugin = load(effect_bundle)
    plugin.mix = 0
    plugin.feedback = 90
    signal = noise()
    for lookahead in (0.25, 0.5, 1.0):  # 5, 10 and 20 ms: three latencies
        plugin.parameters["lookahead_s"].raw_value = lookahead
        out = plugin(signal, SR, buffer_size=512)
        latency = plugin.reported_latency_samples
        print(f"\npedalboard: lookahead {plugin.lookahead_s} ms, latency {latency}: output == input: "
              f"{np.array_equal(out, signal)}")
        assert latency == round(lookahead * 0.020 * SR)
        assert np.array_equal(out, signal)


def test_state_round_trips_into_a_new_instance(effect_bundle):
    plugin = load(effect_bundle)
    plugin.sync = False
    set_time(plugin, 0.125)
    plugin.feedback = 60
    plugin.tone_hz = 2000
    first = plugin(noise(), SR, buffer_size=512)
    other = load(effect_bundle)
    other.raw_state = plugin.raw_state
    assert other.time_s == "125.0 ms" and not other.sync
    second = other(noise(), SR, buffer_size=512)
    assert np.array_equal(first, second)
