//! Start-up shared by every function: logging, configuration read once, the AWS clients with the
//! SDK's standard retries over one HTTPS client, and the Lambda runtime loop. Each `main` is one
//! call to `serve_*`.

use std::future::Future;
use std::path::{Path, PathBuf};

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
use aws_smithy_http_client::{Builder, ConnectorBuilder};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use lambda_runtime::{service_fn, LambdaEvent};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use serde::{de::DeserializeOwned, Serialize};

use crate::adapters::{CloudWatchAlarms, DynamoStore, EcsCluster, SqsReconcileQueue, SqsWakeup};
use crate::error::Result;
use crate::http::{to_lambda, ApiRequest, ApiResponse};
use crate::metrics;
use tracing::Instrument;

pub type BoxError = lambda_runtime::Error;

/// The ports, built once per execution environment and shared by every invocation.
pub struct App {
    pub store: DynamoStore,
    pub cluster: EcsCluster,
    /// Where the ends of bakes are scheduled (`WAKEUP_QUEUE_URL`; task-events has it).
    pub wakeup: Option<SqsWakeup>,
    /// Where the scheduled reconcile puts one message per cluster (`RECONCILE_QUEUE_URL`; the
    /// reconciler has it).
    pub reconcile_queue: Option<SqsReconcileQueue>,
    /// The clusters environments may be created on (`MANAGED_CLUSTERS`; environments-api has it).
    pub managed_clusters: crate::domain::ManagedClusters,
    /// The alarms a revision may gate on (`GATE_ALARM_NAME_PREFIX`; environments-api has it).
    pub allowed_alarms: crate::domain::AllowedAlarms,
    /// The CloudWatch client of the alarm gates, built by the first `alarms()` (only the functions
    /// that step deployments call it, so only they build it, and only their binaries link it).
    alarms: std::sync::OnceLock<CloudWatchAlarms>,
    config: SdkConfig,
}

impl App {
    pub fn wakeup(&self) -> Option<&dyn crate::ports::Wakeup> {
        self.wakeup.as_ref().map(|w| w as &dyn crate::ports::Wakeup)
    }

    /// Where the alarm gates of deployments are read (CloudWatch DescribeAlarms).
    pub fn alarms(&self) -> &dyn crate::ports::Alarms {
        self.alarms
            .get_or_init(|| CloudWatchAlarms::new(aws_sdk_cloudwatch::Client::new(&self.config)))
    }

    /// What gates the deployments the deployer steps: the alarms, and the wake-up queue of their
    /// re-checks.
    pub fn gates(&self) -> crate::services::deployer::Gates<'_> {
        crate::services::deployer::Gates {
            alarms: Some(self.alarms()),
            wakeup: self.wakeup(),
        }
    }

    pub fn reconcile_queue(&self) -> Option<&dyn crate::ports::ReconcileQueue> {
        self.reconcile_queue
            .as_ref()
            .map(|q| q as &dyn crate::ports::ReconcileQueue)
    }
}

impl App {
    /// Reads `TABLE_NAME`, `WAKEUP_QUEUE_URL`, `RECONCILE_QUEUE_URL`, `MANAGED_CLUSTERS` and
    /// `GATE_ALARM_NAME_PREFIX` (when the template gives them) and the standard AWS variables.
    pub async fn from_env() -> Result<Self, BoxError> {
        let table = std::env::var("TABLE_NAME").map_err(|_| "TABLE_NAME is not set")?;
        let config = sdk_config().await?;
        Ok(Self {
            store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), table),
            cluster: EcsCluster::new(aws_sdk_ecs::Client::new(&config)),
            wakeup: std::env::var("WAKEUP_QUEUE_URL")
                .ok()
                .filter(|u| !u.is_empty())
                .map(|url| SqsWakeup::new(aws_sdk_sqs::Client::new(&config), url)),
            reconcile_queue: std::env::var("RECONCILE_QUEUE_URL")
                .ok()
                .filter(|u| !u.is_empty())
                .map(|url| SqsReconcileQueue::new(aws_sdk_sqs::Client::new(&config), url)),
            managed_clusters: crate::domain::ManagedClusters::from_env(),
            allowed_alarms: crate::domain::AllowedAlarms::from_env(),
            alarms: std::sync::OnceLock::new(),
            config,
        })
    }
}

/// The AWS configuration every function builds its clients from: the standard AWS variables, the
/// SDK's standard retries (5 attempts), and [`https_client`] with `SSL_CERT_FILE`'s certificates.
pub async fn sdk_config() -> Result<SdkConfig, BoxError> {
    let extra_roots = std::env::var_os("SSL_CERT_FILE")
        .filter(|f| !f.is_empty())
        .map(PathBuf::from);
    Ok(aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client(extra_roots.as_deref())?)
        // Throttling and transient errors: standard mode, exponential backoff with jitter.
        .retry_config(RetryConfig::standard().with_max_attempts(5))
        .load()
        .await)
}

/// The HTTPS client of every AWS call (the SDK clients', and the credential providers' too).
///
/// Why not the SDK's default client: it loads the platform's root certificates with
/// `rustls-native-certs` while the SDK clients are built, the bundle file and then every file of
/// the certificate directory (291 entries under /etc/ssl/certs on Debian), which was most of the
/// functions' init time (docs/benchmarks.md, "Where the init time goes"). This is the same client
/// as the default (the SDK's hyper 1 client, rustls on aws-lc, proxies from `HTTPS_PROXY` /
/// `NO_PROXY`) with another trust store: no native roots, Mozilla's root program compiled in
/// ([`public_roots`], which holds the Amazon and Starfield roots AWS endpoints chain to), so init
/// reads no file. Certificates are verified as before. `extra_roots` (from `SSL_CERT_FILE`) is a
/// PEM file whose certificates are trusted as well, e.g. the private CA of a proxy that inspects
/// TLS in front of VPC endpoints; it is read once, here, and a file that cannot be read or holds no
/// usable certificate is an error. The TLS configuration is built with the first request's
/// connection (see [`FirstRequest`]).
pub fn https_client(extra_roots: Option<&Path>) -> Result<SharedHttpClient, BoxError> {
    let pems: Vec<pem::Pem> = public_roots()
        .iter()
        .map(|cert| pem::Pem::new("CERTIFICATE", cert.as_ref()))
        .collect();
    let mut trust = TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(pem::encode_many(&pems));
    if let Some(path) = extra_roots {
        trust = trust.with_pem_certificate(read_roots(path)?);
    }
    let tls = TlsContext::builder().with_trust_store(trust).build()?;
    // As the SDK's default client (aws-smithy-runtime's `default_https_client`), plus the trust
    // store. `build_with_connector_fn` is hidden from the crate's docs but is what that default is
    // built with; the documented `build_https` would drop the proxy settings.
    let client = Builder::new().build_with_connector_fn(move |settings, components| {
        let mut connector = ConnectorBuilder::default()
            .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
            .tls_context(tls.clone())
            .proxy_config(ProxyConfig::from_env());
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.build()
    });
    Ok(SharedHttpClient::new(FirstRequest(client)))
}

/// The SDK's client less its eager connector: the SDK builds a connector (and so the TLS
/// configuration, every root certificate decoded and parsed) as each SDK client is built, then
/// drops it, "so that native certs load at client initialization time"; with no native roots
/// that is work thrown away, twice or three times per init. The connector the requests use is
/// built once, by the first request, and kept (the SDK's cache), as before.
#[derive(Debug)]
struct FirstRequest(SharedHttpClient);

impl HttpClient for FirstRequest {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn connector_metadata(
        &self,
    ) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

/// The root certificates trusted without `SSL_CERT_FILE`: Mozilla's, as the `webpki-root-certs`
/// crate compiles them in (update the crate to update them).
pub fn public_roots() -> &'static [CertificateDer<'static>] {
    webpki_root_certs::TLS_SERVER_ROOT_CERTS
}

/// The PEM file of extra roots, checked the way the TLS layer will load it (so a bad file fails
/// init with its name rather than a panic in the connector).
fn read_roots(path: &Path) -> Result<Vec<u8>, BoxError> {
    let bad = |why: String| format!("SSL_CERT_FILE {}: {why}", path.display());
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("not PEM: {e}")))?;
    if certs.is_empty() {
        return Err(bad("holds no CERTIFICATE".into()).into());
    }
    let mut store = rustls::RootCertStore::empty();
    for cert in certs {
        store
            .add(cert)
            .map_err(|e| bad(format!("not a usable root certificate: {e}")))?;
    }
    Ok(pem)
}

/// JSON logs when Lambda's log format is JSON (AWS_LAMBDA_LOG_FORMAT), filtered by RUST_LOG (the
/// template's LogLevel: directives like `info,shared=debug`), else AWS_LAMBDA_LOG_LEVEL, else
/// info; no ANSI colours, no timestamps (CloudWatch adds them). Each line carries the fields of
/// the spans it is in (environment, deployment, host, route).
pub fn init_tracing() {
    let level = log_filter(
        std::env::var("RUST_LOG").ok(),
        std::env::var("AWS_LAMBDA_LOG_LEVEL").ok(),
    );
    let filter = tracing_subscriber::EnvFilter::try_new(&level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .without_time()
        .with_target(false);
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .try_init()
    } else {
        builder.try_init()
    };
}

fn log_filter(rust_log: Option<String>, lambda_level: Option<String>) -> String {
    rust_log
        .filter(|f| !f.trim().is_empty())
        .or(lambda_level.filter(|l| !l.trim().is_empty()))
        .unwrap_or_else(|| "info".to_owned())
        .to_lowercase()
}

async fn boot() -> Result<&'static App, BoxError> {
    init_tracing();
    // Lives as long as the execution environment; leaking it lets handlers borrow it freely.
    Ok(Box::leak(Box::new(App::from_env().await?)))
}

/// An HTTP API function (API Gateway payload v2, also function URLs and cargo-lambda's watch).
pub async fn serve_api<F, Fut>(route: F) -> Result<(), BoxError>
where
    F: Fn(&'static App, ApiRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<ApiResponse>> + Send,
{
    let app = boot().await?;
    let route = &route;
    lambda_http::run(service_fn(move |req: lambda_http::Request| async move {
        let req = ApiRequest::from_lambda(&req);
        let span =
            tracing::info_span!("request", method = %req.method, path = %req.segments.join("/"));
        let (response, measured) = measure_api(route(app, req).instrument(span)).await;
        metrics::emit(&measured);
        Ok::<_, std::convert::Infallible>(response)
    }))
    .await
}

/// One API request: the handler's answer as Lambda returns it, and what it measured, with the
/// latency and 5xx of the handler itself (API Gateway's own are in AWS/ApiGateway).
pub async fn measure_api<Fut>(
    handler: Fut,
) -> (lambda_http::Response<lambda_http::Body>, metrics::Metrics)
where
    Fut: Future<Output = Result<ApiResponse>>,
{
    let started = std::time::Instant::now();
    let (result, mut measured) = metrics::scoped(handler).await;
    let response = to_lambda(result);
    let ms = started.elapsed().as_secs_f64() * 1e3;
    measured.add(metrics::API_LATENCY, metrics::Unit::Milliseconds, ms);
    if response.status().is_server_error() {
        measured.add(metrics::API_SERVER_ERRORS, metrics::Unit::Count, 1.0);
    }
    (response, measured)
}

/// An event-driven function: an error fails the invocation, so the trigger retries it.
pub async fn serve_events<E, O, F, Fut>(handler: F) -> Result<(), BoxError>
where
    E: DeserializeOwned + Send + 'static,
    O: Serialize,
    F: Fn(&'static App, E) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O>> + Send,
{
    let app = boot().await?;
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<E>| async move {
        let span = tracing::info_span!("invocation", request_id = %event.context.request_id);
        let (result, measured) =
            metrics::scoped(handler(app, event.payload).instrument(span)).await;
        metrics::emit(&measured);
        result.map_err(|e| {
            tracing::error!(error = %e, "invocation failed");
            BoxError::from(e.to_string())
        })
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::log_filter;

    #[test]
    fn the_templates_filter_wins_over_lambdas_level() {
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(
            log_filter(s("info,shared=DEBUG"), s("TRACE")),
            "info,shared=debug"
        );
        assert_eq!(log_filter(None, s("WARN")), "warn");
        assert_eq!(log_filter(s(" "), s("ERROR")), "error");
        assert_eq!(log_filter(None, None), "info");
    }
}
