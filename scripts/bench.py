#!/usr/bin/env python3
"""TrioSynth against nih-plug's poly_mod_synth (and TrioEcho against nih-plug's gain) in
one pedalboard process: `cargo xtask bench` builds the release bundles, finds the
reference bundles and runs this script with the repository's .venv python.

Every figure is measured in this run: runs are interleaved (ours, theirs, ours,
theirs...), each figure is the median of its runs, and every ratio divides two figures
of this run, never a number written into this file. Not run in CI: absolute times on a
shared machine drift, and the busy-machine rows load every core for a while. With valgrind
installed, the voice rows are also counted in instructions (callgrind), which do not drift.

Run it alone:
    .venv/bin/python scripts/bench.py --synth target/bundle/TrioSynth.vst3 \\
        --nih-synth ../shared/anchors/poly_mod_synth.vst3 [--effect target/bundle/TrioEcho.vst3 \\
        --nih-gain ../shared/anchors/gain.vst3] [--quick]
"""

import argparse
import gc
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
import types

import numpy as np
import pedalboard

SR = 48_000
CHORD = list(range(48, 64))  # MIDI 48..63, 16 notes
TRIAD = [60, 64, 67]


# --------------------------------------------------------------------------- helpers


def load(path):
    return pedalboard.load_plugin(path, initialization_timeout=0)


def unload(plugin_list):
    """Drops the instances and collects, so the host destroys them now (pedalboard's
    parameter wrappers hold the plugin in a reference cycle)."""
    plugin_list.clear()
    gc.collect()


def note_on(note, at):
    return (bytes([0x90, note, 100]), at)


def note_off(note, at):
    return (bytes([0x80, note, 0]), at)


def held(notes):
    """Notes on at 0 s and never released during the render."""
    return [note_on(n, 0.0) for n in notes]


def line(seconds, every=0.25):
    """A line of single notes, one every `every` seconds, each released as the next starts:
    its release overlaps the next note, and envelopes move most of the time."""
    events = []
    for i in range(int(seconds / every)):
        note = 48 + i % 12
        events += [note_on(note, i * every), note_off(note, (i + 1) * every)]
    return events


def median(values):
    return statistics.median(values)


def timed(fn):
    """(wall seconds, process CPU seconds of all threads) of one call. A function with a
    `before` attribute has it called first, untimed."""
    before = getattr(fn, "before", None)
    if before is not None:
        before()
    cpu = time.process_time()
    wall = time.perf_counter()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def threads_runtime():
    """{tid: (name, ns on CPU)} for this process's threads, from schedstat (exact ns)."""
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                name = f.read().strip()
            with open(f"/proc/self/task/{tid}/schedstat") as f:
                ns = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        out[int(tid)] = (name, ns)
    return out


def process_cpu_s():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Busy:
    """`count` busy-loop processes (one per core by default), killed on exit."""

    def __init__(self, count):
        self.count = count
        self.procs = []

    def __enter__(self):
        for _ in range(self.count):
            self.procs.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))
        time.sleep(0.5)  # let them start spinning
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.kill()
        for p in self.procs:
            p.wait()
        self.procs.clear()
        return False


def log(text):
    print(text, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- rows


class Row:
    def __init__(self, measure, unit, ours, theirs, goal="", vs_goal=None, met=None, ratio=True, digits=2):
        self.measure = measure
        self.unit = unit
        self.ours = ours
        self.theirs = theirs
        self.goal = goal
        self.vs_goal = vs_goal  # text: the figure the goal is about
        self.met = met  # True, False or None (no goal)
        self.ratio = ours / theirs if ratio and theirs else None
        self.digits = digits

    def cells(self):
        fmt = lambda v: "—" if v is None else f"{v:.{self.digits}f} {self.unit}".strip()
        return [
            self.measure,
            fmt(self.ours),
            fmt(self.theirs),
            "—" if self.ratio is None else f"{self.ratio:.2f}×",
            self.goal or "—",
            self.vs_goal or "—",
            {True: "yes", False: "NO", None: ""}[self.met],
        ]

    def as_json(self):
        return {
            "measure": self.measure,
            "unit": self.unit,
            "trio": self.ours,
            "nih": self.theirs,
            "ratio": self.ratio,
            "goal": self.goal,
            "vs_goal": self.vs_goal,
            "met": self.met,
        }


def print_table(title, header, rows):
    cells = [header] + rows
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n{title}")
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))


# --------------------------------------------------------------------------- measures


def interleaved(reps, pairs):
    """pairs: {key: (ours_fn, theirs_fn)}. Each rep runs every key, ours then theirs.
    Returns {key: ([ours (wall, cpu)...], [theirs (wall, cpu)...])}."""
    results = {k: ([], []) for k in pairs}
    for fns in pairs.values():  # one untimed warm-up run of each
        fns[0]()
        fns[1]()
    for _ in range(reps):
        for key, (ours, theirs) in pairs.items():
            results[key][0].append(timed(ours))
            results[key][1].append(timed(theirs))
    return results


def render(plugin, midi, seconds, buffer):
    """A render from a clean start. The reset is done before, untimed: pedalboard resets an
    instrument without an audio input (TrioSynth) by destroying and recreating it, while
    it only deactivates one with an input (nih-plug's synth declares one), so a reset
    inside the timed call would weigh pedalboard's choice, not the per-block cost. The
    reset itself has its own row."""

    def run():
        plugin(midi, duration=seconds, sample_rate=SR, buffer_size=buffer, reset=False)

    run.before = plugin.reset
    return run


def resets(ours, theirs, reps):
    """Median wall seconds of pedalboard's `reset()` for each side, interleaved."""
    out = {"ours": [], "theirs": []}
    for _ in range(reps):
        for side, plugin in (("ours", ours), ("theirs", theirs)):
            start = time.perf_counter()
            plugin.reset()
            out[side].append(time.perf_counter() - start)
    return {side: median(v) for side, v in out.items()}


def synth_renders(ours, theirs, args):
    idle_s = args.idle_seconds
    voice_s = args.voice_seconds
    chord = [note_on(n, 0.0) for n in CHORD] + [note_off(n, 8.0) for n in CHORD]
    pairs = {
        "idle64": (render(ours, [], idle_s, 64), render(theirs, [], idle_s, 64)),
        "idle512": (render(ours, [], idle_s, 512), render(theirs, [], idle_s, 512)),
        "v0": (render(ours, [], voice_s, 512), render(theirs, [], voice_s, 512)),
        "v1": (render(ours, held([60]), voice_s, 512), render(theirs, held([60]), voice_s, 512)),
        "v3": (render(ours, held(TRIAD), voice_s, 512), render(theirs, held(TRIAD), voice_s, 512)),
        "v16": (render(ours, held(CHORD), voice_s, 512), render(theirs, held(CHORD), voice_s, 512)),
        "line": (render(ours, line(voice_s), voice_s, 512), render(theirs, line(voice_s), voice_s, 512)),
        "chord": (render(ours, chord, 10.0, 512), render(theirs, chord, 10.0, 512)),
    }
    return interleaved(args.reps, pairs)


def effect_renders(ours, theirs, args):
    seconds = args.idle_seconds
    silence = np.zeros((2, int(seconds * SR)), dtype=np.float32)
    noise = (np.random.default_rng(1).standard_normal((2, int(seconds * SR))) * 0.1).astype(np.float32)

    def fx(plugin, audio, buffer):
        return lambda: plugin(audio, SR, buffer_size=buffer, reset=True)

    pairs = {}
    for name, audio in (("silence", silence), ("noise", noise)):
        for buffer in (64, 512):
            pairs[f"{name}{buffer}"] = (fx(ours, audio, buffer), fx(theirs, audio, buffer))
    return interleaved(args.reps, pairs)


# pedalboard's load_plugin builds its Python view of every parameter before returning:
# 1,001 value-text calls per parameter (`AudioProcessorParameter.__init__`, from
# `__set_initial_parameter_values__`). With that step replaced by nothing, a load is the
# plugin's own work (create, initialise, buses, setupProcessing) plus JUCE's.
_MIXIN = getattr(getattr(pedalboard, "_pedalboard", None), "_PythonExternalPluginMixin", None)
CAN_SKIP_SCAN = _MIXIN is not None and hasattr(_MIXIN, "__set_initial_parameter_values__")


def load_without_parameter_scan(path):
    scan = _MIXIN.__set_initial_parameter_values__
    _MIXIN.__set_initial_parameter_values__ = lambda self, values: None
    try:
        return load(path)
    finally:
        _MIXIN.__set_initial_parameter_values__ = scan


def loads(ours_path, theirs_path, reps):
    """Interleaved load_plugin times (s), the time to destroy each instance (s), and (when
    pedalboard lets us) the load time without pedalboard's parameter scan, in wall time and
    in process CPU time (every thread: work a plugin hands to its own threads counts)."""
    keys = ("ours", "theirs", "ours_unload", "theirs_unload", "ours_bare", "theirs_bare", "ours_bare_cpu", "theirs_bare_cpu")
    out = {k: [] for k in keys}
    keep = []
    for _ in range(reps):
        for side, path in (("ours", ours_path), ("theirs", theirs_path)):
            start = time.perf_counter()
            keep.append(load(path))
            out[side].append(time.perf_counter() - start)
            start = time.perf_counter()
            unload(keep)
            out[side + "_unload"].append(time.perf_counter() - start)
        for side, path in (("ours", ours_path), ("theirs", theirs_path)):
            if CAN_SKIP_SCAN:
                start, cpu = time.perf_counter(), process_cpu_s()
                keep.append(load_without_parameter_scan(path))
                out[side + "_bare"].append(time.perf_counter() - start)
                out[side + "_bare_cpu"].append(process_cpu_s() - cpu)
                unload(keep)
    return out


_PB = getattr(pedalboard, "_pedalboard", None)


def scanned_parameters(plugin):
    """The host-side parameters pedalboard builds its Python view of at load (it skips
    names such as "MIDI CC ...")."""
    ignore = getattr(_PB, "PARAMETER_NAME_REGEXES_TO_IGNORE", set())
    return [p for p in plugin._parameters if not any(regex.match(p.name) for regex in ignore)]


def scan_floor(plugin, reps):
    """ms per parameter that pedalboard's own load-time scan costs when every text call is
    free: its `AudioProcessorParameter` built over a stand-in whose text call is a lookup
    of the plugin's real texts (a C dict lookup), so the loop, the comparisons and the
    range building are pedalboard's exactly. `None` when pedalboard's layout is unknown."""
    if _PB is None or not hasattr(_PB, "AudioProcessorParameter"):
        return None
    stand_ins = []
    for cpp in scanned_parameters(plugin):
        texts = {x / 1000: cpp.get_text_for_raw_value(x / 1000) for x in range(1001)}
        stand_ins.append(
            types.SimpleNamespace(
                name=cpp.name,
                label=cpp.label,
                raw_value=cpp.raw_value,
                string_value=cpp.string_value,
                get_text_for_raw_value=texts.__getitem__,
            )
        )
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        for stand_in in stand_ins:
            owner = types.SimpleNamespace(_get_parameter=lambda name, p=stand_in: p)
            _PB.AudioProcessorParameter(owner, stand_in.name)
        times.append((time.perf_counter() - start) / max(len(stand_ins), 1) * 1e3)
    return median(times)


def float_parameter(plugin, preferred):
    """The host-side (C++) parameter object of the first preferred name that exists."""
    names = [p.name for p in plugin._parameters]
    for name in preferred:
        if name in names:
            return plugin._get_parameter(name)
    for p in plugin._parameters:  # another instrument: its first parameter that is not a switch
        if not p.is_boolean:
            return plugin._get_parameter(p.name)
    raise SystemExit(f"no parameter that is not a switch among {names}")


def text_calls(ours_param, theirs_param, batches, per_batch):
    """µs per call of get_text_for_raw_value (JUCE -> IEditController::getParamStringByValue),
    median over batches, interleaved batch by batch; and, as the host's own share, a read of
    raw_value (JUCE's cached value, no call into the plugin)."""
    values = [i / 97.0 for i in range(97)]
    res = {"ours": [], "theirs": [], "host_ours": [], "host_theirs": []}

    def batch(param):
        get = param.get_text_for_raw_value
        start = time.perf_counter()
        for i in range(per_batch):
            get(values[i % 97])
        return (time.perf_counter() - start) / per_batch * 1e6

    def host(param):
        start = time.perf_counter()
        for _ in range(per_batch):
            param.raw_value
        return (time.perf_counter() - start) / per_batch * 1e6

    batch(ours_param), batch(theirs_param)
    for _ in range(batches):
        res["ours"].append(batch(ours_param))
        res["theirs"].append(batch(theirs_param))
        res["host_ours"].append(host(ours_param))
        res["host_theirs"].append(host(theirs_param))
    return {k: median(v) for k, v in res.items()}


def idle_cpu(path, count, seconds):
    """% of one core this process uses while `count` loaded instances of `path` sit idle
    for `seconds` (the main thread sleeps); and the threads that used it."""
    keep = [load(path) for _ in range(count)]
    time.sleep(1.0)  # settle after loading
    before_threads = threads_runtime()
    before = process_cpu_s()
    wall = time.perf_counter()
    time.sleep(seconds)
    used = process_cpu_s() - before
    wall = time.perf_counter() - wall
    after_threads = threads_runtime()
    unload(keep)
    busiest = {}
    for tid, (name, ns) in after_threads.items():
        delta = ns - before_threads.get(tid, (name, 0))[1]
        if delta > 0:
            busiest[name] = busiest.get(name, 0) + delta
    top = sorted(busiest.items(), key=lambda kv: -kv[1])[:4]
    return used / wall * 100.0, [(name, ns / 1e9 / wall * 100.0) for name, ns in top]


# --------------------------------------------------------------------------- main


# One render of held notes through pedalboard, for `voice_instructions` (run under valgrind).
_HELD_RENDER = """
import sys, pedalboard
plugin = pedalboard.load_plugin(sys.argv[1], initialization_timeout=0)
notes = [int(n) for n in sys.argv[2].split(",") if n]
plugin.reset()
plugin([(bytes([0x90, n, 100]), 0.0) for n in notes], duration=float(sys.argv[3]), sample_rate=48000,
       buffer_size=512, reset=False)
"""


def voice_instructions(bundle, seconds):
    """Instructions per sample executed inside our VST3 `process` (bridge, engine, and what
    they call) for no note, one held note and the 16-note chord, counted by callgrind:
    machine noise does not move them, so the one-voice row's ratio can be read without
    it. Only our bundle: nih-plug's is stripped, so its `process` cannot be singled out.
    None when valgrind is not installed."""
    if not shutil.which("valgrind"):
        return None
    counts = {}
    for key, notes in (("v0", []), ("v1", [60]), ("v3", TRIAD), ("v16", CHORD)):
        done = subprocess.run(
            [
                "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                "--toggle-collect=*IAudioProcessor::make_vtbl::process",
                sys.executable, "-c", _HELD_RENDER, bundle, ",".join(map(str, notes)), str(seconds),
            ],
            capture_output=True,
            text=True,
        )
        found = re.search(r"Collected : ([\d,]+)", done.stderr)
        if done.returncode != 0 or not found:
            raise SystemExit(f"callgrind run of {bundle} with notes {notes} failed:\n{done.stderr[-2000:]}")
        counts[key] = int(found.group(1).replace(",", ""))
    samples = seconds * SR
    one = (counts["v1"] - counts["v0"]) / samples
    marginal = (counts["v16"] - counts["v0"]) / 16 / samples
    three = (counts["v3"] - counts["v0"]) / 3 / samples
    return {"one": one, "three": three, "marginal": marginal}


def main():
    parser = argparse.ArgumentParser(
        description="TrioSynth vs nih-plug's poly_mod_synth (and TrioEcho vs gain) in one pedalboard "
        "process, interleaved, medians, ratios measured in the same run. Not run in CI.",
    )
    parser.add_argument("--synth", required=True, help="our instrument bundle (TrioSynth.vst3)")
    parser.add_argument("--nih-synth", required=True, help="nih-plug's poly_mod_synth.vst3")
    parser.add_argument("--effect", help="our effect bundle (TrioEcho.vst3): adds the effect rows")
    parser.add_argument("--nih-gain", help="nih-plug's gain.vst3 (the effect rows' reference)")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and shorter waits")
    parser.add_argument("--reps", type=int, help="render repetitions per side (default 7, quick 3)")
    parser.add_argument("--load-reps", type=int, help="loads per side (default 9, quick 7)")
    parser.add_argument("--idle-seconds", type=float, default=20.0, help="idle render length (default 20)")
    parser.add_argument("--voice-seconds", type=float, default=10.0, help="voice render length (default 10)")
    parser.add_argument("--cpu-seconds", type=float, help="idle-CPU window (default 10, quick 3)")
    parser.add_argument("--busy", type=int, help="busy-loop processes (default: one per usable core)")
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument(
        "--no-callgrind", action="store_true", help="skip the instruction counts of the voice rows (valgrind)"
    )
    args = parser.parse_args()
    args.reps = args.reps or (3 if args.quick else 7)
    args.load_reps = max(args.load_reps or (7 if args.quick else 9), 7)
    args.cpu_seconds = args.cpu_seconds or (3.0 if args.quick else 10.0)
    args.busy = args.busy or len(os.sched_getaffinity(0))
    text_batches, text_per_batch = (40, 1000) if args.quick else (200, 1000)
    effect = bool(args.effect and args.nih_gain)
    started = time.perf_counter()

    cores = len(os.sched_getaffinity(0))
    log(
        f"bench: pedalboard {pedalboard.__version__}, Python {platform.python_version()}, {cores} cores, "
        f"load average {os.getloadavg()[0]:.2f}; {args.reps} render reps, {args.load_reps} loads per side"
    )

    # pedalboard's and JUCE's own first-load costs go to a plugin we do not compare, then
    # the first load of each compared bundle in this process (its library is opened).
    warm = args.nih_gain or args.nih_synth
    start = time.perf_counter()
    first = [load(warm)]
    warm_ms = (time.perf_counter() - start) * 1e3
    unload(first)
    cold = {}
    for side, path in (("ours", args.synth), ("theirs", args.nih_synth)):
        start = time.perf_counter()
        first.append(load(path))
        cold[side] = (time.perf_counter() - start) * 1e3
        if not first[0].is_instrument:
            raise SystemExit(f"{path} is not an instrument")
        unload(first)

    log("bench: renders (idle, one voice, three, 16, a line of notes, 16-note chord)...")
    ours, theirs = load(args.synth), load(args.nih_synth)
    param_count = {"ours": len(scanned_parameters(ours)), "theirs": len(scanned_parameters(theirs))}
    floor = {"ours": scan_floor(ours, 5), "theirs": scan_floor(theirs, 5)}
    r = synth_renders(ours, theirs, args)
    reset_s = resets(ours, theirs, 3 * args.reps)
    ours_param = float_parameter(ours, ["Filter Cutoff"])
    theirs_param = float_parameter(theirs, ["Gain"])
    log("bench: value-text calls, idle machine...")
    text_idle = text_calls(ours_param, theirs_param, text_batches, text_per_batch)
    fx = None
    if effect:
        log("bench: effect renders (TrioEcho vs gain)...")
        fx_ours, fx_theirs = load(args.effect), load(args.nih_gain)
        fx = effect_renders(fx_ours, fx_theirs, args)
        del fx_ours, fx_theirs

    log("bench: loads, idle machine...")
    load_idle = loads(args.synth, args.nih_synth, args.load_reps)

    log(f"bench: {args.busy} busy-loop processes running: loads and value-text calls...")
    with Busy(args.busy):
        load_busy = loads(args.synth, args.nih_synth, args.load_reps)
        text_busy = text_calls(ours_param, theirs_param, text_batches, text_per_batch)
    del ours_param, theirs_param
    unload_list = [ours, theirs]
    del ours, theirs
    unload(unload_list)

    instructions = None
    if not args.no_callgrind:
        log("bench: instructions of one voice, three and 16 (callgrind)...")
        instructions = voice_instructions(args.synth, args.voice_seconds)

    log(f"bench: CPU of idle loaded instances ({args.cpu_seconds:.0f} s windows)...")
    time.sleep(1.0)
    cpu = {}
    for count in (1, 8):
        for side, path in (("ours", args.synth), ("theirs", args.nih_synth)):
            cpu[(side, count)] = idle_cpu(path, count, args.cpu_seconds)

    # ------------------------------------------------------------------ the table
    wall = lambda key, side: median([w for w, _ in r[key][0 if side == "ours" else 1]])
    cpu_of = lambda key, side: median([c for _, c in r[key][0 if side == "ours" else 1]])

    def paired(a, b, side):
        """Median over reps of (run a - run b) of the same rep, wall seconds."""
        i = 0 if side == "ours" else 1
        return median([x[0] - y[0] for x, y in zip(r[a][i], r[b][i])])

    rows = []
    for buffer in (64, 512):
        blocks = args.idle_seconds * SR / buffer
        o, t = (wall(f"idle{buffer}", s) / blocks * 1e6 for s in ("ours", "theirs"))
        rows.append(Row(f"idle block, buffer {buffer}", "µs", o, t, "≤ 1.0× nih", f"{o / t:.2f}×", o / t <= 1.0))

    samples = args.voice_seconds * SR
    one = {s: paired("v1", "v0", s) / samples * 1e9 for s in ("ours", "theirs")}
    marg16 = {s: paired("v16", "v0", s) / 16 / samples * 1e9 for s in ("ours", "theirs")}
    q = one["ours"] / marg16["ours"] if marg16["ours"] > 0 else float("inf")
    rows.append(
        Row(
            "one voice, per sample",
            "ns",
            one["ours"],
            one["theirs"],
            "≤ 2× our marginal/voice at 16",
            f"{q:.2f}× ({marg16['ours']:.2f} ns)",
            q <= 2.0,
        )
    )
    rows.append(Row("marginal per voice at 16, per sample", "ns", marg16["ours"], marg16["theirs"]))
    three = {s: paired("v3", "v0", s) / 3 / samples * 1e9 for s in ("ours", "theirs")}
    played = {s: paired("line", "v0", s) / samples * 1e9 for s in ("ours", "theirs")}
    o, t = wall("chord", "ours") * 1e3, wall("chord", "theirs") * 1e3
    rows.append(Row("16-note chord, 10 s, buffer 512", "ms", o, t, "≤ 0.5× nih", f"{o / t:.2f}×", o / t <= 0.5))

    li = {s: median(load_idle[s]) * 1e3 for s in ("ours", "theirs")}
    lb = {s: median(load_busy[s]) * 1e3 for s in ("ours", "theirs")}
    rows.append(
        Row(
            f"load_plugin (median of {args.load_reps})",
            "ms",
            li["ours"],
            li["theirs"],
            "≤ 1.5× nih",
            f"{li['ours'] / li['theirs']:.2f}×",
            li["ours"] / li["theirs"] <= 1.5,
            digits=1,
        )
    )
    rows.append(Row(f"load_plugin, {args.busy} cores busy", "ms", lb["ours"], lb["theirs"], digits=1))
    busy_q = lb["ours"] / li["ours"]
    rows.append(
        Row(
            "  busy load / idle load",
            "×",
            busy_q,
            lb["theirs"] / li["theirs"],
            "≤ 3× our idle load",
            f"{busy_q:.2f}×",
            busy_q <= 3.0,
        )
    )
    rows.append(
        Row(
            "value text, cores busy (per call)",
            "µs",
            text_busy["ours"],
            text_busy["theirs"],
            "≤ 2 µs",
            f"{text_busy['ours']:.2f} µs",
            text_busy["ours"] <= 2.0,
        )
    )
    for count, goal in ((1, 0.1), (8, 0.8)):
        o, t = cpu[("ours", count)][0], cpu[("theirs", count)][0]
        rows.append(
            Row(
                f"CPU, {count} idle instance{'s' if count > 1 else ''} (% of a core)",
                "%",
                o,
                t,
                f"≤ {goal} %",
                f"{o:.3f} %",
                o <= goal,
                ratio=False,
                digits=3,
            )
        )

    info = [
        Row("value text, idle machine (per call)", "µs", text_idle["ours"], text_idle["theirs"]),
        Row("  host share: raw_value read, idle", "µs", text_idle["host_ours"], text_idle["host_theirs"]),
        Row("  host share: raw_value read, busy", "µs", text_busy["host_ours"], text_busy["host_theirs"]),
        Row("3 held voices, per voice per sample", "ns", three["ours"], three["theirs"]),
        Row("a line of single notes, 4 per s, per sample", "ns", played["ours"], played["theirs"]),
        Row("first load in this process", "ms", cold["ours"], cold["theirs"], digits=1),
        Row(
            "pedalboard reset() (recreates an instrument without audio input)",
            "µs",
            reset_s["ours"] * 1e6,
            reset_s["theirs"] * 1e6,
            digits=0,
        ),
        Row(
            "unload (destroy an instance)",
            "ms",
            median(load_idle["ours_unload"]) * 1e3,
            median(load_idle["theirs_unload"]) * 1e3,
            digits=1,
        ),
        Row(
            "unload, cores busy",
            "ms",
            median(load_busy["ours_unload"]) * 1e3,
            median(load_busy["theirs_unload"]) * 1e3,
            digits=1,
        ),
        Row("load, slowest of the busy loads", "ms", max(load_busy["ours"]) * 1e3, max(load_busy["theirs"]) * 1e3, digits=1),
        Row("parameters pedalboard scans (1,001 texts each at load)", "", param_count["ours"], param_count["theirs"], digits=0),
    ]
    if CAN_SKIP_SCAN:
        bare = {s: median(load_idle[s + "_bare"]) * 1e3 for s in ("ours", "theirs")}
        bare_busy = {s: median(load_busy[s + "_bare"]) * 1e3 for s in ("ours", "theirs")}
        bare_cpu = {s: median(load_idle[s + "_bare_cpu"]) * 1e3 for s in ("ours", "theirs")}
        per_param = {s: (li[s] - bare[s]) / max(param_count[s], 1) for s in ("ours", "theirs")}
        info += [
            Row("load without pedalboard's parameter scan", "ms", bare["ours"], bare["theirs"], digits=2),
            Row("  the same, process CPU time", "ms", bare_cpu["ours"], bare_cpu["theirs"], digits=2),
            Row("  the same, cores busy", "ms", bare_busy["ours"], bare_busy["theirs"], digits=2),
            Row("load: pedalboard's scan per parameter", "ms", per_param["ours"], per_param["theirs"], digits=2),
        ]
        if floor["ours"] is not None and floor["theirs"] is not None:
            # The least a load can take in pedalboard with this many parameters: the plugin's
            # own load, pedalboard's scan with every text call free, and for each of the
            # 1,001 texts per parameter the host's own share of a call into the plugin (a
            # raw_value read through pybind and JUCE, no plugin code).
            least = {
                s: bare[s] + param_count[s] * (floor[s] + 1001 * text_idle["host_" + s] * 1e-3)
                for s in ("ours", "theirs")
            }
            info += [
                Row("  of which pedalboard's own (text calls free)", "ms", floor["ours"], floor["theirs"], digits=2),
                Row("load_plugin floor (bare load, scan, host share per text)", "ms", least["ours"], least["theirs"], digits=1),
                Row("  Trio's floor / nih's measured load_plugin", "×", least["ours"] / li["theirs"], 1.0, digits=2),
            ]
    if instructions:
        one, marginal = instructions["one"], instructions["marginal"]
        info += [
            Row("one voice, instructions per sample (callgrind, buffer 512)", "", one, None, digits=1),
            Row("  marginal voice at 16, instructions per sample", "", marginal, None, digits=1),
            Row("  3 held voices, instructions per voice per sample", "", instructions["three"], None, digits=1),
            Row("  one voice / marginal voice, in instructions", "×", one / marginal, None, digits=2),
        ]
    # Renders in process CPU time (all threads): work a plugin hands to its own threads
    # does not show in wall time on an idle machine, it does here.
    for key, label, scale, unit in (
        ("idle64", "idle render 20 s, buffer 64", 1e3, "ms"),
        ("idle512", "idle render 20 s, buffer 512", 1e3, "ms"),
        ("chord", "16-note chord render", 1e3, "ms"),
    ):
        label = label.replace("20 s", f"{args.idle_seconds:g} s")
        info.append(Row(f"{label}, process CPU time", unit, cpu_of(key, "ours") * scale, cpu_of(key, "theirs") * scale))
    if fx:
        for name in ("silence", "noise"):
            for buffer in (64, 512):
                blocks = args.idle_seconds * SR / buffer
                o = median([w for w, _ in fx[f"{name}{buffer}"][0]]) / blocks * 1e6
                t = median([w for w, _ in fx[f"{name}{buffer}"][1]]) / blocks * 1e6
                info.append(Row(f"TrioEcho vs gain: {name} in, buffer {buffer} (per block)", "µs", o, t))

    header = ["measure", "Trio", "nih-plug", "Trio/nih", "goal", "Trio vs goal", "met"]
    print_table(
        "TrioSynth vs nih-plug poly_mod_synth (pedalboard, 48 kHz; medians of interleaved runs)",
        header,
        [row.cells() for row in rows],
    )
    print_table("For information (no goal)", header[:4], [row.cells()[:4] for row in info])
    if CAN_SKIP_SCAN:
        print(
            f"\npedalboard's load_plugin asks for 1,001 value texts per parameter before it returns; "
            f"without that step a load takes {bare['ours']:.2f} ms (Trio, {param_count['ours']} parameters) "
            f"and {bare['theirs']:.2f} ms (nih, {param_count['theirs']} parameters)."
        )
    threads = []
    for count in (1, 8):
        for side, name in (("ours", "Trio"), ("theirs", "nih")):
            top = ", ".join(f"{t} {p:.3f} %" for t, p in cpu[(side, count)][1]) or "none"
            threads.append(f"  {name}, {count} idle: {top}")
    print("\nThreads that used CPU during the idle windows (% of a core):")
    print("\n".join(threads))
    met = sum(1 for row in rows if row.met)
    goals = sum(1 for row in rows if row.met is not None)
    print(
        f"\n{met} of {goals} goals met; references measured in this run "
        f"(warm-up load of {os.path.basename(warm)}: {warm_ms:.1f} ms); took {time.perf_counter() - started:.0f} s"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": [row.as_json() for row in rows], "info": [row.as_json() for row in info]}, f, indent=2)


if __name__ == "__main__":
    main()
