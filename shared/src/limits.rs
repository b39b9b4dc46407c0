//! Real AWS API limits. moto accepts more; AWS does not, so our own code chunks by these.

/// Container instances per `StartTask` call.
pub const START_TASK_INSTANCES: usize = 10;
/// Results per page of `ListContainerInstances` / `ListTasks`.
pub const LIST_PAGE: i32 = 100;
/// ARNs per `DescribeContainerInstances` / `DescribeTasks`.
pub const DESCRIBE_BATCH: usize = 100;
/// Items per `TransactWriteItems`.
pub const TRANSACT_ITEMS: usize = 100;
/// Items per `BatchWriteItem`.
pub const BATCH_WRITE_ITEMS: usize = 25;
/// ECS `startedBy` length.
pub const STARTED_BY_MAX: usize = 36;
