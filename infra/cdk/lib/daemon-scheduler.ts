// DaemonScheduler: the stack of infra/template.yaml (the product's contract) as one CDK construct.
// Construct ids are the template's logical ids (Table, WakeupQueue, DeployerFunction, ...): the
// parity test (infra/cdk/test/test_parity.py) matches the two stacks by those names.
import * as fs from 'fs';
import * as path from 'path';
import {
  Arn, ArnFormat, Aws, Duration, RemovalPolicy, Stack, Validations,
  aws_apigateway as apigateway,
  aws_apigatewayv2 as apigw,
  aws_apigatewayv2_authorizers as authorizers,
  aws_apigatewayv2_integrations as integrations,
  aws_cloudwatch as cloudwatch,
  aws_cloudwatch_actions as cwActions,
  aws_dynamodb as dynamodb,
  aws_events as events,
  aws_events_targets as targets,
  aws_iam as iam,
  aws_lambda as lambda,
  aws_logs as logs,
  aws_sns as sns,
  aws_sqs as sqs,
} from 'aws-cdk-lib';
import { BundlingOptions, RustFunction } from 'cargo-lambda-cdk';
import { Construct } from 'constructs';

/** The six functions: crate = binary name in the Cargo workspace. */
export const FUNCTIONS = {
  environmentsApi: 'environments-api',
  deploymentsApi: 'deployments-api',
  instanceEvents: 'instance-events',
  taskEvents: 'task-events',
  deployer: 'deployer',
  reconciler: 'reconciler',
} as const;
export type FunctionKey = keyof typeof FUNCTIONS;

/**
 * Context key (or env var DAEMON_SCHEDULER_LAMBDA_DIR) naming a directory laid out like
 * `cargo lambda build --lambda-dir DIR` (DIR/<binary>/bootstrap, aarch64). When set, the functions
 * use those binaries instead of building them: for pipelines that built the workspace once.
 */
export const PREBUILT_LAMBDA_DIR_CONTEXT = 'daemon-scheduler:lambdaDir';

export interface DaemonSchedulerProps {
  /** ARNs of the ECS clusters the scheduler may manage (the `ecs:cluster` condition of its ECS
   * actions; creating an environment elsewhere is refused). @default every cluster of the account and region */
  readonly managedClusters?: string[];
  /** IAM roles the scheduler may pass to ECS as task / execution role. @default every role of the account */
  readonly taskRoleArns?: string[];
  /** How often the reconciler runs. @default rate(5 minutes) */
  readonly reconcileSchedule?: events.Schedule;
  /** How many clusters are reconciled at once (the reconcile queue's MaximumConcurrency, 2-1000).
   * @default 5 */
  readonly reconcileConcurrency?: number;
  /** RUST_LOG of every function. @default 'info' */
  readonly logLevel?: string;
  /** CloudWatch alarms deployments may be gated by (`updateStrategy.alarms`): names starting with
   * this prefix; DescribeAlarms is scoped to them and a revision naming another alarm is refused.
   * @default - every alarm of the account and region (DescribeAlarms on "*": composite alarms too) */
  readonly gateAlarmNamePrefix?: string;
  /** SNS topic the alarms notify (alarm and OK). @default - the alarms notify nobody */
  readonly alarmTopic?: sns.ITopic;
  /** Memory (MB) of every function. @default 128 */
  readonly memorySize?: number;
  /** X-Ray: true = Active, false = PassThrough. @default false */
  readonly tracing?: boolean;
  /** Retention of the functions' and the API's log groups. @default one year (365 days) */
  readonly logRetention?: logs.RetentionDays;
  /** The workspace's Cargo.toml. @default the repository root of this package (../../Cargo.toml) */
  readonly manifestPath?: string;
  /** Extra cargo-lambda-cdk bundling options (profile, cargoLambdaFlags, environment, ...). */
  readonly bundling?: BundlingOptions;
  /** Prebuilt binaries (DIR/<binary>/bootstrap) instead of a build; see PREBUILT_LAMBDA_DIR_CONTEXT.
   * @default - context `daemon-scheduler:lambdaDir`, else env DAEMON_SCHEDULER_LAMBDA_DIR, else build */
  readonly prebuiltLambdaDir?: string;
}

interface FunctionSpec {
  readonly id: string; // template logical id
  readonly logGroupId: string;
  readonly timeout: Duration;
  readonly description: string;
  readonly environment?: Record<string, string>;
}

const SPECS: Record<FunctionKey, FunctionSpec> = {
  environmentsApi: {
    id: 'EnvironmentsApiFunction', logGroupId: 'EnvironmentsApiLogGroup', timeout: Duration.seconds(30),
    description: 'REST: /v1/ping, /v1/environments (create, list, get, update, delete, revisions, status)',
  },
  deploymentsApi: {
    id: 'DeploymentsApiFunction', logGroupId: 'DeploymentsApiLogGroup', timeout: Duration.seconds(30),
    description: 'REST: /v1/environments/{name}/deployments (create, list, get, hosts, cancel, promote, pause, resume)',
  },
  instanceEvents: {
    id: 'InstanceEventsFunction', logGroupId: 'InstanceEventsLogGroup', timeout: Duration.seconds(30),
    description: 'Container instance joins / drains / leaves -> start, stop, record the host',
  },
  taskEvents: {
    id: 'TaskEventsFunction', logGroupId: 'TaskEventsLogGroup', timeout: Duration.seconds(30),
    description: 'Our tasks start / run / stop -> record them, restart stopped ones, stop duplicates',
  },
  deployer: {
    id: 'DeployerFunction', logGroupId: 'DeployerLogGroup', timeout: Duration.seconds(300),
    description: 'Steps a deployment (roll out, replace, close, roll back), tears down a deleted environment',
  },
  reconciler: {
    id: 'ReconcilerFunction', logGroupId: 'ReconcilerLogGroup', timeout: Duration.seconds(300),
    description: 'Converges every deployed environment on a schedule',
  },
};

// The HTTP API's 14 routes (Blox v0.3 paths under /v1).
const ROUTES: ReadonlyArray<[FunctionKey, apigw.HttpMethod, string]> = [
  ['environmentsApi', apigw.HttpMethod.GET, '/v1/ping'],
  ['environmentsApi', apigw.HttpMethod.POST, '/v1/environments'],
  ['environmentsApi', apigw.HttpMethod.GET, '/v1/environments'],
  ['environmentsApi', apigw.HttpMethod.GET, '/v1/environments/{name}'],
  ['environmentsApi', apigw.HttpMethod.PUT, '/v1/environments/{name}'],
  ['environmentsApi', apigw.HttpMethod.DELETE, '/v1/environments/{name}'],
  ['environmentsApi', apigw.HttpMethod.GET, '/v1/environments/{name}/revisions'],
  ['environmentsApi', apigw.HttpMethod.GET, '/v1/environments/{name}/revisions/{number}'],
  ['environmentsApi', apigw.HttpMethod.GET, '/v1/environments/{name}/status'],
  ['deploymentsApi', apigw.HttpMethod.POST, '/v1/environments/{name}/deployments'],
  ['deploymentsApi', apigw.HttpMethod.GET, '/v1/environments/{name}/deployments'],
  ['deploymentsApi', apigw.HttpMethod.GET, '/v1/environments/{name}/deployments/{id}'],
  ['deploymentsApi', apigw.HttpMethod.GET, '/v1/environments/{name}/deployments/{id}/hosts'],
  ['deploymentsApi', apigw.HttpMethod.POST, '/v1/environments/{name}/deployments/{id}/cancel'],
  ['deploymentsApi', apigw.HttpMethod.POST, '/v1/environments/{name}/deployments/{id}/promote'],
  ['deploymentsApi', apigw.HttpMethod.POST, '/v1/environments/{name}/deployments/{id}/pause'],
  ['deploymentsApi', apigw.HttpMethod.POST, '/v1/environments/{name}/deployments/{id}/resume'],
];

const ACCESS_LOG_FORMAT = '{"requestId":"$context.requestId","ip":"$context.identity.sourceIp","caller":"$context.identity.caller","user":"$context.identity.userArn","time":"$context.requestTime","routeKey":"$context.routeKey","status":"$context.status","latencyMs":"$context.responseLatency","integrationError":"$context.integrationErrorMessage"}';

// EventBridge keeps retrying delivery for an hour (185 attempts is its maximum).
const EVENT_RETRIES = { retryAttempts: 185, maxEventAge: Duration.hours(1) };

// A destination / on-failure queue given by ARN only: the send permission is the explicit
// sqs:SendMessage statement of the template, not CDK's grantSendMessages (which adds
// GetQueueAttributes and GetQueueUrl that the template does not grant).
const queueDestination = (q: sqs.IQueue): lambda.IDestination & lambda.IEventSourceDlq => ({
  bind: () => ({ destination: q.queueArn }),
});

const isAarch64Elf = (file: string): boolean => {
  const fd = fs.openSync(file, 'r');
  try {
    const header = Buffer.alloc(20);
    fs.readSync(fd, header, 0, 20, 0);
    // ELF magic, 64-bit little endian, e_machine (offset 18) = EM_AARCH64 (183).
    return header.readUInt32BE(0) === 0x7f454c46 && header[4] === 2 && header.readUInt16LE(18) === 183;
  } finally {
    fs.closeSync(fd);
  }
};

export class DaemonScheduler extends Construct {
  public readonly table: dynamodb.Table;
  public readonly httpApi: apigw.HttpApi;
  /** Base URL of the REST API (append /v1/...); requests must be SigV4-signed. */
  public readonly apiUrl: string;
  public readonly functions: Record<FunctionKey, lambda.Function>;
  public readonly wakeupQueue: sqs.Queue;
  public readonly wakeupDeadLetterQueue: sqs.Queue;
  public readonly instanceEventsDeadLetterQueue: sqs.Queue;
  public readonly taskEventsDeadLetterQueue: sqs.Queue;
  public readonly reconcilerDeadLetterQueue: sqs.Queue;
  /** One message per cluster from the scheduled run; FIFO, grouped by cluster. */
  public readonly reconcileQueue: sqs.Queue;
  public readonly reconcileDeadLetterQueue: sqs.Queue;
  public readonly deployerStreamFailureQueue: sqs.Queue;
  public readonly alarms: cloudwatch.Alarm[] = [];
  /** The stack's CloudWatch dashboard (docs/operations.md, "Dashboard"). */
  public readonly dashboard: cloudwatch.CfnDashboard;
  /** Its console URL. */
  public readonly dashboardUrl: string;

  constructor(scope: Construct, id: string, props: DaemonSchedulerProps = {}) {
    super(scope, id);
    const stack = Stack.of(this);
    const arn = (service: string, resource: string, resourceName: string, region?: string) =>
      Arn.format({ service, resource, resourceName, region, arnFormat: ArnFormat.SLASH_RESOURCE_NAME }, stack);
    const anyCluster = arn('ecs', 'cluster', '*');
    const clusters = props.managedClusters?.length ? props.managedClusters : [anyCluster];
    const taskRoles = props.taskRoleArns?.length ? props.taskRoleArns : [arn('iam', 'role', '*', '')];
    const clusterCondition = { ArnLike: { 'ecs:cluster': clusters.length === 1 ? clusters[0] : clusters } };

    // ---- State: one table (key design: docs/design.md). The scheduler's only state: retained.
    this.table = new dynamodb.Table(this, 'Table', {
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      stream: dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
      timeToLiveAttribute: 'expiresAt',
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    for (const [indexName, n] of [['by-cluster', 1], ['by-kind', 2]] as const) {
      this.table.addGlobalSecondaryIndex({
        indexName,
        partitionKey: { name: `gsi${n}pk`, type: dynamodb.AttributeType.STRING },
        sortKey: { name: `gsi${n}sk`, type: dynamodb.AttributeType.STRING },
        projectionType: dynamodb.ProjectionType.ALL,
      });
    }
    const tableArns = [this.table.tableArn, `${this.table.tableArn}/index/*`];

    // ---- Queues. enforceSSL on every queue (cdk-nag SQS4); the template has it on the
    // EventBridge dead-letter queues only.
    const queue = (qid: string, extra: Partial<sqs.QueueProps> = {}) => new sqs.Queue(this, qid, {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
      ...extra,
    });
    this.wakeupDeadLetterQueue = queue('WakeupDeadLetterQueue');
    // Six times the deployer's timeout, as Lambda advises for SQS event sources.
    this.wakeupQueue = queue('WakeupQueue', {
      visibilityTimeout: Duration.seconds(1800),
      retentionPeriod: Duration.days(1),
      deadLetterQueue: { queue: this.wakeupDeadLetterQueue, maxReceiveCount: 5 },
    });
    this.instanceEventsDeadLetterQueue = queue('InstanceEventsDeadLetterQueue');
    this.taskEventsDeadLetterQueue = queue('TaskEventsDeadLetterQueue');
    this.reconcilerDeadLetterQueue = queue('ReconcilerDeadLetterQueue');
    // The scheduled reconcile's fan-out: FIFO with the cluster as message group (one reconcile of
    // a cluster at a time), deduplicated by content (a run delivered twice enqueues once).
    this.reconcileDeadLetterQueue = queue('ReconcileDeadLetterQueue', { fifo: true });
    this.reconcileQueue = queue('ReconcileQueue', {
      fifo: true,
      contentBasedDeduplication: true,
      // The reconciler's timeout and a minute (template: why not six times it).
      visibilityTimeout: Duration.seconds(360),
      retentionPeriod: Duration.hours(1),
      deadLetterQueue: { queue: this.reconcileDeadLetterQueue, maxReceiveCount: 3 },
    });
    this.deployerStreamFailureQueue = queue('DeployerStreamFailureQueue');
    for (const q of [this.instanceEventsDeadLetterQueue, this.taskEventsDeadLetterQueue,
      this.reconcilerDeadLetterQueue, this.deployerStreamFailureQueue, this.reconcileDeadLetterQueue]) {
      Validations.of(q).acknowledge({
        id: 'AwsSolutions-SQS3',
        reason: 'This queue is itself a dead-letter queue (EventBridge target DLQ / Lambda on-failure destination); a DLQ of a DLQ would only move the problem.',
      });
    }

    // ---- Functions: one role each, holding only that function's statements.
    const prebuiltDir = props.prebuiltLambdaDir
      ?? this.node.tryGetContext(PREBUILT_LAMBDA_DIR_CONTEXT)
      ?? process.env.DAEMON_SCHEDULER_LAMBDA_DIR;
    const manifestPath = props.manifestPath ?? path.join(__dirname, '..', '..', '..', 'Cargo.toml');
    const logRetention = props.logRetention ?? logs.RetentionDays.ONE_YEAR;
    const fns = {} as Record<FunctionKey, lambda.Function>;
    const roles = {} as Record<FunctionKey, iam.Role>;
    for (const key of Object.keys(SPECS) as FunctionKey[]) {
      const spec = SPECS[key];
      const binary = FUNCTIONS[key];
      const logGroup = new logs.LogGroup(this, spec.logGroupId, {
        logGroupName: `/daemon-scheduler/${Aws.STACK_NAME}/${binary}`,
        retention: logRetention,
        removalPolicy: RemovalPolicy.DESTROY,
      });
      const role = new iam.Role(this, `${spec.id.replace(/Function$/, '')}Role`, {
        assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      });
      // The log group exists, so no logs:CreateLogGroup (AWSLambdaBasicExecutionRole's third action).
      role.addToPrincipalPolicy(new iam.PolicyStatement({
        sid: 'Logs', actions: ['logs:CreateLogStream', 'logs:PutLogEvents'], resources: [logGroup.logGroupArn],
      }));
      const common = {
        description: spec.description,
        architecture: lambda.Architecture.ARM_64,
        memorySize: props.memorySize ?? 128,
        timeout: spec.timeout,
        // Active adds the X-Ray statement to the role; PassThrough is set below without it.
        tracing: props.tracing ? lambda.Tracing.ACTIVE : undefined,
        role,
        logGroup,
        // JSON lines; RUST_LOG filters, so Lambda passes every application level through.
        loggingFormat: lambda.LoggingFormat.JSON,
        applicationLogLevelV2: lambda.ApplicationLogLevel.TRACE,
        systemLogLevelV2: lambda.SystemLogLevel.WARN,
        environment: { TABLE_NAME: this.table.tableName, RUST_LOG: props.logLevel ?? 'info' },
      };
      let fn: lambda.Function;
      if (prebuiltDir) {
        const bootstrap = path.resolve(prebuiltDir, binary, 'bootstrap');
        if (!fs.existsSync(bootstrap) || !isAarch64Elf(bootstrap)) {
          throw new Error(`${bootstrap}: no aarch64 Lambda binary (build with: cargo lambda build --release --arm64)`);
        }
        fn = new lambda.Function(this, spec.id, {
          ...common,
          runtime: lambda.Runtime.PROVIDED_AL2023,
          handler: 'bootstrap',
          code: lambda.Code.fromAsset(path.dirname(bootstrap)),
        });
      } else {
        fn = new RustFunction(this, spec.id, {
          ...common,
          manifestPath,
          binaryName: binary,
          runtime: 'provided.al2023',
          bundling: { ...props.bundling, architecture: lambda.Architecture.ARM_64 },
        });
      }
      if (!props.tracing) {
        (fn.node.defaultChild as lambda.CfnFunction).tracingConfig = { mode: 'PassThrough' };
      }
      fns[key] = fn;
      roles[key] = role;
    }
    this.functions = fns;
    fns.environmentsApi.addEnvironment('MANAGED_CLUSTERS', (props.managedClusters ?? []).join(','));
    fns.environmentsApi.addEnvironment('GATE_ALARM_NAME_PREFIX', props.gateAlarmNamePrefix ?? '');
    fns.taskEvents.addEnvironment('WAKEUP_QUEUE_URL', this.wakeupQueue.queueUrl);
    // The deployer's own wake-ups: the re-checks of a gated deployment's alarms.
    fns.deployer.addEnvironment('WAKEUP_QUEUE_URL', this.wakeupQueue.queueUrl);
    fns.reconciler.addEnvironment('RECONCILE_QUEUE_URL', this.reconcileQueue.queueUrl);

    // ---- Permissions, statement by statement as in the template (same Sids).
    // Which actions each role holds on each wildcard resource: the cdk-nag acknowledgements at
    // the end are derived from these, so each one names what it covers and why.
    const wildcards = {} as Record<FunctionKey, Map<string, Set<string>>>;
    const allow = (key: FunctionKey, sid: string, actions: string[], resources: string[], conditions?: Record<string, unknown>) => {
      roles[key].addToPrincipalPolicy(new iam.PolicyStatement({ sid, actions, resources, conditions }));
      for (const r of resources.filter((r) => r.includes('*'))) {
        const m = (wildcards[key] ??= new Map());
        if (!m.has(r)) m.set(r, new Set());
        actions.forEach((a) => m.get(r)!.add(a));
      }
    };
    const ecsTaskDefinitions = arn('ecs', 'task-definition', '*');
    const ecsTasks = arn('ecs', 'task', '*');
    const ecsContainerInstances = arn('ecs', 'container-instance', '*');
    const startStop = (key: FunctionKey) => {
      allow(key, 'StartTask', ['ecs:StartTask'], [ecsTaskDefinitions], clusterCondition);
      allow(key, 'StopTask', ['ecs:StopTask'], [ecsTasks], clusterCondition);
      allow(key, 'PassTaskRoles', ['iam:PassRole'], taskRoles,
        { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } });
    };
    const readHosts = (key: FunctionKey) => {
      allow(key, 'ListContainerInstances', ['ecs:ListContainerInstances'], clusters);
      allow(key, 'DescribeContainerInstances', ['ecs:DescribeContainerInstances'], [ecsContainerInstances], clusterCondition);
    };
    const readTasks = (key: FunctionKey) => {
      // ListTasks is authorized against a container instance even when it lists a whole
      // cluster: Resource "*", scoped by the cluster condition.
      allow(key, 'ListTasks', ['ecs:ListTasks'], ['*'], clusterCondition);
      allow(key, 'DescribeTasks', ['ecs:DescribeTasks'], [ecsTasks], clusterCondition);
    };

    allow('environmentsApi', 'EnvironmentRecords',
      ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:ConditionCheckItem', 'dynamodb:Query'], tableArns);
    allow('environmentsApi', 'DescribeClusters', ['ecs:DescribeClusters'], [anyCluster]);
    // DescribeTaskDefinition supports no resource-level permissions.
    allow('environmentsApi', 'DescribeTaskDefinition', ['ecs:DescribeTaskDefinition'], ['*']);

    allow('deploymentsApi', 'DeploymentRecords',
      ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:ConditionCheckItem'], tableArns);

    allow('instanceEvents', 'SlotRecords',
      ['dynamodb:Query', 'dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem',
        'dynamodb:ConditionCheckItem'], tableArns);
    readTasks('instanceEvents');
    startStop('instanceEvents');

    // The slot and its environment, then conditional writes; the cluster's environments (an
    // index Query) only where daemons on the host depend on each other.
    allow('taskEvents', 'SlotRecords',
      ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:Query', 'dynamodb:PutItem', 'dynamodb:UpdateItem',
        'dynamodb:ConditionCheckItem'], tableArns);
    startStop('taskEvents');
    allow('taskEvents', 'Wakeups', ['sqs:SendMessage'], [this.wakeupQueue.queueArn]);

    allow('deployer', 'StreamFailures', ['sqs:SendMessage'], [this.deployerStreamFailureQueue.queueArn]);
    allow('deployer', 'Records',
      ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem',
        'dynamodb:Query', 'dynamodb:BatchWriteItem', 'dynamodb:ConditionCheckItem'], tableArns);
    readHosts('deployer');
    readTasks('deployer');
    startStop('deployer');

    // Alarm gates, read while a gated deployment is in progress. DescribeAlarms is authorized per
    // alarm, so a prefix scopes it; CloudWatch returns composite alarms only to a permission on
    // "*", the default.
    const gateAlarms = props.gateAlarmNamePrefix
      ? Arn.format({ service: 'cloudwatch', resource: 'alarm', resourceName: `${props.gateAlarmNamePrefix}*`,
        arnFormat: ArnFormat.COLON_RESOURCE_NAME }, stack)
      : '*';
    allow('deployer', 'GateRechecks', ['sqs:SendMessage'], [this.wakeupQueue.queueArn]);
    allow('deployer', 'AlarmGates', ['cloudwatch:DescribeAlarms'], [gateAlarms]);
    allow('reconciler', 'AlarmGates', ['cloudwatch:DescribeAlarms'], [gateAlarms]);

    allow('reconciler', 'Records',
      ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:Query', 'dynamodb:ConditionCheckItem'], tableArns);
    readHosts('reconciler');
    readTasks('reconciler');
    startStop('reconciler');
    // A deleted cluster lists nothing, as an empty one would: one read a run tells them apart.
    allow('reconciler', 'DescribeClusters', ['ecs:DescribeClusters'], clusters);
    // The scheduled run's one message per cluster (SendMessageBatch is authorised as SendMessage),
    // and the queue, read by the event source mapping.
    allow('reconciler', 'FanOut', ['sqs:SendMessage'], [this.reconcileQueue.queueArn]);
    allow('reconciler', 'ReconcileQueue',
      ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility', 'sqs:GetQueueAttributes'],
      [this.reconcileQueue.queueArn]);

    // ---- REST API, IAM (SigV4) auth on every route.
    const accessLogGroup = new logs.LogGroup(this, 'ApiAccessLogGroup', {
      logGroupName: `/daemon-scheduler/${Aws.STACK_NAME}/api-access`,
      retention: logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.httpApi = new apigw.HttpApi(this, 'HttpApi', {
      defaultAuthorizer: new authorizers.HttpIamAuthorizer(),
      createDefaultStage: false,
    });
    new apigw.HttpStage(this, 'HttpApiApiGatewayDefaultStage', {
      httpApi: this.httpApi,
      stageName: '$default',
      autoDeploy: true,
      accessLogSettings: {
        destination: new apigw.LogGroupLogDestination(accessLogGroup),
        format: apigateway.AccessLogFormat.custom(ACCESS_LOG_FORMAT),
      },
    });
    this.apiUrl = `https://${this.httpApi.apiId}.execute-api.${Aws.REGION}.${Aws.URL_SUFFIX}`;
    const apiIntegrations: Partial<Record<FunctionKey, integrations.HttpLambdaIntegration>> = {};
    for (const [key, method, routePath] of ROUTES) {
      apiIntegrations[key] ??= new integrations.HttpLambdaIntegration(`${SPECS[key].id}Integration`, fns[key]);
      this.httpApi.addRoutes({ path: routePath, methods: [method], integration: apiIntegrations[key]! });
    }

    // ---- ECS events -> instance-events / task-events; undeliverable events and failed
    // invocations land in the function's dead-letter queue (daemonctl dlq replay).
    new events.Rule(this, 'InstanceEventsFunctionContainerInstanceStateChange', {
      eventPattern: { source: ['aws.ecs'], detailType: ['ECS Container Instance State Change'] },
      targets: [new targets.LambdaFunction(fns.instanceEvents, {
        ...EVENT_RETRIES, deadLetterQueue: this.instanceEventsDeadLetterQueue,
      })],
    });
    // Only the tasks we started (group daemon-scheduler:<environment>), only the states we act on.
    new events.Rule(this, 'TaskEventsFunctionTaskStateChange', {
      eventPattern: {
        source: ['aws.ecs'],
        detailType: ['ECS Task State Change'],
        detail: { group: [{ prefix: 'daemon-scheduler:' }], lastStatus: ['RUNNING', 'STOPPED'] },
      },
      targets: [new targets.LambdaFunction(fns.taskEvents, {
        ...EVENT_RETRIES, deadLetterQueue: this.taskEventsDeadLetterQueue,
      })],
    });
    const asyncFailures = (key: FunctionKey, q: sqs.IQueue, retryAttempts: number, maxEventAge?: Duration) => {
      fns[key].configureAsyncInvoke({ retryAttempts, maxEventAge, onFailure: queueDestination(q) });
      allow(key, 'FailedInvocations', ['sqs:SendMessage'], [q.queueArn]);
    };
    asyncFailures('instanceEvents', this.instanceEventsDeadLetterQueue, 2, Duration.hours(1));
    asyncFailures('taskEvents', this.taskEventsDeadLetterQueue, 2, Duration.hours(1));

    // ---- The deployer: the table's stream (deployment records, environments turning
    // `deleting`) and the bake wake-ups.
    new lambda.EventSourceMapping(this, 'DeployerFunctionTableStream', {
      target: fns.deployer,
      eventSourceArn: this.table.tableStreamArn!,
      startingPosition: lambda.StartingPosition.TRIM_HORIZON,
      batchSize: 100,
      maxBatchingWindow: Duration.seconds(1),
      bisectBatchOnError: true,
      retryAttempts: 10,
      onFailure: queueDestination(this.deployerStreamFailureQueue),
      filters: [
        { pattern: '{"dynamodb": {"Keys": {"sk": {"S": [{"prefix": "DEP#"}]}}}}' },
        { pattern: '{"dynamodb": {"NewImage": {"status": {"S": ["deleting"]}}, "Keys": {"sk": {"S": ["ENV"]}}}}' },
      ],
    });
    // The table's stream, read by the event source mapping (CDK's own grantStreamRead would put
    // ListStreams on "*").
    allow('deployer', 'TableStream',
      ['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator', 'dynamodb:ListStreams'],
      [this.table.tableStreamArn!]);
    new lambda.EventSourceMapping(this, 'DeployerFunctionWakeups', {
      target: fns.deployer,
      eventSourceArn: this.wakeupQueue.queueArn,
      batchSize: 10,
    });
    // The wake-up queue, read by the event source mapping.
    allow('deployer', 'WakeupQueue',
      ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility', 'sqs:GetQueueAttributes'],
      [this.wakeupQueue.queueArn]);

    // ---- The reconciler, on a schedule; a failed run is not retried (the next one does the work).
    new events.Rule(this, 'ReconcilerFunctionReconcile', {
      schedule: props.reconcileSchedule ?? events.Schedule.rate(Duration.minutes(5)),
      targets: [new targets.LambdaFunction(fns.reconciler, {
        retryAttempts: 2, maxEventAge: Duration.minutes(5), deadLetterQueue: this.reconcilerDeadLetterQueue,
      })],
    });
    asyncFailures('reconciler', this.reconcilerDeadLetterQueue, 0);
    // One message per cluster, one cluster per invocation, at most reconcileConcurrency at once.
    new lambda.EventSourceMapping(this, 'ReconcilerFunctionClusters', {
      target: fns.reconciler,
      eventSourceArn: this.reconcileQueue.queueArn,
      batchSize: 1,
      maxConcurrency: props.reconcileConcurrency ?? 5,
    });

    // ---- Alarms (what each means and what to do: docs/operations.md).
    const alarm = (aid: string, description: string, metric: cloudwatch.IMetric) => {
      const a = new cloudwatch.Alarm(this, aid, {
        alarmDescription: `daemon-scheduler: ${description}`,
        metric,
        evaluationPeriods: 1,
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      if (props.alarmTopic) {
        a.addAlarmAction(new cwActions.SnsAction(props.alarmTopic));
        a.addOkAction(new cwActions.SnsAction(props.alarmTopic));
      }
      this.alarms.push(a);
    };
    const period = Duration.minutes(5);
    const queueAlarms: Array<[string, sqs.Queue, string]> = [
      ['InstanceEventsDeadLetterQueue', this.instanceEventsDeadLetterQueue, 'container-instance events that were not handled'],
      ['TaskEventsDeadLetterQueue', this.taskEventsDeadLetterQueue, 'task events that were not handled'],
      ['ReconcilerDeadLetterQueue', this.reconcilerDeadLetterQueue, 'scheduled reconciles that failed'],
      ['DeployerStreamFailureQueue', this.deployerStreamFailureQueue, 'deployer stream batches that failed every retry'],
      ['WakeupDeadLetterQueue', this.wakeupDeadLetterQueue, 'bake wake-ups that failed five times'],
      ['ReconcileDeadLetterQueue', this.reconcileDeadLetterQueue, "clusters whose reconcile failed three times in a row"],
    ];
    for (const [qid, q, what] of queueAlarms) {
      alarm(`${qid}Alarm`, `${what} are waiting in ${qid} (replay: docs/operations.md)`,
        q.metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum', period }));
    }
    for (const key of Object.keys(SPECS) as FunctionKey[]) {
      const name = SPECS[key].id.replace(/Function$/, '');
      alarm(`${name}ErrorsAlarm`, `${SPECS[key].id} invocations failed`, fns[key].metricErrors({ statistic: 'Sum', period }));
      alarm(`${name}ThrottlesAlarm`, `${SPECS[key].id} invocations were throttled`, fns[key].metricThrottles({ statistic: 'Sum', period }));
    }
    // Emitted by the functions as embedded metrics (namespace DaemonScheduler): the total of every
    // environment, without dimensions (each environment's share is by Environment; the dashboard).
    alarm('DeploymentsFailedAlarm', 'a deployment failed (circuit breaker or ECS refusals); see GET /v1/environments/{name}/status',
      new cloudwatch.Metric({ namespace: 'DaemonScheduler', metricName: 'DeploymentsFailed', statistic: 'Sum', period }));
    // Two runs in a row could not repair some environment; one throttled run alone does not page.
    alarm('ReconcileFailuresAlarm', 'the reconciler cannot repair an environment (deleted cluster, denied call, AWS failing); GET /v1/environments/{name} shows reconcileFailure (docs/operations.md)',
      new cloudwatch.Metric({ namespace: 'DaemonScheduler', metricName: 'ReconcileFailures', statistic: 'Sum', period }));
    const reconcileFailures = this.alarms[this.alarms.length - 1].node.defaultChild as cloudwatch.CfnAlarm;
    reconcileFailures.evaluationPeriods = 2;
    reconcileFailures.datapointsToAlarm = 2;

    // ---- The dashboard, widget for widget the template's (its body is compared by the parity
    // test; the template's, against the metrics the code emits, by tests/tests/template_contract.rs).
    const search = (metric: string, stat: string) =>
      `SEARCH('{DaemonScheduler,Environment} MetricName="${metric}"', '${stat}', 300)`;
    const byEnvironment = "${PROP('Dim.Environment')}"; // a CloudWatch dynamic label
    const graph = (x: number, y: number, width: number, title: string, props: Record<string, unknown>,
      metrics: unknown[][]) => ({
      type: 'metric', x, y, width, height: 6,
      properties: { title, region: Aws.REGION, view: 'timeSeries', stacked: false, period: 300, ...props, metrics },
    });
    const perEnvironment = (x: number, y: number, title: string, id: string, metric: string, stat = 'Sum') =>
      graph(x, y, 8, title, { stat }, [[{ id, expression: search(metric, stat), label: byEnvironment }]]);
    const perFunction = (x: number, title: string, metric: string, stat: string) =>
      graph(x, 23, 8, title, { stat }, (Object.keys(SPECS) as FunctionKey[]).map((key) =>
        ['AWS/Lambda', metric, 'FunctionName', fns[key].functionName, { label: FUNCTIONS[key] }]));
    const apiId = this.httpApi.apiId;
    const body = {
      start: '-PT6H',
      widgets: [
        { type: 'text', x: 0, y: 0, width: 24, height: 2, properties: {
          markdown: `## daemon-scheduler: ${Aws.STACK_NAME}\nPer-environment graphs draw every environment that reported in the time range (SEARCH on the \`Environment\` dimension). How to read each widget: docs/operations.md, *Dashboard*; what to do about an alarm: docs/operations.md, *Alarms*.`,
        } },
        { type: 'alarm', x: 0, y: 2, width: 24, height: 3, properties: {
          title: 'Alarms', alarms: this.alarms.map((a) => a.alarmArn),
        } },
        perEnvironment(0, 5, 'Tasks started, by environment', 'started', 'TasksStarted'),
        perEnvironment(8, 5, 'Tasks stopped, by environment', 'stopped', 'TasksStopped'),
        perEnvironment(16, 5, 'Task starts ECS refused, by environment', 'refused', 'TaskStartFailures'),
        perEnvironment(0, 11, 'Drift repaired by the reconciler, by environment', 'drift', 'DriftRepaired'),
        graph(8, 11, 8, 'Deployments completed and failed, by environment', { stat: 'Sum' }, [
          [{ id: 'completed', expression: search('DeploymentsCompleted', 'Sum'), label: `completed ${byEnvironment}` }],
          [{ id: 'failed', expression: search('DeploymentsFailed', 'Sum'), label: `failed ${byEnvironment}` }],
          ['DaemonScheduler', 'DeploymentsFailed',
            { id: 'failedTotal', stat: 'Sum', label: 'failed, all environments (DeploymentsFailedAlarm)' }],
        ]),
        perEnvironment(16, 11, 'Longest deployment (ms), by environment', 'duration', 'DeploymentDuration', 'Maximum'),
        graph(0, 17, 12, 'API latency (ms): handler and API Gateway, p50 and p99', {}, [
          ['DaemonScheduler', 'ApiLatency', { stat: 'p50', label: 'handler p50' }],
          ['DaemonScheduler', 'ApiLatency', { stat: 'p99', label: 'handler p99' }],
          ['AWS/ApiGateway', 'Latency', 'ApiId', apiId, { stat: 'p50', label: 'API Gateway p50' }],
          ['AWS/ApiGateway', 'Latency', 'ApiId', apiId, { stat: 'p99', label: 'API Gateway p99' }],
        ]),
        graph(12, 17, 12, 'API 5xx: handler and API Gateway', { stat: 'Sum' }, [
          ['DaemonScheduler', 'ApiServerErrors', { label: 'handler 5xx' }],
          ['AWS/ApiGateway', '5xx', 'ApiId', apiId, { label: 'API Gateway 5xx' }],
        ]),
        perFunction(0, 'Function errors', 'Errors', 'Sum'),
        perFunction(8, 'Function throttles', 'Throttles', 'Sum'),
        perFunction(16, 'Function duration (ms), p99', 'Duration', 'p99'),
        graph(0, 29, 24, 'Dead-letter queues: messages waiting (replay: docs/operations.md)', { stat: 'Maximum' },
          queueAlarms.map(([qid, q]) => ['AWS/SQS', 'ApproximateNumberOfMessagesVisible', 'QueueName', q.queueName, { label: qid }])),
      ],
    };
    this.dashboard = new cloudwatch.CfnDashboard(this, 'Dashboard', {
      // Dashboards are global to the account: the region keeps two regions' stacks apart.
      dashboardName: `${Aws.STACK_NAME}-${Aws.REGION}`,
      dashboardBody: stack.toJsonString(body),
    });
    this.dashboardUrl = `https://console.aws.amazon.com/cloudwatch/home?region=${Aws.REGION}#dashboards/dashboard/${this.dashboard.ref}`;

    // ---- cdk-nag: the wildcards the template grants on purpose, acknowledged one by one.
    const tableArnToken = stack.resolve(this.table.tableArn);
    const nagName = (resource: string): string => {
      // cdk-nag names a finding by the resource with intrinsics written as <AWS::Region>, <Id.Arn>.
      const parts = stack.resolve(resource);
      const render = (v: any): string => typeof v === 'string' ? v
        : v.Ref ? `<${v.Ref}>` : v['Fn::GetAtt'] ? `<${v['Fn::GetAtt'].join('.')}>`
        : v['Fn::Join'] ? v['Fn::Join'][1].map(render).join(v['Fn::Join'][0]) : JSON.stringify(v);
      return render(parts);
    };
    const reasonOf = (resource: string, actions: Set<string>): string => {
      const acts = [...actions].sort().join(', ');
      if (resource === '*') {
        const why = [];
        if ([...actions].some((a) => a.startsWith('xray:') || a === 'ecs:DescribeTaskDefinition')) {
          why.push('X-Ray\'s write actions and ecs:DescribeTaskDefinition support no resource-level permissions');
        }
        if (actions.has('cloudwatch:DescribeAlarms')) {
          why.push('cloudwatch:DescribeAlarms returns composite alarms only to a permission on "*" (the default of gateAlarmNamePrefix; set it to scope the action to alarm:<prefix>*)');
        }
        if (actions.has('ecs:ListTasks')) {
          why.push('ecs:ListTasks is authorized against container instances even when it lists a cluster, so the ecs:cluster condition confines it to the managed clusters instead');
        }
        return `${acts} on "*": ${why.join('; ')}.`;
      }
      if (resource.endsWith('/index/*') && JSON.stringify(stack.resolve(resource)).includes(JSON.stringify(tableArnToken))) {
        return `${acts} on the GSIs (by-cluster, by-kind) of this one table: the wildcard is the index name.`;
      }
      if (/:role\/\*$/.test(nagName(resource))) {
        return `${acts}: default of taskRoleArns (any role of this account), passable to ecs-tasks.amazonaws.com only (iam:PassedToService); set taskRoleArns to narrow it.`;
      }
      if (/:alarm:/.test(nagName(resource))) {
        return `${acts}: the alarms named by gateAlarmNamePrefix; which of them gate a deployment is the user's updateStrategy.alarms, unknown at deploy time.`;
      }
      if (/:cluster\/\*$/.test(nagName(resource))) {
        return `${acts}: every cluster of this account and region, the default of managedClusters (DescribeClusters: creating an environment checks any cluster, and refuses unmanaged ones itself); set managedClusters to narrow it.`;
      }
      return `${acts}: the tasks, task definitions and container instances are whatever the user deploys, unknown at deploy time; the ecs:cluster condition confines the action to the managed clusters.`;
    };
    for (const key of Object.keys(SPECS) as FunctionKey[]) {
      const m = wildcards[key] ?? new Map<string, Set<string>>();
      if (props.tracing) {
        // Lambda's Active tracing adds these two on "*".
        if (!m.has('*')) m.set('*', new Set());
        ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'].forEach((a) => m.get('*')!.add(a));
      }
      for (const [resource, actions] of m) {
        Validations.of(roles[key]).acknowledge({
          id: `AwsSolutions-IAM5[Resource::${nagName(resource)}]`,
          reason: reasonOf(resource, actions),
        });
      }
    }
  }
}
