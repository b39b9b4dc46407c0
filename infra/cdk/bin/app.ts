#!/usr/bin/env node
// Example app: one stack holding the DaemonScheduler construct, with the template's outputs.
// Configured by context (all optional), e.g.
//   npx cdk deploy -c managedClusters=arn:aws:ecs:eu-west-1:123456789012:cluster/prod \
//                  -c alarmTopicArn=arn:aws:sns:eu-west-1:123456789012:ops -c tracing=true
// Keys: stackName, managedClusters, taskRoleArns (comma-separated ARNs), reconcileSchedule (an
// EventBridge expression such as "rate(10 minutes)"), reconcileConcurrency, logLevel, alarmTopicArn,
// memorySize, tracing, logRetentionDays, gateAlarmNamePrefix.
import { App, CfnOutput, Stack, Validations, aws_events as events, aws_logs as logs, aws_sns as sns } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { DaemonScheduler } from '../lib/daemon-scheduler';

const app = new App();
const ctx = (key: string): string | undefined => {
  const v = app.node.tryGetContext(key);
  return v === undefined || v === '' ? undefined : String(v);
};
const list = (key: string) => ctx(key)?.split(',').map((s) => s.trim()).filter(Boolean);

const stack = new Stack(app, ctx('stackName') ?? 'DaemonScheduler', {
  description: 'daemon-scheduler: one task of an environment on every eligible host of an ECS cluster (CDK)',
});
const alarmTopicArn = ctx('alarmTopicArn');
const schedule = ctx('reconcileSchedule');
const reconcileConcurrency = ctx('reconcileConcurrency');
const memorySize = ctx('memorySize');
const logRetentionDays = ctx('logRetentionDays');
const scheduler = new DaemonScheduler(stack, 'Scheduler', {
  managedClusters: list('managedClusters'),
  gateAlarmNamePrefix: ctx('gateAlarmNamePrefix'),
  taskRoleArns: list('taskRoleArns'),
  reconcileSchedule: schedule ? events.Schedule.expression(schedule) : undefined,
  reconcileConcurrency: reconcileConcurrency ? Number(reconcileConcurrency) : undefined,
  logLevel: ctx('logLevel'),
  alarmTopic: alarmTopicArn ? sns.Topic.fromTopicArn(stack, 'AlarmTopic', alarmTopicArn) : undefined,
  memorySize: memorySize ? Number(memorySize) : undefined,
  tracing: ctx('tracing') === 'true',
  logRetention: logRetentionDays ? (Number(logRetentionDays) as logs.RetentionDays) : undefined,
});

const out = (id: string, value: string, description?: string) => new CfnOutput(stack, id, { value, description });
out('ApiUrl', scheduler.apiUrl, 'Base URL of the REST API (append /v1/...); requests must be SigV4-signed');
out('TableName', scheduler.table.tableName, "The scheduler's DynamoDB table");
out('InstanceEventsDeadLetterQueueUrl', scheduler.instanceEventsDeadLetterQueue.queueUrl,
  'Unhandled container-instance events (daemonctl dlq replay --function <InstanceEventsFunctionName>)');
out('TaskEventsDeadLetterQueueUrl', scheduler.taskEventsDeadLetterQueue.queueUrl,
  'Unhandled task events (daemonctl dlq replay --function <TaskEventsFunctionName>)');
out('ReconcilerDeadLetterQueueUrl', scheduler.reconcilerDeadLetterQueue.queueUrl,
  'Failed scheduled reconciles (informational; the next run repeats the work)');
out('DeployerStreamFailureQueueUrl', scheduler.deployerStreamFailureQueue.queueUrl,
  'Stream batches the deployer failed (the reconciler steps their deployments)');
out('WakeupDeadLetterQueueUrl', scheduler.wakeupDeadLetterQueue.queueUrl,
  'Bake wake-ups that failed (the reconciler steps their deployments)');
out('ReconcileDeadLetterQueueUrl', scheduler.reconcileDeadLetterQueue.queueUrl,
  'Clusters whose reconcile failed three times in a row (the next scheduled run tries again)');
out('EnvironmentsApiFunctionName', scheduler.functions.environmentsApi.functionName);
out('DeploymentsApiFunctionName', scheduler.functions.deploymentsApi.functionName);
out('InstanceEventsFunctionName', scheduler.functions.instanceEvents.functionName);
out('TaskEventsFunctionName', scheduler.functions.taskEvents.functionName);
out('DeployerFunctionName', scheduler.functions.deployer.functionName);
out('ReconcilerFunctionName', scheduler.functions.reconciler.functionName);
out('DashboardUrl', scheduler.dashboardUrl, "The stack's CloudWatch dashboard (what each widget shows: docs/operations.md, Dashboard)");

// cdk-nag (v3 registers as a CDK policy-validation plugin): an unacknowledged finding fails synth.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
