//! A tansu broker reachable only through a TCP proxy that can cut every
//! connection at once: the broker advertises the proxy's address, so all
//! of a client's connections (bootstrap and partition leader) pass through
//! it. Cutting connections while produce requests are in flight makes
//! librdkafka resend batches the broker may already have written.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rebound_testkit::free_port;
use tokio::net::{TcpListener, TcpStream as TokioStream};
use tokio::task::JoinHandle;

pub struct ProxiedBroker {
    child: Child,
    bootstrap: String,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl ProxiedBroker {
    pub async fn start() -> ProxiedBroker {
        let bin = rebound_testkit::install::broker_binary().expect("tansu binary");
        let broker_port = free_port().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = listener.local_addr().unwrap();
        let child = Command::new(bin)
            .arg("broker")
            .args(["--listener-url", &format!("tcp://127.0.0.1:{broker_port}")])
            .args(["--advertised-listener-url", &format!("tcp://{proxy}")])
            .args(["--storage-engine", "memory://tansu/"])
            .env_remove("LISTENER_URL")
            .env_remove("ADVERTISED_LISTENER_URL")
            .env_remove("STORAGE_ENGINE")
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let upstream = format!("127.0.0.1:{broker_port}");
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(&upstream).is_err() {
            assert!(Instant::now() < deadline, "broker did not start");
            std::thread::sleep(Duration::from_millis(25));
        }
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = tokio::spawn({
            let conns = conns.clone();
            async move {
                loop {
                    let Ok((mut client, _)) = listener.accept().await else {
                        return;
                    };
                    let up = upstream.clone();
                    let task = tokio::spawn(async move {
                        if let Ok(mut server) = TokioStream::connect(&up).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                    conns.lock().unwrap().push(task);
                }
            }
        });
        ProxiedBroker {
            child,
            bootstrap: proxy.to_string(),
            conns,
            accept,
        }
    }

    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// Drops every open connection (both directions, mid-request or not).
    pub fn cut(&self) -> usize {
        let conns = std::mem::take(&mut *self.conns.lock().unwrap());
        let n = conns.iter().filter(|t| !t.is_finished()).count();
        for t in conns {
            t.abort();
        }
        n
    }
}

impl Drop for ProxiedBroker {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
