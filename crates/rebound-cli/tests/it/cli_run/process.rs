//! A `rebound run` process for the tests: its config file, its ops address,
//! signals, and its stderr collected on the side.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rebound_testkit::{free_port, KillOnDrop};

use crate::common::rebound_with_log;

/// A running `rebound run`.
pub struct Run {
    child: KillOnDrop,
    config: std::path::PathBuf,
    /// Its `/healthz`, `/readyz`, `/metrics` address.
    pub ops: String,
    stderr: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

/// The `[kafka]` section and `ops_addr` of a config on `bootstrap`.
pub fn header(bootstrap: &str, ops: &str) -> String {
    format!(
        "ops_addr = \"{ops}\"\n\n[kafka]\nbrokers = \"{bootstrap}\"\nconnect_timeout = \"20s\"\n\n"
    )
}

impl Run {
    /// Writes `routes` after the header and starts `rebound run` on it.
    pub fn start(bootstrap: &str, routes: &str) -> Run {
        Run::start_with_env(bootstrap, routes, &[])
    }

    /// [`Run::start`] with extra environment variables.
    pub fn start_with_env(bootstrap: &str, routes: &str, env: &[(&str, &str)]) -> Run {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("pipeline.toml");
        let ops = format!("127.0.0.1:{}", free_port().unwrap());
        std::fs::write(&config, header(bootstrap, &ops) + routes).unwrap();
        let mut cmd: Command = rebound_with_log("info");
        cmd.args(["run", config.to_str().unwrap()])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Run {
            child: KillOnDrop(child),
            config,
            ops,
            stderr,
            _dir: dir,
        }
    }

    /// Replaces the routes of the config file (same header).
    pub fn rewrite(&self, bootstrap: &str, routes: &str) {
        std::fs::write(&self.config, header(bootstrap, &self.ops) + routes).unwrap();
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends `sig` (`HUP`, `TERM`).
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// GETs `path` on the ops address: status and body.
    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        let r = reqwest::get(format!("http://{}{path}", self.ops))
            .await
            .ok()?;
        Some((r.status().as_u16(), r.text().await.ok()?))
    }

    /// SIGTERM, then waits (up to 60 s) and insists it exited 0; its log.
    pub async fn stop(mut self) -> String {
        self.signal("TERM");
        for _ in 0..600 {
            if let Some(status) = self.child.try_wait().unwrap() {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let log = self.log();
                assert!(status.success(), "rebound run exited {status:?}:\n{log}");
                return log;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = self.child.kill();
        panic!("rebound run did not stop within 60 s:\n{}", self.log());
    }
}
