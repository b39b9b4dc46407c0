//! The nouns of the product and their invariants; no I/O.
pub mod alarm_gate;
pub mod capacity;
pub mod deployment;
pub mod environment;
pub mod history;
pub mod host;
pub mod launch;
pub mod managed_clusters;
pub mod names;
pub mod order;
pub mod overrides;
pub mod placement;
pub mod query;
mod reservation;
pub mod resources;
pub mod revision;
pub mod slot;
pub mod spec;
pub mod target;
pub mod task;
pub mod update_strategy;

pub use alarm_gate::{AlarmState, AllowedAlarms};
pub use deployment::{Deployment, DeploymentStatus, DeploymentTransition, HostFailure};
pub use environment::{
    Deployed, Environment, EnvironmentStatus, Health, InstanceGroup, ReconcileFailure,
};
pub use host::{Attributes, Host, HostFacts, HostState, HostStatus};
pub use launch::{LaunchSpec, Refusal};
pub use managed_clusters::ManagedClusters;
pub use order::Order;
pub use placement::{Placement, PlacementConstraint, SizingRule, Verdict};
pub use revision::Revision;
pub use slot::{Slot, SlotKey, SlotTask, SurgedTask};
pub use spec::{DaemonSpec, SpecChanges};
pub use target::Target;
pub use task::{TaskObservation, TaskStatus};
pub use update_strategy::{Amount, UpdateStrategy};
