//! A tansu broker as a child process on an ephemeral 127.0.0.1 port.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::install::broker_binary;
use crate::{Error, Result};

/// A running local broker; killed when dropped.
#[derive(Debug)]
pub struct LocalBroker {
    child: Child,
    bootstrap: String,
}

impl LocalBroker {
    /// Starts tansu with memory storage on a free port and waits until it
    /// accepts TCP connections.
    pub fn start() -> Result<Self> {
        Self::start_advertising(None)
    }

    /// Like [`start`](Self::start), but the broker tells clients to connect
    /// to `advertised` (`host:port`, e.g. a proxy in front of it) instead of
    /// its own address; [`bootstrap`](Self::bootstrap) stays its own.
    pub fn start_advertising(advertised: Option<&str>) -> Result<Self> {
        let bin = broker_binary()?;
        let mut last = None;
        // A freed ephemeral port can be taken again before tansu binds it: retry.
        for _ in 0..3 {
            let port = free_port()?;
            let url = format!("tcp://127.0.0.1:{port}");
            let advertised_url = advertised.map_or_else(|| url.clone(), |a| format!("tcp://{a}"));
            let child = Command::new(&bin)
                .arg("broker")
                .args(["--listener-url", &url])
                .args(["--advertised-listener-url", &advertised_url])
                .args(["--storage-engine", "memory://tansu/"])
                .env_remove("LISTENER_URL")
                .env_remove("ADVERTISED_LISTENER_URL")
                .env_remove("STORAGE_ENGINE")
                .env("RUST_LOG", "error")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?;
            let mut broker = LocalBroker {
                child,
                bootstrap: format!("127.0.0.1:{port}"),
            };
            match broker.wait_ready(Duration::from_secs(15)) {
                Ok(()) => return Ok(broker),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("at least one attempt"))
    }

    /// `host:port` to give rdkafka as `bootstrap.servers`.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// OS process id of the broker.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(Error::Start {
                    addr: self.bootstrap.clone(),
                    reason: format!("broker exited with {status}"),
                });
            }
            if TcpStream::connect(&self.bootstrap).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Error::Start {
                    addr: self.bootstrap.clone(),
                    reason: format!("not accepting connections after {timeout:?}"),
                });
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for LocalBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}
