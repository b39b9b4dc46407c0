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
/// Keys per `BatchGetItem`.
pub const BATCH_GET_ITEMS: usize = 100;
/// ECS: placement constraints per task or service.
pub const PLACEMENT_CONSTRAINTS_MAX: usize = 10;
/// ECS: characters of a cluster query language expression.
pub const EXPRESSION_MAX: usize = 2000;
/// Ours: sizing rules per revision (each is evaluated on every host event).
pub const SIZING_RULES_MAX: usize = 20;
/// Ours: environments one may depend on.
pub const DEPENDS_ON_MAX: usize = 10;
/// ECS: characters of a StartTask `overrides` document.
pub const OVERRIDES_MAX: usize = 8192;
/// Messages per SQS `SendMessageBatch`.
pub const SQS_SEND_BATCH: usize = 10;
/// Characters of an SQS FIFO `MessageGroupId`.
pub const SQS_GROUP_ID_MAX: usize = 128;
/// CloudWatch: names per `DescribeAlarms` call (`AlarmNames`).
pub const DESCRIBE_ALARMS_NAMES: usize = 100;
/// CloudWatch: characters of an alarm name.
pub const ALARM_NAME_MAX: usize = 255;
/// Ours: alarms one revision's update strategy may gate on (read together, in one call).
pub const GATE_ALARMS_MAX: usize = 10;
