use std::time::Duration;

use crimson_config::{LogConfig, LogFormat, TelemetryConfig};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::{
    Resource,
    trace::{BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider},
};
use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};

/// Why telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The log filter does not parse.
    #[error("invalid log filter {filter:?}: {message}")]
    Filter {
        /// The filter as configured.
        filter: String,
        /// Parser message.
        message: String,
    },
    /// The OTLP exporter could not be built.
    #[error("OTLP exporter for {endpoint}: {message}")]
    Exporter {
        /// The configured endpoint.
        endpoint: String,
        /// Builder message.
        message: String,
    },
}

/// Keeps span export alive; flushes pending spans when dropped (at shutdown).
#[must_use = "spans are only flushed while the guard lives"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.force_flush();
            let _ = provider.shutdown();
        }
    }
}

/// Installs the global subscriber for `service` (e.g. "crimson-image"). Must be called inside
/// the Tokio runtime when an OTLP endpoint is configured (the exporter is a tonic client).
pub fn init(
    service: &'static str,
    log: &LogConfig,
    telemetry: &TelemetryConfig,
) -> Result<TelemetryGuard, TelemetryError> {
    let filter = EnvFilter::try_new(&log.level).map_err(|e| TelemetryError::Filter {
        filter: log.level.clone(),
        message: e.to_string(),
    })?;
    let fmt = match log.format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let provider = telemetry
        .otlp_endpoint
        .as_deref()
        .map(|endpoint| tracer_provider(service, endpoint, telemetry.sampling_ratio))
        .transpose()?;
    let otel = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(service))
            .boxed()
    });
    tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .with(filter)
        .init();
    Ok(TelemetryGuard { provider })
}

fn tracer_provider(
    service: &'static str,
    endpoint: &str,
    sampling_ratio: Option<f64>,
) -> Result<SdkTracerProvider, TelemetryError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .with_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| TelemetryError::Exporter {
            endpoint: endpoint.to_string(),
            message: e.to_string(),
        })?;
    let batch = BatchSpanProcessor::builder(exporter)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_scheduled_delay(Duration::from_millis(500))
                .build(),
        )
        .build();
    let root_sampler = match sampling_ratio {
        Some(ratio) => Sampler::TraceIdRatioBased(ratio),
        None => Sampler::AlwaysOn,
    };
    Ok(SdkTracerProvider::builder()
        .with_span_processor(batch)
        .with_sampler(Sampler::ParentBased(Box::new(root_sampler)))
        .with_resource(Resource::builder().with_service_name(service).build())
        .build())
}
