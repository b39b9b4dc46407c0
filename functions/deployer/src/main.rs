//! The table's stream → roll out deployments, close them, tear down deleted environments.
use aws_lambda_events::event::dynamodb::Event;
use shared::{runtime, services::deployer};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), runtime::BoxError> {
    runtime::serve_events(|app, event: Event| async move {
        deployer::handle(&app.store, &app.cluster, &event).await
    })
    .await
}
