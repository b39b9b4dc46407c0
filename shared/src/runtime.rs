//! Start-up shared by every function: logging, configuration read once, the AWS clients with the
//! SDK's standard retries, and the Lambda runtime loop. Each `main` is one call to `serve_*`.

use std::future::Future;

use aws_config::retry::RetryConfig;
use aws_config::BehaviorVersion;
use lambda_runtime::{service_fn, LambdaEvent};
use serde::{de::DeserializeOwned, Serialize};

use crate::adapters::{DynamoStore, EcsCluster, SqsWakeup};
use crate::error::Result;
use crate::http::{to_lambda, ApiRequest, ApiResponse};

pub type BoxError = lambda_runtime::Error;

/// The ports, built once per execution environment and shared by every invocation.
pub struct App {
    pub store: DynamoStore,
    pub cluster: EcsCluster,
    /// Where the ends of bakes are scheduled (`WAKEUP_QUEUE_URL`; task-events has it).
    pub wakeup: Option<SqsWakeup>,
    /// The clusters environments may be created on (`MANAGED_CLUSTERS`; environments-api has it).
    pub managed_clusters: crate::domain::ManagedClusters,
}

impl App {
    pub fn wakeup(&self) -> Option<&dyn crate::ports::Wakeup> {
        self.wakeup.as_ref().map(|w| w as &dyn crate::ports::Wakeup)
    }
}

impl App {
    /// Reads `TABLE_NAME`, `WAKEUP_QUEUE_URL` (when the template gives it) and the standard AWS
    /// variables.
    pub async fn from_env() -> Result<Self, BoxError> {
        let table = std::env::var("TABLE_NAME").map_err(|_| "TABLE_NAME is not set")?;
        let config = aws_config::defaults(BehaviorVersion::latest())
            // Throttling and transient errors: standard mode, exponential backoff with jitter.
            .retry_config(RetryConfig::standard().with_max_attempts(5))
            .load()
            .await;
        Ok(Self {
            store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), table),
            cluster: EcsCluster::new(aws_sdk_ecs::Client::new(&config)),
            wakeup: std::env::var("WAKEUP_QUEUE_URL")
                .ok()
                .filter(|u| !u.is_empty())
                .map(|url| SqsWakeup::new(aws_sdk_sqs::Client::new(&config), url)),
            managed_clusters: crate::domain::ManagedClusters::from_env(),
        })
    }
}

/// JSON logs when Lambda's log format is JSON (AWS_LAMBDA_LOG_FORMAT), level from
/// AWS_LAMBDA_LOG_LEVEL or RUST_LOG (default info); no ANSI colours, no timestamps (CloudWatch adds them).
pub fn init_tracing() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".to_owned())
        .to_lowercase();
    let filter = tracing_subscriber::EnvFilter::try_new(&level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .without_time()
        .with_target(false);
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
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
        Ok::<_, std::convert::Infallible>(to_lambda(route(app, req).await))
    }))
    .await
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
        handler(app, event.payload).await.map_err(|e| {
            tracing::error!(error = %e, "invocation failed");
            BoxError::from(e.to_string())
        })
    }))
    .await
}
