//! Scheduled: converge every deployed environment with ECS (lost events, due restarts).
use shared::{executor::system_now_ms, runtime, services::reconciler};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), runtime::BoxError> {
    runtime::serve_events(|app, _scheduled: serde_json::Value| async move {
        reconciler::reconcile_all(&app.store, &app.cluster, system_now_ms()).await
    })
    .await
}
