//! Scheduled: put one message per cluster on the reconcile queue. From that queue: reconcile the
//! cluster (lost events, due restarts, drift, deployments and their alarm gates), each
//! environment on its own.
use shared::{executor::system_now_ms, runtime, services::reconcile_queue};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), runtime::BoxError> {
    runtime::serve_events(|app, trigger: reconcile_queue::Trigger| async move {
        reconcile_queue::handle_trigger_with(
            &app.store,
            &app.cluster,
            app.reconcile_queue(),
            Some(app.alarms()),
            &trigger,
            system_now_ms(),
        )
        .await
    })
    .await
}
