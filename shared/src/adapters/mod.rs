//! Adapters at the edge: the ports implemented on AWS.
pub mod cloudwatch;
pub mod dynamo;
pub mod ecs;
pub mod ecs_task_definition;
pub mod sqs;

pub use cloudwatch::CloudWatchAlarms;
pub use dynamo::DynamoStore;
pub use ecs::EcsCluster;
pub use sqs::{SqsReconcileQueue, SqsWakeup};
