//! Trace export over OTLP (HTTP with protobuf), configured by the standard
//! OpenTelemetry variables and off unless asked for:
//!
//! - on when `OTEL_EXPORTER_OTLP_ENDPOINT` or
//!   `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set, or `OTEL_TRACES_EXPORTER=otlp`;
//! - off with `OTEL_TRACES_EXPORTER=none` or `OTEL_SDK_DISABLED=true`;
//! - `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG` (for instance
//!   `parentbased_traceidratio` and `0.01`), `OTEL_EXPORTER_OTLP_HEADERS`,
//!   `OTEL_EXPORTER_OTLP_TIMEOUT`, `OTEL_SERVICE_NAME` (default `rebound`)
//!   and `OTEL_RESOURCE_ATTRIBUTES` as the specification says.
//!
//! Off, no provider is installed: spans are OpenTelemetry's no-ops, and
//! records still carry the trace context they came with.

use anyhow::{bail, Context};
use opentelemetry_otlp::SpanExporter;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;

/// The installed provider, flushed and shut down by [`Telemetry::shutdown`].
pub struct Telemetry(Option<SdkTracerProvider>);

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Whether the environment asks for trace export; an exporter or protocol
/// this build does not have is an error naming the variable.
fn wanted() -> anyhow::Result<bool> {
    if var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Ok(false);
    }
    let endpoint = var("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
        || var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some();
    let on = match var("OTEL_TRACES_EXPORTER").as_deref() {
        None => endpoint,
        Some("otlp") => true,
        Some("none") => false,
        Some(other) => {
            bail!("OTEL_TRACES_EXPORTER={other:?}: only \"otlp\" and \"none\" are supported")
        }
    };
    if on {
        for name in [
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ] {
            if let Some(p) = var(name) {
                if p != "http/protobuf" {
                    bail!("{name}={p:?}: only \"http/protobuf\" is supported");
                }
                break;
            }
        }
    }
    Ok(on)
}

/// The ratio of `OTEL_TRACES_SAMPLER=parentbased_traceidratio`: that
/// sampler is [`rebound_core::trace::ratio_sampler`], which samples the
/// same and makes a dropped new trace cost no span. Other samplers are the
/// SDK's, read from the environment by it.
fn new_trace_ratio() -> anyhow::Result<Option<f64>> {
    if var("OTEL_TRACES_SAMPLER").as_deref() != Some("parentbased_traceidratio") {
        return Ok(None);
    }
    let Some(arg) = var("OTEL_TRACES_SAMPLER_ARG") else {
        return Ok(Some(1.0));
    };
    match arg.trim().parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(Some(r)),
        _ => bail!("OTEL_TRACES_SAMPLER_ARG={arg:?}: a ratio from 0 to 1 is expected"),
    }
}

/// Installs the global tracer provider when the environment asks for it.
pub fn init() -> anyhow::Result<Telemetry> {
    if !wanted()? {
        return Ok(Telemetry(None));
    }
    let exporter = SpanExporter::builder()
        .with_http()
        .build()
        .context("the OTLP trace exporter (OTEL_EXPORTER_OTLP_*)")?;
    let mut resource = Resource::builder();
    if var("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("rebound");
    }
    let mut provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build());
    if let Some(ratio) = new_trace_ratio()? {
        provider = provider.with_sampler(rebound_core::trace::ratio_sampler(ratio));
    }
    let provider = provider.build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    Ok(Telemetry(Some(provider)))
}

impl Telemetry {
    /// Exports what is buffered and stops the exporter.
    pub fn shutdown(self) {
        if let Some(p) = self.0 {
            if let Err(e) = p.shutdown() {
                tracing::warn!(error = %e, "exporting the last spans failed");
            }
        }
    }
}
