//! The README's first command, `rebound demo`, on a small scale: it starts
//! its own broker, runs every stage and exits 0 only when no record was
//! lost or duplicated, per-key order held, every count of the stream
//! stage is exact after its crash, and the scheduler delivered.

use std::process::Command;

#[test]
fn demo_runs_every_stage_on_embedded_defaults() {
    let out = Command::new(env!("CARGO_BIN_EXE_rebound"))
        .args([
            "demo",
            "--records",
            "600",
            "--keys",
            "40",
            "--partitions",
            "2",
            "--modes",
            "key,partition",
            "--scheduler-tasks",
            "20",
        ])
        .env_remove("REBOUND_BROKERS")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");
    for line in [
        "Every record was handled or dead-lettered with its provenance, none lost",
        "Every input record is in the output exactly once, or in the DLQ",
        "Every key's count is exact after the crash and restart.",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
}
