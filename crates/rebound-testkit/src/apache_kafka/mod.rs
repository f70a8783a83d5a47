//! Apache Kafka itself as a child JVM: a single KRaft node (broker and
//! controller) on ephemeral 127.0.0.1 ports, with PLAINTEXT, SSL and
//! SASL_PLAINTEXT (PLAIN and SCRAM-SHA-512) listeners, its storage in a
//! fresh temporary directory; killed and removed on drop.
//!
//! Tests whose meaning depends on what tansu lacks (read_committed hiding
//! aborted records, commit metadata, TLS, SASL, rebalances under churn) run
//! here. Starting takes about 5 s on two cores: formatting the storage (one
//! short JVM) and the broker itself; each test starts its own.
//!
//! The jars come from Maven (see [`classpath`]); `java` must be on `PATH`
//! (Java 17 or later).

pub mod classpath;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::tls;
pub use crate::tls::TlsFiles;
use crate::{unique_name, Error, Result};

/// The user the SASL/PLAIN mechanism accepts.
pub const PLAIN_USER: (&str, &str) = ("alice", "alice-secret");
/// The user the SASL/SCRAM-SHA-512 mechanism accepts.
pub const SCRAM_USER: (&str, &str) = ("bob", "bob-secret");

/// Any valid KRaft cluster id: every broker here has storage of its own.
const CLUSTER_ID: &str = "MkU3OEVBNTcwNTJENDM2Qg";

/// A running Apache Kafka broker; killed (with its storage removed) on drop.
#[derive(Debug)]
pub struct KafkaBroker {
    child: Child,
    dir: PathBuf,
    plaintext: String,
    ssl: String,
    sasl: String,
    tls: TlsFiles,
    started_in: Duration,
}

impl KafkaBroker {
    /// Formats fresh storage and starts the broker; returns once it answers
    /// a metadata request on its PLAINTEXT listener. A start that fails is
    /// tried again on new ports, three times in all: a port freed for the
    /// broker can be taken by another process before the JVM binds it.
    pub fn start() -> Result<Self> {
        let mut last = None;
        for _ in 0..3 {
            match Self::start_once() {
                Ok(b) => return Ok(b),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("at least one attempt"))
    }

    fn start_once() -> Result<Self> {
        let began = Instant::now();
        let cp = classpath::classpath()?;
        let dir = std::env::temp_dir().join(unique_name("rebound-kafka"));
        std::fs::create_dir_all(&dir)?;
        let tls = tls::generate(&dir)?;
        let ports = Ports::pick()?;
        let props = dir.join("server.properties");
        std::fs::write(&props, server_properties(&dir, &ports, &tls))?;
        format_storage(&cp, &props, &dir).inspect_err(|_| {
            let _ = std::fs::remove_dir_all(&dir);
        })?;
        let log = std::fs::File::create(dir.join("broker.log"))?;
        let child = watched_jvm(&cp, &props, &dir.join("jvm.pid"), log)?;
        let mut broker = KafkaBroker {
            child,
            dir,
            plaintext: format!("127.0.0.1:{}", ports.plaintext),
            ssl: format!("127.0.0.1:{}", ports.ssl),
            sasl: format!("127.0.0.1:{}", ports.sasl),
            tls,
            started_in: Duration::ZERO,
        };
        broker.wait_ready(Duration::from_secs(60))?;
        broker.started_in = began.elapsed();
        tracing::info!(
            "Apache Kafka {} ready on {} in {:?}",
            classpath::kafka_version(),
            broker.plaintext,
            broker.started_in
        );
        Ok(broker)
    }

    /// The PLAINTEXT listener, `host:port`.
    pub fn bootstrap(&self) -> &str {
        &self.plaintext
    }

    /// The SSL listener (server authentication only), `host:port`.
    pub fn ssl_bootstrap(&self) -> &str {
        &self.ssl
    }

    /// The SASL_PLAINTEXT listener (PLAIN and SCRAM-SHA-512), `host:port`.
    pub fn sasl_bootstrap(&self) -> &str {
        &self.sasl
    }

    /// The throw-away CA and broker certificate of this broker.
    pub fn tls(&self) -> &TlsFiles {
        &self.tls
    }

    /// How long [`start`](Self::start) took, class path to first answer.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// OS process id of the broker's JVM (to stop and continue it in an
    /// outage test).
    pub fn pid(&self) -> u32 {
        std::fs::read_to_string(self.dir.join("jvm.pid"))
            .ok()
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| self.child.id())
    }

    /// The broker's own log (errors only), for a failing test to print.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("broker.log")).unwrap_or_default()
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.plaintext)
            .set("log_level", "0")
            .create()
            .map_err(|e| self.start_error(format!("creating a probe client: {e}")))?;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(self.start_error(format!("the JVM exited with {status}")));
            }
            let answered = consumer
                .fetch_metadata(None, Duration::from_millis(500))
                .is_ok_and(|md| !md.brokers().is_empty());
            if answered {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(self.start_error(format!("no metadata answer after {timeout:?}")));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn start_error(&self, reason: String) -> Error {
        let log = self.log();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        let mut reason = reason;
        if !tail.is_empty() {
            let _ = write!(reason, "; broker log ends:");
            for line in tail.iter().rev() {
                let _ = write!(reason, "\n  {line}");
            }
        }
        Error::Start {
            addr: self.plaintext.clone(),
            reason,
        }
    }
}

impl Drop for KafkaBroker {
    fn drop(&mut self) {
        // The watchdog shell leads its own process group: kill it and the JVM.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Ports {
    plaintext: u16,
    ssl: u16,
    sasl: u16,
    controller: u16,
}

impl Ports {
    /// Four distinct free ports: all four are held open while they are
    /// picked (picking one at a time can get the same port twice).
    fn pick() -> Result<Ports> {
        let held = (0..4)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
            .collect::<std::io::Result<Vec<_>>>()?;
        let port = |i: usize| held[i].local_addr().map(|a| a.port());
        Ok(Ports {
            plaintext: port(0)?,
            ssl: port(1)?,
            sasl: port(2)?,
            controller: port(3)?,
        })
    }
}

fn server_properties(dir: &Path, ports: &Ports, tls: &TlsFiles) -> String {
    let Ports {
        plaintext,
        ssl,
        sasl,
        controller,
    } = ports;
    let (plain_user, plain_password) = PLAIN_USER;
    format!(
        "process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listeners=PLAINTEXT://127.0.0.1:{plaintext},SSL://127.0.0.1:{ssl},SASL_PLAINTEXT://127.0.0.1:{sasl},CONTROLLER://127.0.0.1:{controller}
advertised.listeners=PLAINTEXT://127.0.0.1:{plaintext},SSL://127.0.0.1:{ssl},SASL_PLAINTEXT://127.0.0.1:{sasl}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs={data}
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=500
ssl.keystore.type=PKCS12
ssl.keystore.location={keystore}
ssl.keystore.password={password}
ssl.key.password={password}
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-512
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_{plain_user}=\"{plain_password}\";
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
",
        data = dir.join("data").display(),
        keystore = tls.keystore.display(),
        password = tls.password,
    )
}

/// `kafka-storage format`, adding the SCRAM user.
fn format_storage(cp: &str, props: &Path, dir: &Path) -> Result<()> {
    let (user, password) = SCRAM_USER;
    let out = Command::new("java")
        .args(jvm_options("256m"))
        .args(["-cp", cp, "kafka.tools.StorageTool", "format"])
        .args(["--cluster-id", CLUSTER_ID, "--config"])
        .arg(props)
        .arg("--add-scram")
        .arg(format!("SCRAM-SHA-512=[name={user},password={password}]"))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Start {
            addr: dir.display().to_string(),
            reason: format!("cannot run java (Java 17+ must be on PATH): {e}"),
        })?;
    if out.status.success() {
        return Ok(());
    }
    Err(Error::Start {
        addr: dir.display().to_string(),
        reason: format!(
            "formatting the broker's storage failed with {}: {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    })
}

/// Starts `kafka.Kafka` under a watchdog shell that kills the JVM when this
/// test process is gone (a test killed by a timeout leaves no broker
/// behind). The shell leads a process group of its own.
fn watched_jvm(cp: &str, props: &Path, pid_file: &Path, log: std::fs::File) -> Result<Child> {
    use std::os::unix::process::CommandExt;
    let script = r#"java "$@" & jvm=$!
echo "$jvm" > "$PIDFILE"
while kill -0 "$jvm" 2>/dev/null; do
  kill -0 "$OWNER" 2>/dev/null || { kill -9 "$jvm"; exit 0; }
  sleep 1
done
wait "$jvm""#;
    let err = log.try_clone()?;
    let child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("rebound-kafka")
        .args(jvm_options("768m"))
        .args(["-cp", cp, "kafka.Kafka"])
        .arg(props)
        .env("OWNER", std::process::id().to_string())
        .env("PIDFILE", pid_file)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .process_group(0)
        .spawn()?;
    Ok(child)
}

/// Small heap, serial GC and C1 only: starts faster and leaves the second
/// core to the test on a two-core machine.
fn jvm_options(heap: &str) -> Vec<String> {
    vec![
        format!("-Xmx{heap}"),
        "-XX:+UseSerialGC".into(),
        "-XX:TieredStopAtLevel=1".into(),
        "-Djava.awt.headless=true".into(),
    ]
}
