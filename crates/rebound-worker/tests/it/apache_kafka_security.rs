//! TLS and SASL against Apache Kafka itself (tansu has neither): a producer
//! and a worker connect over the SSL listener (server certificate checked
//! against the run's throw-away CA) and over SASL_PLAINTEXT with PLAIN and
//! with SCRAM-SHA-512; a wrong password fails the worker's start with an
//! error that says authentication failed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rebound_producer::{OutRecord, Producer, ProducerConfig};
use rebound_testkit::apache_kafka::{PLAIN_USER, SCRAM_USER};
use rebound_testkit::{create_topic, unique_name, KafkaBroker};
use rebound_worker::{handler_fn, Record, Worker, WorkerConfig};

/// How a client reaches one listener: its address and client settings.
struct Access {
    name: &'static str,
    bootstrap: String,
    settings: Vec<(&'static str, String)>,
}

fn accesses(k: &KafkaBroker) -> Vec<Access> {
    let sasl = |mechanism: &str, (user, password): (&str, &str)| {
        vec![
            ("security.protocol", "SASL_PLAINTEXT".to_string()),
            ("sasl.mechanism", mechanism.to_string()),
            ("sasl.username", user.to_string()),
            ("sasl.password", password.to_string()),
        ]
    };
    vec![
        Access {
            name: "TLS",
            bootstrap: k.ssl_bootstrap().to_string(),
            settings: vec![
                ("security.protocol", "SSL".to_string()),
                ("ssl.ca.location", k.tls().ca_pem.display().to_string()),
            ],
        },
        Access {
            name: "SASL/PLAIN",
            bootstrap: k.sasl_bootstrap().to_string(),
            settings: sasl("PLAIN", PLAIN_USER),
        },
        Access {
            name: "SASL/SCRAM-SHA-512",
            bootstrap: k.sasl_bootstrap().to_string(),
            settings: sasl("SCRAM-SHA-512", SCRAM_USER),
        },
    ]
}

fn worker_config(a: &Access, topic: &str) -> WorkerConfig {
    let mut b = WorkerConfig::builder()
        .with_brokers(&a.bootstrap)
        .with_group(unique_name("g"))
        .with_topic(topic)
        .with_session_timeout(Duration::from_secs(6))
        .with_connect_timeout(Duration::from_secs(10));
    for (k, v) in &a.settings {
        b = b.with_client_config(*k, v);
    }
    b.build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_plain_and_scram_connections_produce_and_consume() {
    let kafka = KafkaBroker::start().unwrap();
    eprintln!("Apache Kafka started in {:?}", kafka.started_in());
    for a in accesses(&kafka) {
        let topic = unique_name("secure");
        create_topic(kafka.bootstrap(), &topic, 1).await.unwrap();
        let mut pc = ProducerConfig::new(&a.bootstrap);
        for (k, v) in &a.settings {
            pc = pc.with_client_config(*k, v);
        }
        let producer = Producer::new(&pc).unwrap();
        let value = format!("over {}", a.name);
        let at = producer
            .send(&OutRecord::new(&topic, value.clone()))
            .await
            .unwrap_or_else(|e| panic!("{}: send failed: {e}", a.name));
        assert_eq!((at.partition, at.offset), (0, 0), "{}", a.name);

        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let handler = handler_fn(move |rec: &Record| {
            s.lock().unwrap().push(rec.value_str().unwrap().to_string());
            async { Ok(()) }
        });
        let w = Worker::start(worker_config(&a, &topic), handler)
            .await
            .unwrap_or_else(|e| panic!("{}: worker failed to start: {e}", a.name));
        let what = format!("{}: a record consumed", a.name);
        rebound_testkit::eventually(Duration::from_secs(30), &what, || {
            let consumed = !seen.lock().unwrap().is_empty();
            async move { consumed }
        })
        .await;
        w.stop().await.unwrap();
        assert_eq!(*seen.lock().unwrap(), vec![value], "{}", a.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_fails_with_an_authentication_error() {
    let kafka = KafkaBroker::start().unwrap();
    let topic = unique_name("secure");
    create_topic(kafka.bootstrap(), &topic, 1).await.unwrap();
    for (mechanism, user) in [("PLAIN", PLAIN_USER.0), ("SCRAM-SHA-512", SCRAM_USER.0)] {
        let a = Access {
            name: "wrong password",
            bootstrap: kafka.sasl_bootstrap().to_string(),
            settings: vec![
                ("security.protocol", "SASL_PLAINTEXT".to_string()),
                ("sasl.mechanism", mechanism.to_string()),
                ("sasl.username", user.to_string()),
                ("sasl.password", "not-the-password".to_string()),
            ],
        };
        let handler = handler_fn(|_: &Record| async { Ok(()) });
        let err = match Worker::start(worker_config(&a, &topic), handler).await {
            Ok(_) => panic!("{mechanism}: a wrong password was accepted"),
            Err(e) => e.to_string(),
        };
        eprintln!("{mechanism}: {err}");
        assert!(
            err.contains("uthentication"),
            "{mechanism}: the error does not say authentication failed: {err}"
        );
    }
}
