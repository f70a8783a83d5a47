//! A tansu broker reachable only through a TCP proxy that can cut every
//! connection at once: the broker advertises the proxy's address, so all
//! of a client's connections (bootstrap and partition leader) pass through
//! it. Cutting connections while produce requests are in flight makes
//! librdkafka resend batches the broker may already have written.

use std::sync::{Arc, Mutex};

use rebound_testkit::LocalBroker;
use tokio::net::{TcpListener, TcpStream as TokioStream};
use tokio::task::JoinHandle;

pub struct ProxiedBroker {
    /// Killed when dropped, after the proxy stops.
    broker: LocalBroker,
    bootstrap: String,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl ProxiedBroker {
    pub async fn start() -> ProxiedBroker {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = listener.local_addr().unwrap();
        let broker =
            LocalBroker::start_advertising(Some(&proxy.to_string())).expect("start broker");
        let upstream = broker.bootstrap().to_string();
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
            broker,
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
    }
}
