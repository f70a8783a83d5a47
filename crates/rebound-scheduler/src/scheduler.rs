//! [`Scheduler`]: the library API (create, get, cancel, list) over a [`Store`].

use std::sync::Arc;

use tokio::sync::Notify;

use crate::clock::Clock;
use crate::deliver::Deliver;
use crate::dispatcher::{DispatchConfig, Dispatcher};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::store::{ListQuery, Page, Store};
use crate::task::{CancelOutcome, CreateOutcome, NewTask, Task};
use crate::validate::{validate, Limits};

/// Schedules tasks into a store. Cheap to clone; clones share the store, the
/// wake-up of local dispatchers and the metrics.
#[derive(Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    clock: Clock,
    limits: Limits,
    wake: Arc<Notify>,
    metrics: Metrics,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("store", &self.inner.store.name())
            .field("limits", &self.inner.limits)
            .finish()
    }
}

/// Builds a [`Scheduler`].
pub struct SchedulerBuilder {
    store: Arc<dyn Store>,
    clock: Clock,
    limits: Limits,
    metrics: Metrics,
}

impl SchedulerBuilder {
    /// Uses `clock` for due times (default: the wall clock).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Size limits for incoming tasks.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Metrics to record into.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Validates the settings and builds the scheduler; an error names the
    /// setting.
    pub fn build(self) -> Result<Scheduler> {
        let l = &self.limits;
        let invalid = |name: &str, reason: String| Error::Config {
            name: name.into(),
            reason,
        };
        if l.max_message_bytes == 0 {
            return Err(invalid(
                "limits.max_message_bytes",
                "must be at least 1".into(),
            ));
        }
        if l.max_batch == 0 {
            return Err(invalid("limits.max_batch", "must be at least 1".into()));
        }
        if l.max_body_bytes == 0 {
            return Err(invalid(
                "limits.max_body_bytes",
                "must be at least 1".into(),
            ));
        }
        Ok(Scheduler {
            inner: Arc::new(Inner {
                store: self.store,
                clock: self.clock,
                limits: self.limits,
                wake: Arc::new(Notify::new()),
                metrics: self.metrics,
            }),
        })
    }
}

impl Scheduler {
    /// A builder over `store`.
    pub fn builder(store: Arc<dyn Store>) -> SchedulerBuilder {
        SchedulerBuilder {
            store,
            clock: Clock::System,
            limits: Limits::default(),
            metrics: Metrics::new(),
        }
    }

    /// A scheduler over `store` with defaults.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self::builder(store)
            .build()
            .expect("the default settings are valid")
    }

    /// Validates and stores a task, first due at now + `base_delay`.
    /// The same id twice never makes two tasks: an identical body gives
    /// [`CreateOutcome::Duplicate`], a different one [`CreateOutcome::Conflict`].
    pub async fn create_task(&self, req: NewTask) -> Result<CreateOutcome> {
        let spec = validate(req, &self.inner.limits)?;
        let task = Task::new(spec, self.inner.clock.now_ms());
        let outcome = self
            .inner
            .store
            .create(vec![task])
            .await?
            .pop()
            .expect("one outcome per task");
        self.created(1, &outcome);
        Ok(outcome)
    }

    /// Validates and stores many tasks with one store round trip; one result
    /// per request, in order.
    pub async fn create_tasks(&self, reqs: Vec<NewTask>) -> Result<Vec<Result<CreateOutcome>>> {
        let now = self.inner.clock.now_ms();
        let mut results: Vec<Option<Result<CreateOutcome>>> = Vec::with_capacity(reqs.len());
        let mut valid = Vec::new();
        for req in reqs {
            match validate(req, &self.inner.limits) {
                Ok(spec) => {
                    valid.push(Task::new(spec, now));
                    results.push(None);
                }
                Err(e) => results.push(Some(Err(e))),
            }
        }
        let mut outcomes = self.inner.store.create(valid).await?.into_iter();
        let mut created = 0;
        let out = results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    let o = outcomes.next().expect("one outcome per valid task");
                    created += usize::from(o == CreateOutcome::Created);
                    Ok(o)
                })
            })
            .collect();
        if created > 0 {
            self.created(created, &CreateOutcome::Created);
        }
        Ok(out)
    }

    fn created(&self, n: usize, outcome: &CreateOutcome) {
        if *outcome == CreateOutcome::Created {
            self.inner.metrics.created.inc_by(n as u64);
            self.inner.wake.notify_one();
        }
    }

    /// Reads a task.
    pub async fn get(&self, id: &str) -> Result<Option<Task>> {
        self.inner.store.get(id).await
    }

    /// Cancels a task that has not finished.
    pub async fn cancel(&self, id: &str) -> Result<CancelOutcome> {
        self.inner.store.cancel(id, self.inner.clock.now_ms()).await
    }

    /// Lists tasks, filtered and paginated.
    pub async fn list(&self, query: &ListQuery) -> Result<Page> {
        self.inner.store.list(query).await
    }

    /// Checks the store.
    pub async fn health(&self) -> Result<()> {
        self.inner.store.health().await
    }

    /// Liveness and readiness in rebound's one health shape: ready when
    /// the store answers.
    pub async fn health_report(&self) -> rebound_worker::HealthReport {
        let store = self
            .health()
            .await
            .map_err(|e| rebound_core::DisplayChain(&e).to_string());
        rebound_worker::HealthReport::from_checks([(self.store().name(), store)])
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The clock.
    pub fn clock(&self) -> Clock {
        self.inner.clock
    }

    /// The limits applied to incoming tasks.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// A dispatcher delivering this scheduler's due tasks through `deliver`.
    pub fn dispatcher(&self, deliver: Arc<dyn Deliver>, config: DispatchConfig) -> Dispatcher {
        Dispatcher::new(
            self.inner.store.clone(),
            self.inner.clock,
            self.inner.wake.clone(),
            self.inner.metrics.clone(),
            deliver,
            config,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::file::FileStore;

    #[test]
    fn build_names_an_unusable_limit() {
        let store = || Arc::new(FileStore::in_memory()) as Arc<dyn Store>;
        let with = |limits: Limits| Scheduler::builder(store()).with_limits(limits).build();
        assert!(with(Limits::default()).is_ok());
        let e = with(Limits {
            max_batch: 0,
            ..Limits::default()
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid configuration limits.max_batch: must be at least 1"
        );
        let e = with(Limits {
            max_body_bytes: 0,
            ..Limits::default()
        })
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("invalid configuration limits.max_body_bytes"),
            "{e}"
        );
    }
}
