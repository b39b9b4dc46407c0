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
                  waited for failed or a replay left messages behind.\n\
                  Progress (deploy --wait, env status --watch): a bar on a terminal, timestamped \
                  lines otherwise.",
    after_long_help = EXAMPLES
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// `daemonctl --help`: the commands most used, in the order of a first rollout.
const EXAMPLES: &str = "Examples:
  export DAEMONCTL_STACK=daemon-scheduler
  daemonctl env create web --cluster prod --task-definition web:3 --max-unavailable 25%
  daemonctl deploy web --wait            # a progress bar on a terminal; exit 3 if it fails
  daemonctl env status web --watch       # follow a rollout someone else started (Ctrl-C ends)
  daemonctl env status web --hosts       # one line per host, with why it runs or not
  daemonctl deployments list web
  daemonctl dlq replay --dlq instance-events --dry-run
  source <(daemonctl completions bash)   # tab completion

Endpoint: --endpoint, else --stack (the stack's ApiUrl output), else DAEMONCTL_ENDPOINT, else \
DAEMONCTL_STACK.
Credentials and region: the standard AWS chain (AWS_PROFILE, AWS_REGION, SSO, instance roles, \
...).
Exit codes: 0 ok, 1 error (API, network, credentials), 2 usage, 3 a deployment waited for failed \
or a replay left messages behind.
Progress (deploy --wait, env status --watch): a bar on a terminal (TERM other than dumb), \
timestamped lines otherwise (CI, pipes).";

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
    #[command(
        subcommand,
        after_help = "Examples:
  daemonctl deployments list web --all
  daemonctl deployments get web <id>      # its progress, failed hosts and why
  daemonctl deployments hosts web <id>    # what happened on each host, transition by transition
  daemonctl deployments hosts web <id> --host <container instance ARN or id>
  daemonctl deployments cancel web <id>   # hosts keep what they run (a canary's roll back)
  daemonctl deployments promote web <id>  # a canary's revision onto every host, in waves
  daemonctl deployments pause web <id>    # no new host until: daemonctl deployments resume web <id>"
    )]
    Deployments(DeploymentsCommand),
    /// Dead-letter queues
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Print a shell completion script
    #[command(after_help = "Examples:
  source <(daemonctl completions bash)                       # this shell
  daemonctl completions bash > ~/.local/share/bash-completion/completions/daemonctl
  daemonctl completions zsh > ~/.zfunc/_daemonctl            # with fpath+=(~/.zfunc)
  daemonctl completions fish > ~/.config/fish/completions/daemonctl.fish")]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// The completion script of `shell` for the whole command line.
pub fn write_completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
    use clap::CommandFactory;
    clap_complete::generate(shell, &mut Cli::command(), "daemonctl", out);
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
    /// Hosts that may run a second task during a rollout (new starts before old stops): a
    /// count or a percent, rounded up
    #[arg(long, value_name = "N|P%")]
    pub max_surge: Option<String>,
    /// Replace only this many hosts (a count or a percent), bake them, then wait for
    /// `deployments promote`
    #[arg(long, value_name = "N|P%")]
    pub canary: Option<String>,
    /// Promote the canary by itself once its hosts have baked
    #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set)]
    pub auto_promote: Option<bool>,
    /// A CloudWatch alarm that halts a rollout while in ALARM (repeat for several)
    #[arg(long = "alarm", value_name = "NAME")]
    pub alarms: Vec<String>,
}

/// One `--size` rule: `EXPR=CPU/MEMORY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizeRule {
    pub expression: String,
    pub cpu: Option<String>,
    pub memory: Option<String>,
}

const SIZE_SYNTAX: &str =
    "expected EXPR=CPU/MEMORY, e.g. 'attribute:ecs.instance-type =~ m5\\..*=1024/2048'";

/// `EXPR=CPU/MEMORY`, split at the last `=` (a size holds none, an expression may: `==`, `=~`);
/// either size may be empty (`EXPR=1024/`, `EXPR=/2 GB`), not both. The API checks the values.
pub fn parse_size(s: &str) -> Result<SizeRule, String> {
    let (expression, size) = s.rsplit_once('=').ok_or(SIZE_SYNTAX)?;
    // The last `=` belongs to an operator (`==`, `!=`, `<=`, `>=`, `=~`): no size was given.
    if size.starts_with('~') || expression.ends_with(['=', '!', '<', '>']) {
        return Err(format!(
            "no size after the expression (the last = is part of an operator); {SIZE_SYNTAX}"
        ));
    }
    let (cpu, memory) = size.split_once('/').ok_or_else(|| {
        format!("{size:?} is not CPU/MEMORY (leave one empty: 1024/ or /2048); {SIZE_SYNTAX}")
    })?;
    let some = |v: &str| Some(v.trim().to_owned()).filter(|v| !v.is_empty());
    let rule = SizeRule {
        expression: expression.trim().to_owned(),
        cpu: some(cpu),
        memory: some(memory),
    };
    if rule.expression.is_empty() {
        return Err("no expression before the =".into());
    }
    if rule.cpu.is_none() && rule.memory.is_none() {
        return Err(format!("give a CPU, a memory or both; {SIZE_SYNTAX}"));
    }
    Ok(rule)
}

/// One `--env` entry: `CONTAINER:NAME=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    pub container: String,
    pub name: String,
    pub value: String,
}

/// `CONTAINER:NAME=VALUE`: the container up to the first `:`, the name up to the next `=`, the
/// value (which may be empty, or hold `:` and `=`) the rest.
pub fn parse_env(s: &str) -> Result<EnvVar, String> {
    const SYNTAX: &str = "expected CONTAINER:NAME=VALUE, e.g. 'agent:AZ=${host.availabilityZone}'";
    let (container, rest) = s.split_once(':').ok_or(SYNTAX)?;
    let (name, value) = rest.split_once('=').ok_or(SYNTAX)?;
    if container.is_empty() || container.contains('=') || name.is_empty() {
        return Err(SYNTAX.into());
    }
    Ok(EnvVar {
        container: container.to_owned(),
        name: name.to_owned(),
        value: value.to_owned(),
    })
}

/// Placement, sizing, overrides and ordering of a revision (`env create`, `env update`).
#[derive(Debug, Args, Default)]
#[command(next_help_heading = "Placement")]
pub struct PlacementArgs {
    /// Run only on the hosts this cluster query language expression selects (a memberOf
    /// placement constraint); repeat for several, all must hold
    ///
    /// Example: --placement-constraint 'attribute:ecs.instance-type =~ (m5|c5)\..*'
    #[arg(long = "placement-constraint", value_name = "EXPR")]
    pub placement_constraints: Vec<String>,
    /// Size the task on the hosts EXPR selects, e.g. 'attribute:ecs.instance-type =~
    /// m5\..*=1024/2048'; repeat for several rules, in order: the first that matches a host wins
    ///
    /// EXPR=CPU/MEMORY is split at the LAST `=` (sizes hold none), so `==` and `=~` inside EXPR
    /// are fine. Sizes as ECS takes them ("1024" or "1 vCPU"; "2048" or "2 GB"); leave one
    /// empty to keep the task definition's (EXPR=/4 GB).
    ///
    /// Example: --size 'attribute:ecs.instance-type =~ m5\..*=1024/2048' --size
    /// 'attribute:ecs.instance-type =~ c5\..*=2 vCPU/'
    #[arg(long = "size", value_name = "EXPR=CPU/MEMORY", value_parser = parse_size)]
    pub sizing: Vec<SizeRule>,
    /// Task overrides, ECS's TaskOverride JSON: a file, - for stdin, or the JSON itself
    ///
    /// The JSON itself is anything starting with `{`: {"containerOverrides": [{"name": ...,
    /// "environment": [...], "command": [...], "cpu", "memory", "memoryReservation"}], "cpu",
    /// "memory"}. Placeholders such as ${host.availabilityZone} are filled in per host. --env
    /// entries are added to this document.
    #[arg(long, value_name = "FILE|-|JSON")]
    pub overrides: Option<String>,
    /// An environment variable of a container in the overrides, e.g.
    /// 'agent:AZ=${host.availabilityZone}'; repeatable
    ///
    /// Added to the --overrides document, or to an empty one: the container's entry is created
    /// if missing, and a NAME it already sets takes this VALUE. Single quotes keep the shell off
    /// placeholders.
    ///
    /// Example: --env 'agent:AZ=${host.availabilityZone}' --env 'agent:TYPE=${host.instanceType}'
    #[arg(long = "env", value_name = "CONTAINER:NAME=VALUE", value_parser = parse_env)]
    pub env: Vec<EnvVar>,
    /// An environment (same cluster) whose task must run on a host before this one starts
    /// there; repeat for several
    #[arg(long = "depends-on", value_name = "ENV")]
    pub depends_on: Vec<String>,
}

/// `env update`: clear what the latest revision has (sent as `null`).
#[derive(Debug, Clone, Args, Default)]
#[command(next_help_heading = "Placement")]
pub struct ClearArgs {
    /// Remove the placement constraints: every host of the cluster again
    #[arg(long, conflicts_with = "placement_constraints")]
    pub no_placement_constraints: bool,
    /// Remove the sizing rules: the task definition's size on every host
    #[arg(long, conflicts_with = "sizing")]
    pub no_sizing: bool,
    /// Remove the task overrides
    #[arg(long, conflicts_with_all = ["overrides", "env"])]
    pub no_overrides: bool,
    /// Depend on no other environment
    #[arg(long, conflicts_with = "depends_on")]
    pub no_depends_on: bool,
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
    #[command(after_help = "Examples:
  daemonctl env create web --cluster prod --task-definition web:3 --max-unavailable 25% \\
    --min-healthy-seconds 30
  daemonctl env create agent --cluster prod --task-definition agent:1 --depends-on web \\
    --placement-constraint 'attribute:ecs.os-type == linux' \\
    --size 'attribute:ecs.instance-type =~ m5\\..*=1024/2048' --env 'agent:AZ=${host.availabilityZone}'")]
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
        #[command(flatten)]
        placement: PlacementArgs,
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
    #[command(
        after_help = "Each field given replaces the latest revision's; one left out is \
                            kept. --overrides and --env replace the overrides as a whole: to add \
                            to them, pass the current ones (daemonctl -o json env get NAME | \
                            jq .overrides > o.json; --overrides o.json --env ...).\n\n\
                      Examples:\n  \
                      daemonctl env update web --task-definition web:4 && daemonctl deploy web --wait\n  \
                      daemonctl env update web --max-unavailable 1 --failure-threshold 0\n  \
                      daemonctl env update agent --overrides overrides.json --no-sizing"
    )]
    Update {
        /// Environment name
        name: String,
        /// Task definition: family, family:revision or ARN
        #[arg(long)]
        task_definition: Option<String>,
        #[command(flatten)]
        strategy: StrategyArgs,
        #[command(flatten)]
        placement: PlacementArgs,
        #[command(flatten)]
        clear: ClearArgs,
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
    #[command(after_help = "Examples:
  daemonctl env status web
  daemonctl env status web --hosts        # one line per host: placement, reason, revision, size
  daemonctl env status web --watch        # live until Ctrl-C: a bar on a terminal, else lines
  daemonctl -o json env status web --watch | jq -c .counts   # each new status on one line

--watch shows the phase (replacing, baking, halted by the breaker, rolling back, ...), hosts \
updated of desired, available, failed and unschedulable.")]
    Status {
        /// Environment name
        name: String,
        /// One line per host
        #[arg(long)]
        hosts: bool,
        /// Poll the status until Ctrl-C and show the rollout's progress
        #[arg(long, conflicts_with = "hosts")]
        watch: bool,
        /// Seconds between polls with --watch
        #[arg(long, default_value_t = 2, value_name = "SECONDS", requires = "watch")]
        interval: u64,
    },
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  daemonctl deploy web                          # start it; prints the deployment
  daemonctl deploy web --wait                   # and follow it to its end (exit 3 if it fails)
  daemonctl deploy web --revision 3 --token \"$(daemonctl -o json env get web | jq -r .deploymentToken)\"

--wait shows a bar on a terminal (phase, hosts updated of desired, available, failed, \
unschedulable, elapsed time), timestamped lines otherwise. A deployment the breaker halts and \
rolls back by itself is followed until the rollback ends; the exit code is still 3.")]
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
    /// This deployment's own update strategy (the revision keeps its own)
    #[command(flatten)]
    pub strategy: StrategyArgs,
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
    /// GET /v1/environments/{name}/deployments/{id}/hosts: each host the deployment touched,
    /// where it stands, and its transitions (claimed, started, running, healthy, failed, ...)
    Hosts {
        /// Environment name
        name: String,
        /// Deployment id
        id: String,
        /// Only this host (its container instance ARN, or the id at the ARN's end); reads every
        /// page
        #[arg(long, value_name = "ARN")]
        host: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// POST /v1/environments/{name}/deployments/{id}/cancel
    Cancel {
        /// Environment name
        name: String,
        /// Deployment id
        id: String,
    },
    /// POST /v1/environments/{name}/deployments/{id}/promote: a canary's revision onto every host
    Promote {
        /// Environment name
        name: String,
        /// Deployment id
        id: String,
    },
    /// POST /v1/environments/{name}/deployments/{id}/pause: touch no new host until resumed
    Pause {
        /// Environment name
        name: String,
        /// Deployment id
        id: String,
    },
    /// POST /v1/environments/{name}/deployments/{id}/resume
    Resume {
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
    #[command(after_help = "Examples:
  daemonctl --stack daemon-scheduler dlq replay --dlq instance-events --dry-run   # what failed, why
  daemonctl --stack daemon-scheduler dlq replay --dlq instance-events
  daemonctl dlq replay --queue https://sqs.../dlq --function deployer --as-sqs-event --max 10")]
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
    fn size_rules_split_at_the_last_equals_sign() {
        let rule = |e: &str, c: Option<&str>, m: Option<&str>| SizeRule {
            expression: e.into(),
            cpu: c.map(Into::into),
            memory: m.map(Into::into),
        };
        assert_eq!(
            parse_size("attribute:ecs.instance-type =~ m5\\..*=1024/2048"),
            Ok(rule(
                "attribute:ecs.instance-type =~ m5\\..*",
                Some("1024"),
                Some("2048")
            ))
        );
        assert_eq!(
            parse_size("attribute:a == 'x=y' = 1 vCPU / 2 GB"),
            Ok(rule("attribute:a == 'x=y'", Some("1 vCPU"), Some("2 GB")))
        );
        assert_eq!(
            parse_size("attribute:gpu exists=/4096"),
            Ok(rule("attribute:gpu exists", None, Some("4096")))
        );
        assert_eq!(
            parse_size("attribute:gpu exists=512/"),
            Ok(rule("attribute:gpu exists", Some("512"), None))
        );
        // No size: the last `=` is an operator's.
        for no_size in [
            "attribute:a == m5/x",
            "attribute:a != b/c",
            "attribute:a >= 1/2",
            "attribute:a =~ m5/.*",
        ] {
            let err = parse_size(no_size).unwrap_err();
            assert!(
                err.starts_with("no size after the expression"),
                "{no_size}: {err}"
            );
        }
        assert!(parse_size("attribute:a !~ m5.*")
            .unwrap_err()
            .starts_with("expected EXPR="));
        assert!(parse_size("attribute:a exists=1024")
            .unwrap_err()
            .starts_with("\"1024\" is not CPU/MEMORY"));
        assert!(parse_size("attribute:a exists=/").is_err());
        assert!(parse_size(" =1/2").is_err());
    }

    #[test]
    fn env_entries_are_container_name_and_value() {
        assert_eq!(
            parse_env("agent:AZ=${host.availabilityZone}"),
            Ok(EnvVar {
                container: "agent".into(),
                name: "AZ".into(),
                value: "${host.availabilityZone}".into()
            })
        );
        assert_eq!(parse_env("a:B=").map(|v| v.value), Ok(String::new()));
        assert_eq!(parse_env("a:B=x=y:z").map(|v| v.value), Ok("x=y:z".into()));
        for bad in ["AZ=x", "AZ=x:y", ":AZ=x", "a:=x", "a:AZ"] {
            assert!(parse_env(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn placement_flags_repeat_and_clear_flags_only_on_update() {
        let cli = Cli::try_parse_from([
            "daemonctl",
            "env",
            "update",
            "web",
            "--placement-constraint",
            "attribute:a == b",
            "--placement-constraint",
            "attribute:c exists",
            "--size",
            "attribute:a == b=1/2",
            "--depends-on",
            "base",
            "--no-overrides",
            "--no-depends-on",
        ]);
        // --depends-on and --no-depends-on together: refused.
        assert!(cli.is_err());
        let cli = Cli::try_parse_from([
            "daemonctl",
            "env",
            "update",
            "web",
            "--placement-constraint",
            "attribute:a == b",
            "--placement-constraint",
            "attribute:c exists",
            "--overrides",
            "-",
            "--env",
            "a:B=c",
            "--no-sizing",
        ])
        .unwrap();
        let Command::Env(EnvCommand::Update {
            placement, clear, ..
        }) = cli.command
        else {
            panic!("not env update")
        };
        assert_eq!(
            placement.placement_constraints,
            ["attribute:a == b", "attribute:c exists"]
        );
        assert_eq!(placement.overrides.as_deref(), Some("-"));
        assert!(clear.no_sizing && !clear.no_overrides);
        let parse = |args: &[&str]| {
            Cli::try_parse_from(["daemonctl", "env"].iter().chain(args)).map(|_| ())
        };
        assert!(parse(&["update", "web", "--env", "a:B=c", "--no-overrides"]).is_err());
        assert!(parse(&["update", "web", "--size", "x exists=1/", "--no-sizing"]).is_err());
        assert!(parse(&["update", "web", "--size", "x == y"]).is_err());
        let create = ["create", "web", "--cluster", "c", "--task-definition", "td"];
        assert!(parse(&create).is_ok());
        assert!(parse(&[&create[..], &["--no-sizing"]].concat()).is_err());
        assert!(parse(&[&create[..], &["--env", "a:B=${host.instanceId}"]].concat()).is_ok());
    }

    #[test]
    fn status_watch_polls_at_an_interval_and_not_with_hosts() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(["daemonctl", "env", "status", "web"].iter().chain(args))
                .map(|c| c.command)
        };
        let Ok(Command::Env(EnvCommand::Status {
            watch, interval, ..
        })) = parse(&["--watch", "--interval", "5"])
        else {
            panic!("env status --watch")
        };
        assert!(watch);
        assert_eq!(interval, 5);
        assert!(parse(&["--watch", "--hosts"]).is_err());
        assert!(
            parse(&["--interval", "5"]).is_err(),
            "--interval needs --watch"
        );
    }

    #[test]
    fn completions_of_every_shell_name_the_subcommands() {
        use clap_complete::Shell;
        let script = |shell| {
            let mut out = Vec::new();
            write_completions(shell, &mut out);
            String::from_utf8(out).unwrap()
        };
        let bash = script(Shell::Bash);
        assert!(bash.starts_with("_daemonctl() {"), "{bash}");
        for word in [
            "env",
            "deploy",
            "deployments",
            "dlq",
            "completions",
            "status",
            "--watch",
            "--placement-constraint",
            "instance-events",
        ] {
            assert!(bash.contains(word), "bash completion lacks {word}");
        }
        for shell in [Shell::Zsh, Shell::Fish, Shell::PowerShell, Shell::Elvish] {
            assert!(script(shell).contains("deployments"), "{shell}");
        }
        let cli = Cli::try_parse_from(["daemonctl", "completions", "zsh"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Completions { shell: Shell::Zsh }
        ));
        assert!(Cli::try_parse_from(["daemonctl", "completions", "tcsh"]).is_err());
    }

    #[test]
    fn help_of_the_main_commands_shows_examples() {
        let mut cmd = Cli::command();
        let long = cmd.render_long_help().to_string();
        assert!(
            long.contains("Examples:\n  export DAEMONCTL_STACK"),
            "{long}"
        );
        assert!(long.contains("daemonctl env status web --watch"), "{long}");
        for path in [
            &["env", "create"][..],
            &["env", "update"],
            &["env", "status"],
            &["deploy"],
            &["deployments"],
            &["dlq", "replay"],
            &["completions"],
        ] {
            let mut sub = &mut cmd;
            for name in path {
                sub = sub.find_subcommand_mut(name).unwrap();
            }
            let help = sub.render_help().to_string();
            assert!(
                help.contains(&format!("Examples:\n  daemonctl {}", path.join(" ")))
                    || help.contains("Examples:\n  source <(daemonctl completions")
                    || help.contains("Examples:\n  daemonctl --stack"),
                "{path:?}: {help}"
            );
        }
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
