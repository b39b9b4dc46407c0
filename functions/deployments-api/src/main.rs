//! HTTP API: `/v1/environments/{name}/deployments[/{id}]`.
use shared::{runtime, services::deployments_api};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), runtime::BoxError> {
    runtime::serve_api(|app, req| async move { deployments_api::route(&app.store, &req).await })
        .await
}
