//! The one `/healthz`, `/readyz`, `/metrics` of `rebound run`: health of
//! every route (a route's reasons prefixed with its name) and the process's
//! one registry, where every route's metrics carry the const label
//! `route="NAME"`.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use prometheus::Registry;
use rebound_worker::{Health, HealthReport, Metrics};

use crate::ops::OpsSource;

/// A running route as the endpoints see it.
#[derive(Clone)]
pub struct Live {
    /// Its health.
    pub health: Arc<Health>,
    /// Its metrics, for progress lines.
    pub metrics: Arc<Metrics>,
    /// Its source topic.
    pub topic: String,
}

/// What the endpoints see of one route.
#[derive(Clone)]
pub enum RouteState {
    /// Running.
    Running(Live),
    /// Could not start (after a reload): why.
    Failed(String),
}

/// The routes as the endpoints see them; the supervisor updates it.
#[derive(Clone, Default)]
pub struct PipelineOps {
    routes: Arc<RwLock<BTreeMap<String, RouteState>>>,
    registry: Registry,
}

impl PipelineOps {
    /// The process's one registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Sets (or replaces) what the endpoints show of `name`.
    pub fn set(&self, name: &str, state: RouteState) {
        self.routes
            .write()
            .expect("ops lock")
            .insert(name.to_string(), state);
    }

    /// Per running route: records processed, in flight, frozen partitions.
    pub fn progress_lines(&self) -> Vec<(String, (u64, i64, i64))> {
        let routes = self.routes.read().expect("ops lock");
        routes
            .iter()
            .filter_map(|(name, s)| match s {
                RouteState::Running(l) => Some((
                    name.clone(),
                    (
                        l.metrics.processed(&l.topic),
                        l.metrics.in_flight.get(),
                        l.metrics.frozen_partitions.get(),
                    ),
                )),
                RouteState::Failed(_) => None,
            })
            .collect()
    }

    /// Forgets a removed route.
    /// Forgets every route `keep` refuses (routes gone from the config,
    /// running or not: one that failed to start must not stay unready).
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.routes
            .write()
            .expect("ops lock")
            .retain(|name, _| keep(name));
    }
}

/// The const labels of a route's metrics: `route="NAME"`.
pub fn route_labels(name: &str) -> std::collections::HashMap<String, String> {
    [("route".to_string(), name.to_string())].into()
}

impl OpsSource for PipelineOps {
    fn report(&self) -> HealthReport {
        let routes = self.routes.read().expect("ops lock");
        let mut report = HealthReport {
            live: true,
            ready: true,
            reasons: Vec::new(),
        };
        for (name, state) in routes.iter() {
            match state {
                RouteState::Running(l) => {
                    let r = l.health.report();
                    report.live &= r.live;
                    report.ready &= r.ready;
                    report.reasons.extend(
                        r.reasons
                            .into_iter()
                            .map(|why| format!("route {name}: {why}")),
                    );
                }
                RouteState::Failed(why) => {
                    report.ready = false;
                    report
                        .reasons
                        .push(format!("route {name}: not running: {why}"));
                }
            }
        }
        report
    }

    fn metrics(&self) -> String {
        rebound_producer::metrics::encode(&self.registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_page_with_every_route_labelled() {
        let ops = PipelineOps::default();
        for name in ["a", "b"] {
            let r = ops.registry().clone();
            let metrics = Arc::new(Metrics::in_registry_labelled(r, route_labels(name)));
            metrics.processed_counter("t").inc();
            let live = Live {
                health: Arc::new(Health::default()),
                metrics,
                topic: "t".into(),
            };
            ops.set(name, RouteState::Running(live));
        }
        // A restarted route registers its labels again once unregistered.
        let again = Metrics::in_registry_labelled(ops.registry().clone(), route_labels("c"));
        again.unregister();
        Metrics::in_registry_labelled(ops.registry().clone(), route_labels("c"));
        let text = ops.metrics();
        assert_eq!(
            text.matches("# TYPE rebound_records_processed_total")
                .count(),
            1
        );
        for route in ["a", "b"] {
            let label = format!("route=\"{route}\"");
            assert!(
                text.lines()
                    .any(|l| l.starts_with("rebound_records_processed_total{")
                        && l.contains(&label)
                        && l.contains("topic=\"t\"")
                        && l.ends_with(" 1")),
                "{text}"
            );
        }
        let report = ops.report();
        assert!(!report.ready);
        assert!(
            report.reasons.iter().any(|r| r.starts_with("route a: ")),
            "{report:?}"
        );
    }
}
