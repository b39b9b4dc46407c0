//! The nouns of the product and their invariants; no I/O.
pub mod deployment;
pub mod environment;
pub mod host;
pub mod managed_clusters;
pub mod names;
pub mod overrides;
pub mod query;
pub mod resources;
pub mod revision;
pub mod slot;
pub mod task;

pub use deployment::{Deployment, DeploymentStatus, HostFailure};
pub use environment::{Environment, EnvironmentStatus, Health, InstanceGroup};
pub use host::{Attributes, Host, HostFacts, HostStatus};
pub use managed_clusters::ManagedClusters;
pub use revision::{Amount, Revision, UpdateStrategy};
pub use slot::{Slot, SlotKey, SlotTask};
pub use task::{TaskObservation, TaskStatus};
