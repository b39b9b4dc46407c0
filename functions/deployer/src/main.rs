//! The table's stream and the wake-up queue → step deployments (their alarm gates read and
//! re-checked), tear down deleted environments.
use shared::{runtime, services::deployer};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), runtime::BoxError> {
    runtime::serve_events(|app, trigger: deployer::Trigger| async move {
        deployer::handle_trigger_with(&app.store, &app.cluster, app.gates(), &trigger).await
    })
    .await
}
