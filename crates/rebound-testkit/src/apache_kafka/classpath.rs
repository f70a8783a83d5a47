//! The Apache Kafka broker's class path, resolved by Maven from the pom kept
//! in this crate (`kafka/pom.xml`) and cached under `$HOME`.
//!
//! The first caller on a machine runs `mvn dependency:build-classpath`
//! (about 10 s with a warm `~/.m2`, longer when Maven downloads the jars);
//! later callers, in any process, read the cached class path. A file lock
//! keeps parallel test processes from resolving at the same time.

use std::fs::{self, File};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Error, Result};

/// The pom that names the broker's version and its jars.
pub const POM: &str = include_str!("../../kafka/pom.xml");

/// The Kafka version the pom asks for.
pub fn kafka_version() -> &'static str {
    POM.split_once("<kafka.version>")
        .and_then(|(_, rest)| rest.split_once("</kafka.version>"))
        .map_or("unknown", |(v, _)| v)
}

/// The class path to run `kafka.Kafka` with: `REBOUND_KAFKA_CLASSPATH` when
/// set, else the cached one, resolving it with Maven when missing or stale.
pub fn classpath() -> Result<String> {
    if let Ok(cp) = std::env::var("REBOUND_KAFKA_CLASSPATH") {
        if !cp.trim().is_empty() {
            return Ok(cp);
        }
    }
    let dir = cache_dir()?;
    fs::create_dir_all(&dir)?;
    let cached = dir.join("classpath.txt");
    if let Some(cp) = usable(&cached) {
        return Ok(cp);
    }
    let lock = File::create(dir.join("resolve.lock"))?;
    lock.lock()?;
    // Another process may have resolved it while this one waited.
    if let Some(cp) = usable(&cached) {
        return Ok(cp);
    }
    resolve(&dir, &cached)?;
    usable(&cached).ok_or_else(|| Error::Start {
        addr: "apache-kafka".into(),
        reason: format!("Maven wrote no usable class path to {}", cached.display()),
    })
}

/// `$HOME/.cache/rebound/kafka/<version>-<pom hash>`.
fn cache_dir() -> Result<PathBuf> {
    let home = std::env::var_os("HOME").ok_or_else(|| Error::Start {
        addr: "apache-kafka".into(),
        reason: "HOME is not set: nowhere to cache the broker's class path".into(),
    })?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    POM.hash(&mut h);
    Ok(PathBuf::from(home)
        .join(".cache/rebound/kafka")
        .join(format!("{}-{:016x}", kafka_version(), h.finish())))
}

/// The cached class path if every jar in it still exists.
fn usable(path: &Path) -> Option<String> {
    let cp = fs::read_to_string(path).ok()?;
    let cp = cp.trim().to_string();
    let complete = !cp.is_empty() && cp.split(':').all(|jar| Path::new(jar).is_file());
    complete.then_some(cp)
}

fn resolve(dir: &Path, out: &Path) -> Result<()> {
    let pom = dir.join("pom.xml");
    fs::write(&pom, POM)?;
    let output = Command::new("mvn")
        .args(["-q", "-B", "-f"])
        .arg(&pom)
        .arg("dependency:build-classpath")
        .arg(format!("-Dmdep.outputFile={}", out.display()))
        .output()
        .map_err(|e| Error::Start {
            addr: "apache-kafka".into(),
            reason: format!("cannot run mvn (install Maven and Java 17+): {e}"),
        })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(Error::Start {
            addr: "apache-kafka".into(),
            reason: format!(
                "`mvn dependency:build-classpath` for {} failed with {}: {}",
                pom.display(),
                output.status,
                String::from_utf8_lossy(&output.stdout).trim()
            ),
        })
    }
}
