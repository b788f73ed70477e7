use std::{io::IsTerminal, time::Duration};

use crimson_config::{LogConfig, LogFormat, TelemetryConfig};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::{
    Resource,
    trace::{BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider},
};
use tracing_subscriber::{
    EnvFilter, Layer, Registry, layer::SubscriberExt, reload, util::SubscriberInitExt,
};

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
    log_filter: LogFilter,
}

impl TelemetryGuard {
    /// The handle that changes the log filter of the running process.
    pub fn log_filter(&self) -> LogFilter {
        self.log_filter.clone()
    }
}

/// Changes the log filter while the process runs (on SIGHUP).
#[derive(Clone)]
pub struct LogFilter(reload::Handle<EnvFilter, Registry>);

impl LogFilter {
    /// Filters log lines by `level` (`RUST_LOG` syntax) from now on.
    pub fn set(&self, level: &str) -> Result<(), TelemetryError> {
        let filter = parse_filter(level)?;
        self.0.reload(filter).map_err(|e| TelemetryError::Filter {
            filter: level.to_string(),
            message: e.to_string(),
        })
    }
}

fn parse_filter(level: &str) -> Result<EnvFilter, TelemetryError> {
    EnvFilter::try_new(level).map_err(|e| TelemetryError::Filter {
        filter: level.to_string(),
        message: e.to_string(),
    })
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
    let (filter, handle) = reload::Layer::new(parse_filter(&log.level)?);
    let fmt = match log.format {
        // Colours only on a terminal: a log file or the journal would keep the escapes.
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_ansi(std::io::stderr().is_terminal())
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
    // The filter first, as a layer over the registry itself: it decides for every layer above.
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .init();
    Ok(TelemetryGuard {
        provider,
        log_filter: LogFilter(handle),
    })
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
