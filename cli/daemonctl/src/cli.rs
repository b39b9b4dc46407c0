//! Command line: every route of the API (infra/template.yaml's HttpApi events) and the DLQ replay.

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "daemonctl",
    version,
    about = "Client of the daemon-scheduler API (SigV4-signed with your AWS credentials)",
    after_help = "Endpoint: --endpoint, else --stack (the stack's ApiUrl output), else \
                  DAEMONCTL_ENDPOINT, else DAEMONCTL_STACK.\n\
                  Credentials and region: the standard AWS chain (AWS_PROFILE, AWS_REGION, SSO, \
                  instance roles, ...).\n\
                  Exit codes: 0 ok, 1 error (API, network, credentials), 2 usage, 3 a deployment \
                  waited for failed or a replay left messages behind."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct Global {
    /// Base URL of the API, e.g. https://abc123.execute-api.eu-west-1.amazonaws.com
    #[arg(long, global = true, value_name = "URL", conflicts_with = "stack")]
    pub endpoint: Option<String>,
    /// CloudFormation stack whose ApiUrl output is the endpoint
    #[arg(long, global = true, value_name = "NAME")]
    pub stack: Option<String>,
    /// AWS region (default: the credential chain's, else the endpoint's)
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// AWS profile of the shared config files
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// Output format
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// Seconds to wait for one API answer
    #[arg(long, global = true, default_value_t = 60, value_name = "SECONDS")]
    pub timeout: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned text
    Table,
    /// The API's JSON as received
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// GET /v1/ping
    Ping,
    /// Environments: desired state (a task definition on every host of a cluster)
    #[command(subcommand)]
    Env(EnvCommand),
    /// Deploy an environment's latest (or given) revision
    Deploy(DeployArgs),
    /// Deployments of an environment
    #[command(subcommand)]
    Deployments(DeploymentsCommand),
    /// Dead-letter queues
    #[command(subcommand)]
    Dlq(DlqCommand),
}

#[derive(Debug, Args, Default)]
pub struct StrategyArgs {
    /// Hosts without a healthy task at once during a rollout: a count or a percent (25%)
    #[arg(long, value_name = "N|P%")]
    pub max_unavailable: Option<String>,
    /// Seconds a new task must stay RUNNING before it counts as healthy (0-900)
    #[arg(long, value_name = "SECONDS")]
    pub min_healthy_seconds: Option<u32>,
    /// Failed hosts beyond which a rollout halts: a count or a percent
    #[arg(long, value_name = "N|P%")]
    pub failure_threshold: Option<String>,
    /// Roll back to the previous revision when a rollout halts
    #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set)]
    pub auto_rollback: Option<bool>,
}

#[derive(Debug, Args)]
pub struct PageArgs {
    /// Items per page (1-100)
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub limit: Option<u32>,
    /// Continue after this token (from a previous page)
    #[arg(long, value_name = "TOKEN", conflicts_with = "all")]
    pub next_token: Option<String>,
    /// Fetch every page
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Subcommand)]
pub enum EnvCommand {
    /// POST /v1/environments
    Create {
        /// Environment name (letters, digits, - and _, at most 30)
        name: String,
        /// Cluster name or ARN
        #[arg(long)]
        cluster: String,
        /// Task definition: family, family:revision or ARN
        #[arg(long)]
        task_definition: String,
        #[command(flatten)]
        strategy: StrategyArgs,
    },
    /// GET /v1/environments
    List {
        /// Only environments of this cluster (name or ARN)
        #[arg(long)]
        cluster: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// GET /v1/environments/{name}
    Get {
        /// Environment name
        name: String,
    },
    /// PUT /v1/environments/{name}: a new revision (deploy it with `daemonctl deploy`)
    Update {
        /// Environment name
        name: String,
        /// Task definition: family, family:revision or ARN
        #[arg(long)]
        task_definition: Option<String>,
        #[command(flatten)]
        strategy: StrategyArgs,
    },
    /// DELETE /v1/environments/{name}: stops its tasks and removes it
    Delete {
        /// Environment name
        name: String,
    },
    /// GET /v1/environments/{name}/revisions
    Revisions {
        /// Environment name
        name: String,
        #[command(flatten)]
        page: PageArgs,
    },
    /// GET /v1/environments/{name}/revisions/{number}
    Revision {
        /// Environment name
        name: String,
        /// Revision number
        number: u32,
    },
    /// GET /v1/environments/{name}/status
    Status {
        /// Environment name
        name: String,
        /// One line per host
        #[arg(long)]
        hosts: bool,
    },
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Environment name
    pub name: String,
    /// Revision to deploy (default: the latest)
    #[arg(long)]
    pub revision: Option<u32>,
    /// The environment's deploymentToken: refused if someone deployed meanwhile
    #[arg(long)]
    pub token: Option<String>,
    /// Poll until the deployment completes (exit 0) or fails / is cancelled (exit 3)
    #[arg(long)]
    pub wait: bool,
    /// Seconds between polls with --wait
    #[arg(long, default_value_t = 2, value_name = "SECONDS", requires = "wait")]
    pub interval: u64,
    /// Give up waiting after this many seconds (exit 1; the deployment goes on)
    #[arg(
        long,
        default_value_t = 1800,
        value_name = "SECONDS",
        requires = "wait"
    )]
    pub wait_timeout: u64,
}

#[derive(Debug, Subcommand)]
pub enum DeploymentsCommand {
    /// GET /v1/environments/{name}/deployments
    List {
        /// Environment name
        name: String,
        #[command(flatten)]
        page: PageArgs,
    },
    /// GET /v1/environments/{name}/deployments/{id}
    Get {
        /// Environment name
        name: String,
        /// Deployment id
        id: String,
    },
    /// POST /v1/environments/{name}/deployments/{id}/cancel
    Cancel {
        /// Environment name
        name: String,
        /// Deployment id
        id: String,
    },
}

/// The stack's dead-letter queues (infra/template.yaml's Outputs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StackDlq {
    /// Container-instance events instance-events could not handle
    InstanceEvents,
    /// Task events task-events could not handle
    TaskEvents,
    /// Scheduled reconciles that failed
    Reconciler,
    /// The deployer's wake-ups (end of a bake) that kept failing
    Wakeups,
}

impl StackDlq {
    /// (queue URL output, function name output, wrap bodies into an SQS event)
    pub fn outputs(self) -> (&'static str, &'static str, bool) {
        match self {
            Self::InstanceEvents => (
                "InstanceEventsDeadLetterQueueUrl",
                "InstanceEventsFunctionName",
                false,
            ),
            Self::TaskEvents => (
                "TaskEventsDeadLetterQueueUrl",
                "TaskEventsFunctionName",
                false,
            ),
            Self::Reconciler => (
                "ReconcilerDeadLetterQueueUrl",
                "ReconcilerFunctionName",
                false,
            ),
            Self::Wakeups => ("WakeupDeadLetterQueueUrl", "DeployerFunctionName", true),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Re-invoke a function with the events of a dead-letter queue; each message is deleted only
    /// after its invocation succeeded
    Replay(ReplayArgs),
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Queue URL of the dead-letter queue
    #[arg(long, value_name = "URL", required_unless_present = "dlq")]
    pub queue: Option<String>,
    /// Function to invoke (name or ARN)
    #[arg(long, required_unless_present = "dlq")]
    pub function: Option<String>,
    /// A dead-letter queue of the stack (--stack or DAEMONCTL_STACK) and the function it feeds,
    /// from the stack's outputs; `wakeups` replays to the deployer as SQS events
    #[arg(long, value_enum, conflicts_with_all = ["queue", "function"])]
    pub dlq: Option<StackDlq>,
    /// Handle at most this many messages
    #[arg(long)]
    pub max: Option<usize>,
    /// Show what would be replayed; invoke and delete nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Wrap each body into an SQS event (for a function fed by an SQS queue, e.g. the deployer's
    /// wake-ups)
    #[arg(long)]
    pub as_sqs_event: bool,
    /// Seconds a received message stays hidden while it is replayed
    #[arg(long, default_value_t = 900, value_name = "SECONDS")]
    pub visibility_timeout: i32,
    /// Long-poll wait of each receive; the replay ends when one returns nothing new
    #[arg(long, default_value_t = 2, value_name = "SECONDS", value_parser = clap::value_parser!(i32).range(0..=20))]
    pub wait_seconds: i32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_go_anywhere_and_endpoint_conflicts_with_stack() {
        let cli = Cli::try_parse_from([
            "daemonctl",
            "env",
            "get",
            "web",
            "--endpoint",
            "http://x",
            "-o",
            "json",
        ])
        .unwrap();
        assert_eq!(cli.global.endpoint.as_deref(), Some("http://x"));
        assert_eq!(cli.global.output, Output::Json);
        assert!(Cli::try_parse_from([
            "daemonctl",
            "ping",
            "--endpoint",
            "http://x",
            "--stack",
            "s"
        ])
        .is_err());
    }

    #[test]
    fn strategy_flags_parse_and_auto_rollback_takes_a_value() {
        let cli = Cli::try_parse_from([
            "daemonctl",
            "env",
            "create",
            "web",
            "--cluster",
            "c",
            "--task-definition",
            "td:1",
            "--max-unavailable",
            "1",
            "--auto-rollback",
            "false",
        ])
        .unwrap();
        let Command::Env(EnvCommand::Create { strategy, .. }) = cli.command else {
            panic!("not env create")
        };
        assert_eq!(strategy.max_unavailable.as_deref(), Some("1"));
        assert_eq!(strategy.auto_rollback, Some(false));
        assert!(
            Cli::try_parse_from(["daemonctl", "env", "list", "--all", "--next-token", "t"])
                .is_err()
        );
        assert!(Cli::try_parse_from(["daemonctl", "env", "list", "--limit", "101"]).is_err());
        assert!(Cli::try_parse_from(["daemonctl", "deploy", "web", "--interval", "5"]).is_err());
    }

    #[test]
    fn replay_takes_a_queue_and_a_function_or_a_stack_dlq() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(["daemonctl", "dlq", "replay"].iter().chain(args))
                .map(|c| c.command)
        };
        assert!(parse(&["--queue", "q", "--function", "f"]).is_ok());
        assert!(parse(&["--queue", "q"]).is_err());
        assert!(parse(&["--dlq", "task-events", "--queue", "q"]).is_err());
        let Ok(Command::Dlq(DlqCommand::Replay(r))) = parse(&["--dlq", "wakeups"]) else {
            panic!("--dlq alone is a replay")
        };
        assert_eq!(r.dlq, Some(StackDlq::Wakeups));
        assert_eq!(
            StackDlq::Wakeups.outputs(),
            ("WakeupDeadLetterQueueUrl", "DeployerFunctionName", true)
        );
    }
}
