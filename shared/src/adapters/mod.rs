//! Adapters at the edge: the ports implemented on AWS.
pub mod dynamo;
pub mod ecs;

pub use dynamo::DynamoStore;
pub use ecs::EcsCluster;
