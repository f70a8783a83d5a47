//! Child processes a test starts: killed (SIGKILL) and reaped when the
//! guard drops, so a failing assertion leaves no application running.

use std::ops::{Deref, DerefMut};
use std::process::Child;

/// A child process, killed and reaped on drop.
#[derive(Debug)]
pub struct KillOnDrop(pub Child);

impl Deref for KillOnDrop {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A command that runs the ignored test `name` (its path in the test
/// binary, e.g. `kill::relay_child`) of the current test binary alone, as a
/// child process: how a test runs an application it must kill with SIGKILL.
/// Add the child's settings with `.env(..)`; it reads them with
/// [`child_env`].
pub fn test_child(name: &str) -> std::process::Command {
    let mut c = std::process::Command::new(std::env::current_exe().expect("the test binary"));
    c.args([name, "--exact", "--ignored", "--nocapture"]);
    c
}

/// A setting the parent test gave its [`test_child`].
pub fn child_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is set by the parent test"))
}
