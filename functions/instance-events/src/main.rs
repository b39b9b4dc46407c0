//! EventBridge "ECS Container Instance State Change" → start on join, stop on drain.
use aws_lambda_events::eventbridge::EventBridgeEvent;
use shared::{runtime, services::instance_events};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), runtime::BoxError> {
    runtime::serve_events(
        |app, event: EventBridgeEvent<instance_events::InstanceDetail>| async move {
            instance_events::handle(&app.store, &app.cluster, &event.detail).await
        },
    )
    .await
}
