//! Use cases: each trigger's job, generic over the ports. Functions' `main`s only wire these up.
pub mod deployer;
pub mod deployments_api;
pub mod environments_api;
pub mod fleet;
pub mod history;
pub mod hosts_once;
pub mod instance_events;
pub mod on_host;
pub mod reconcile_queue;
pub mod reconciler;
pub mod rolling;
pub mod status;
pub mod task_events;
pub mod views;
