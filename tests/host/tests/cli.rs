//! The `trio-host` command line: every bad input gives a clear message and exit code 1.

use std::process::Command;

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_trio-host")).args(args).output().expect("running trio-host");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn bad_inputs_fail_with_a_message_and_no_panic() {
    let cases: &[(&[&str], &str)] = &[
        (&[], "no command given"),
        (&["play"], "unknown command \"play\""),
        (&["info"], "exactly one bundle path"),
        (&["info", "/nonexistent/X.vst3"], "/nonexistent/X.vst3 does not exist"),
        (&["render", "/nonexistent/X.vst3"], "needs --midi FILE or --notes LIST"),
        (&["render", "/nonexistent/X.vst3", "--notes", "60@0+1"], "/nonexistent/X.vst3 does not exist"),
        (&["render", "X.vst3", "--notes", "60@zero+1"], "the start \"zero\""),
        (&["render", "X.vst3", "--midi", "/nonexistent/a.mid"], "cannot read the MIDI file /nonexistent/a.mid"),
        (&["render", "X.vst3", "--notes", "60@0+1", "--midi", "a.mid"], "not both"),
        (&["render", "X.vst3", "--notes", "60@0+1", "--block", "0"], "--block \"0\" is not valid"),
        (&["render", "X.vst3", "--notes", "60@0+1", "--sample-rate", "fast"], "--sample-rate \"fast\""),
        (&["render", "X.vst3", "--notes", "60@0+1", "--seconds"], "--seconds needs a value"),
        (&["render", "X.vst3", "--notes", "60@0+1", "--loud"], "unknown option \"--loud\""),
    ];
    for (args, needle) in cases {
        let (code, stderr) = run(args);
        assert_eq!(code, 1, "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
