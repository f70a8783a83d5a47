//! The cluster flags the operating commands share (`topic`, `group`,
//! `lag`), and the clients made from them.

use std::time::Duration;

use anyhow::Context;
use clap::Args;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::BaseConsumer;

use crate::args;
use crate::security::Security;

/// Where the cluster is and how to talk to it.
#[derive(Debug, Clone, Args)]
pub struct Cluster {
    /// Kafka bootstrap servers, host:port[,host:port].
    #[arg(long, env = "REBOUND_BROKERS", value_parser = args::non_empty)]
    pub brokers: String,
    /// TLS and SASL.
    #[command(flatten)]
    pub security: Security,
    /// How long to wait for the brokers and for each call.
    #[arg(long, env = "REBOUND_ADMIN_TIMEOUT", default_value = "30s", value_parser = args::duration)]
    pub timeout: Duration,
}

impl Cluster {
    /// The librdkafka properties TLS, SASL and `--kafka-config` give.
    pub fn properties(&self) -> anyhow::Result<Vec<(String, String)>> {
        self.security.properties()
    }

    /// A consumer in `group` that never commits on its own and joins no
    /// group unless asked: for metadata, offsets and committing by hand.
    pub fn consumer(&self, group: &str) -> anyhow::Result<BaseConsumer> {
        let mut c = ClientConfig::new();
        for (k, v) in self.properties()? {
            c.set(k, v);
        }
        c.set("bootstrap.servers", &self.brokers)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .create()
            .context("cannot create the Kafka client")
    }
}
