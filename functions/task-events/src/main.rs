//! EventBridge "ECS Task State Change" (our group) → restart stopped daemons, stop duplicates.
use aws_lambda_events::eventbridge::EventBridgeEvent;
use shared::{runtime, services::task_events};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), runtime::BoxError> {
    runtime::serve_events(
        |app, event: EventBridgeEvent<task_events::TaskDetail>| async move {
            task_events::handle_with(&app.store, &app.cluster, app.wakeup(), &event.detail).await
        },
    )
    .await
}
