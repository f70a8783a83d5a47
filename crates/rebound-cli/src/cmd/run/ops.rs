//! The one `/healthz`, `/readyz`, `/metrics` of `rebound run`: health of
//! every route (a route's reasons prefixed with its name) and the metrics of
//! every route, each labelled `route="NAME"`, on one page.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use prometheus::proto::MetricFamily;
use prometheus::Registry;
use rebound_worker::{Health, HealthReport, Metrics};

use crate::ops::OpsSource;

/// A running route as the endpoints see it.
#[derive(Clone)]
pub struct Live {
    /// Its health.
    pub health: Arc<Health>,
    /// Its registry (const label `route`).
    pub registry: Registry,
    /// Its metrics (in `registry`), for progress lines.
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
}

impl PipelineOps {
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
    pub fn remove(&self, name: &str) {
        self.routes.write().expect("ops lock").remove(name);
    }
}

/// A registry whose every metric carries `route="NAME"`.
pub fn route_registry(name: &str) -> Registry {
    let labels = [("route".to_string(), name.to_string())].into();
    Registry::new_custom(None, Some(labels)).expect("a valid label")
}

/// Families of several registries merged by name (one `# TYPE` line each).
fn merged(registries: &[Registry]) -> Vec<MetricFamily> {
    let mut by_name: BTreeMap<String, MetricFamily> = BTreeMap::new();
    for r in registries {
        for mut f in r.gather() {
            match by_name.get_mut(f.name()) {
                Some(existing) => existing.mut_metric().extend(f.take_metric()),
                None => {
                    by_name.insert(f.name().to_string(), f);
                }
            }
        }
    }
    by_name.into_values().collect()
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
        let registries: Vec<Registry> = self
            .routes
            .read()
            .expect("ops lock")
            .values()
            .filter_map(|s| match s {
                RouteState::Running(l) => Some(l.registry.clone()),
                RouteState::Failed(_) => None,
            })
            .collect();
        let mut buf = Vec::new();
        prometheus::Encoder::encode(
            &prometheus::TextEncoder::new(),
            &merged(&registries),
            &mut buf,
        )
        .expect("text encoding cannot fail");
        String::from_utf8(buf).expect("prometheus text is UTF-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_page_with_every_route_labelled() {
        let ops = PipelineOps::default();
        for name in ["a", "b"] {
            let r = route_registry(name);
            let metrics = Arc::new(Metrics::in_registry(r.clone()));
            metrics.processed_counter("t").inc();
            let live = Live {
                health: Arc::new(Health::default()),
                registry: r,
                metrics,
                topic: "t".into(),
            };
            ops.set(name, RouteState::Running(live));
        }
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
