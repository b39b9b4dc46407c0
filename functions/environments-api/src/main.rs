//! HTTP API: `/v1/ping`, `/v1/environments[/{name}]`.
use shared::{runtime, services::environments_api};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), runtime::BoxError> {
    runtime::serve_api(|app, req| async move {
        environments_api::route_with(
            &app.store,
            &app.cluster,
            &app.managed_clusters,
            &app.allowed_alarms,
            &req,
        )
        .await
    })
    .await
}
