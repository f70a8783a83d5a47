//! Sentinel and Cluster modes against real local servers: a master watched by
//! a `redis-server --sentinel`, and a three-master cluster built with
//! `redis-cli --cluster create`. Create, claim with a lease and finish work
//! through `redis+sentinel://` and `redis+cluster://`. The sentinel's
//! master requires a password with characters a URL must encode.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rebound_scheduler::store::{self, Finish};
use rebound_scheduler::task::{
    CreateOutcome, Destination, DestinationType, Task, TaskSpec, TaskState,
};
use rebound_testkit::{free_port, KillOnDrop};

/// The servers a test started, killed when it ends.
struct Procs(Vec<KillOnDrop>);

fn redis(procs: &mut Procs, dir: &std::path::Path, args: &[&str]) {
    let child = Command::new("redis-server")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server on PATH");
    procs.0.push(KillOnDrop(child));
}

fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn task(id: &str) -> Task {
    let spec = TaskSpec {
        id: id.into(),
        source: "modes".into(),
        destination: Destination {
            topic: "t".into(),
            ..Destination::default()
        },
        dead_destination: None,
        max_retries: 0,
        base_delay: 1,
        first_delay: 1,
        client_id: String::new(),
        is_priority: false,
        message_data: "m".into(),
        destination_type: DestinationType::Kafka,
        trace_parent: Default::default(),
    };
    Task::new(spec, 1_000)
}

async fn exercise(url: &str) {
    let s = store::open(url).await.unwrap();
    s.health().await.unwrap();
    let out = s.create(vec![task("a"), task("b")]).await.unwrap();
    assert_eq!(out, [CreateOutcome::Created, CreateOutcome::Created]);
    assert_eq!(
        s.create(vec![task("a")]).await.unwrap(),
        [CreateOutcome::Duplicate]
    );
    let claimed = s.claim(2_000, 10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(claimed.len(), 2);
    assert!(s
        .claim(2_000, 10, Duration::from_secs(30))
        .await
        .unwrap()
        .is_empty());
    let done = Finish::Done {
        state: TaskState::Delivered,
        attempts: 1,
        error: None,
    };
    for c in &claimed {
        assert!(s.finish(c, done.clone(), 2_000).await.unwrap());
    }
    assert_eq!(
        s.get("a").await.unwrap().unwrap().state,
        TaskState::Delivered
    );
    assert_eq!(s.next_due().await.unwrap(), None);
    let page = s
        .list(&store::ListQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.tasks.len(), 2, "list sees both tasks");
}

/// The sentinel test's master password, percent-encoded in its URL.
const PASSWORD: (&str, &str) = ("p@ss:w/rd%!", "p%40ss%3Aw%2Frd%25%21");

#[tokio::test]
async fn sentinel_mode() {
    let dir = tempfile::tempdir().unwrap();
    let mut procs = Procs(Vec::new());
    let master = free_port().unwrap();
    redis(
        &mut procs,
        dir.path(),
        &[
            "--port",
            &master.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--requirepass",
            PASSWORD.0,
        ],
    );
    let auth = ["--no-auth-warning", "-a", PASSWORD.0];
    let on_master = |args: &[&str]| cli(master, &[&auth[..], args].concat());
    wait_until("master", Duration::from_secs(10), || {
        on_master(&["ping"]).contains("PONG")
    });
    let sentinel = free_port().unwrap();
    let conf = dir.path().join("sentinel.conf");
    std::fs::write(
        &conf,
        format!(
            "port {sentinel}\nbind 127.0.0.1\nsentinel monitor mymaster 127.0.0.1 {master} 1\n\
             sentinel auth-pass mymaster {}\n",
            PASSWORD.0
        ),
    )
    .unwrap();
    redis(
        &mut procs,
        dir.path(),
        &[conf.to_str().unwrap(), "--sentinel"],
    );
    wait_until("sentinel", Duration::from_secs(10), || {
        cli(
            sentinel,
            &["sentinel", "get-master-addr-by-name", "mymaster"],
        )
        .contains(&master.to_string())
    });
    exercise(&format!(
        "redis+sentinel://:{}@127.0.0.1:{sentinel}/mymaster?prefix=s",
        PASSWORD.1
    ))
    .await;
    // The data went to the master the sentinel named.
    assert!(on_master(&["exists", "{s}:task:a"]).contains('1'));
}

#[tokio::test]
async fn cluster_mode() {
    let dir = tempfile::tempdir().unwrap();
    let mut procs = Procs(Vec::new());
    let ports: Vec<u16> = (0..3).map(|_| free_port().unwrap()).collect();
    for p in &ports {
        let conf = format!("nodes-{p}.conf");
        redis(
            &mut procs,
            dir.path(),
            &[
                "--port",
                &p.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                &conf,
            ],
        );
    }
    for p in &ports {
        wait_until("node", Duration::from_secs(10), || {
            cli(*p, &["ping"]).contains("PONG")
        });
    }
    let nodes: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let out = Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(&nodes)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    wait_until("cluster ok", Duration::from_secs(20), || {
        ports
            .iter()
            .all(|p| cli(*p, &["cluster", "info"]).contains("cluster_state:ok"))
    });
    exercise(&format!("redis+cluster://{}?prefix=c", nodes.join(","))).await;
}

#[tokio::test]
async fn sentinel_failover_is_followed() {
    let dir = tempfile::tempdir().unwrap();
    let mut procs = Procs(Vec::new());
    let (master, replica, sentinel) = (
        free_port().unwrap(),
        free_port().unwrap(),
        free_port().unwrap(),
    );
    redis(
        &mut procs,
        dir.path(),
        &[
            "--port",
            &master.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ],
    );
    wait_until("master", Duration::from_secs(10), || {
        cli(master, &["ping"]).contains("PONG")
    });
    redis(
        &mut procs,
        dir.path(),
        &[
            "--port",
            &replica.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--replicaof",
            "127.0.0.1",
            &master.to_string(),
        ],
    );
    wait_until("replica in sync", Duration::from_secs(20), || {
        cli(replica, &["info", "replication"]).contains("master_link_status:up")
    });
    let conf = dir.path().join("sentinel.conf");
    std::fs::write(
        &conf,
        format!(
            "port {sentinel}\nbind 127.0.0.1\nsentinel monitor mymaster 127.0.0.1 {master} 1\n\
             sentinel down-after-milliseconds mymaster 1000\nsentinel failover-timeout mymaster 5000\n"
        ),
    )
    .unwrap();
    redis(
        &mut procs,
        dir.path(),
        &[conf.to_str().unwrap(), "--sentinel"],
    );
    wait_until("sentinel sees the replica", Duration::from_secs(20), || {
        cli(sentinel, &["sentinel", "replicas", "mymaster"]).contains(&replica.to_string())
    });
    let s = store::open(&format!(
        "redis+sentinel://127.0.0.1:{sentinel}/mymaster?prefix=f"
    ))
    .await
    .unwrap();
    assert_eq!(
        s.create(vec![task("before")]).await.unwrap(),
        [CreateOutcome::Created]
    );
    // Sentinel answers NOGOODSLAVE until it has fresh INFO from the replica
    // (it polls replicas every few seconds): ask again until it accepts.
    let mut out = String::new();
    wait_until(
        "sentinel to accept the failover",
        Duration::from_secs(30),
        || {
            out = cli(sentinel, &["sentinel", "failover", "mymaster"]);
            out.contains("OK")
        },
    );
    assert!(out.contains("OK"), "{out}");
    wait_until("replica promoted", Duration::from_secs(30), || {
        cli(
            sentinel,
            &["sentinel", "get-master-addr-by-name", "mymaster"],
        )
        .contains(&replica.to_string())
            && cli(replica, &["info", "replication"]).contains("role:master")
    });
    // Until sentinel demotes the old master it still accepts writes, which
    // Redis then discards (asynchronous replication); writes after the
    // demotion get READONLY, and the store must move to the new master.
    wait_until("old master demoted", Duration::from_secs(30), || {
        cli(master, &["info", "replication"]).contains("role:slave")
    });
    // Writes reach the new master after at most a few failed attempts.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match s.create(vec![task("after")]).await {
            Ok(out) => {
                assert_eq!(out, [CreateOutcome::Created]);
                break;
            }
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "store never followed the failover: {e}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    assert!(
        cli(replica, &["exists", "{f}:task:after"]).contains('1'),
        "written to the new master"
    );
    assert!(
        s.get("before").await.unwrap().is_some(),
        "replicated data readable"
    );
}
