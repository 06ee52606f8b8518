"""The bundle through Ardour 7's VST3 scanner. The scanner exits 0 even when loading
fails, so the test reads its output: no [ERROR] line, the plugin found with its buses."""

import json
import os
import re
import subprocess
import tempfile

SCANNER_DIR = os.environ.get("ARDOUR_LIB", "/usr/lib/ardour7")


def scan(bundle):
    """Runs the scanner on `bundle`; returns its VST3Info attributes and moduleinfo.json."""
    scanner = os.path.join(SCANNER_DIR, "ardour-vst3-scanner")
    assert os.path.exists(scanner), f"{scanner} is missing: scripts/real_hosts.sh installs Debian's ardour package"
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, LD_LIBRARY_PATH=SCANNER_DIR, XDG_CACHE_HOME=cache)
        run = subprocess.run([scanner, "-f", "-v", bundle], env=env, capture_output=True, text=True, timeout=120)
    out = run.stdout + run.stderr
    print(out)
    assert "[ERROR]" not in out
    assert "Found Plugin: " in out
    info = re.search(r"<VST3Info ([^>]*)>", out)
    assert info, "no VST3Info record in the scanner's output"
    attrs = dict(re.findall(r'(\w[\w-]*)="([^"]*)"', info.group(1)))
    with open(os.path.join(bundle, "Contents/Resources/moduleinfo.json")) as f:
        moduleinfo = json.load(f)
    cls = moduleinfo["Classes"][0]
    assert attrs["uid"] == cls["CID"]
    assert attrs["name"] == cls["Name"]
    assert attrs["vendor"] == moduleinfo["Factory Info"]["Vendor"]
    assert attrs["category"] == "|".join(cls["Sub Categories"])
    return attrs, cls


def test_the_scanner_finds_the_instrument_with_its_buses_and_midi_input(bundle):
    attrs, _ = scan(bundle)
    assert attrs["n_inputs"] == "0"
    assert attrs["n_outputs"] == "2"
    assert attrs["n_midi_inputs"] == "1"


def test_the_scanner_finds_the_effect_with_its_main_and_sidechain_inputs(effect_bundle):
    attrs, cls = scan(effect_bundle)
    print({k: attrs[k] for k in ("n_inputs", "n_aux_inputs", "n_outputs", "n_midi_inputs") if k in attrs})
    assert attrs["category"] == "Fx|Delay"
    assert attrs["n_inputs"] == "2"
    assert attrs.get("n_aux_inputs", "2") == "2"
    assert attrs["n_outputs"] == "2"
    assert attrs["n_midi_inputs"] == "0"
