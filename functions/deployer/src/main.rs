//! The table's stream and the wake-up queue → step deployments, tear down deleted environments.
use shared::{runtime, services::deployer};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), runtime::BoxError> {
    runtime::serve_events(|app, trigger: deployer::Trigger| async move {
        deployer::handle_trigger(&app.store, &app.cluster, &trigger).await
    })
    .await
}
