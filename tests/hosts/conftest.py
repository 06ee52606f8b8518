"""Shared fixtures for the real-host tests: the bundle under test and the control
module's own parameter definitions (from the `param-dump` tool), so hosts can be
checked against the source of truth rather than against numbers copied into tests."""

import json
import os
import subprocess

import numpy as np
import pytest

SR = 48_000


@pytest.fixture(scope="session")
def bundle():
    path = os.environ.get("TRIO_BUNDLE")
    assert path, "TRIO_BUNDLE must name the .vst3 bundle (scripts/real_hosts.sh sets it)"
    assert os.path.isdir(path), f"{path} does not exist: run `cargo xtask bundle --release`"
    return path


@pytest.fixture(scope="session")
def effect_bundle():
    path = os.environ.get("TRIO_EFFECT_BUNDLE")
    assert path, "TRIO_EFFECT_BUNDLE must name the effect's .vst3 bundle (scripts/real_hosts.sh sets it)"
    assert os.path.isdir(path), f"{path} does not exist: run `cargo xtask bundle --release --manifest examples/trio_echo/build.yaml`"
    return path


def dump_definitions(bundle):
    tool = os.environ.get("TRIO_PARAM_DUMP")
    assert tool, "TRIO_PARAM_DUMP must name the param-dump tool (scripts/real_hosts.sh sets it)"
    out = subprocess.run([tool, bundle], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


@pytest.fixture(scope="session")
def definitions(bundle):
    return dump_definitions(bundle)


@pytest.fixture(scope="session")
def effect_definitions(effect_bundle):
    return dump_definitions(effect_bundle)


def host_key(definition):
    """The attribute name JUCE-based hosts (pedalboard) derive from a parameter's title and unit."""
    key = "".join(c if c.isalnum() else "_" for c in definition["name"].lower())
    key = "_".join(part for part in key.split("_") if part)
    unit = definition["unit"]
    if unit and unit != "%":
        key += "_" + unit.lower()
    return key


def fundamental(signal, sr=SR, lo=50.0, hi=2000.0):
    """Strongest frequency between lo and hi, from a zero-padded Hann-windowed FFT with
    parabolic interpolation."""
    n = len(signal)
    size = 1 << (n * 8 - 1).bit_length()
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(n), size))
    freqs = np.fft.rfftfreq(size, 1 / sr)
    band = (freqs >= lo) & (freqs <= hi)
    i = int(np.argmax(np.where(band, spectrum, 0)))
    a, b, c = np.log(spectrum[i - 1 : i + 2] + 1e-30)
    shift = 0.5 * (a - c) / (a - 2 * b + c)
    return freqs[i] + shift * (freqs[1] - freqs[0])


def high_band_energy(signal, sr=SR, cutoff=3000.0):
    spectrum = np.abs(np.fft.rfft(signal)) ** 2
    freqs = np.fft.rfftfreq(len(signal), 1 / sr)
    return float(spectrum[freqs >= cutoff].sum())
