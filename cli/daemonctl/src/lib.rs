//! daemonctl: the daemon-scheduler API from a terminal, SigV4-signed with the caller's AWS
//! credentials, and the replay of dead-letter queues.

pub mod bar;
pub mod cli;
pub mod client;
pub mod endpoint;
pub mod output;
pub mod phase;
pub mod progress;
pub mod replay;
pub mod report;
pub mod signing;
pub mod spec;
pub mod wait;
pub mod watch;

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use serde_json::{json, Value};

use crate::cli::{
    Cli, Command, DeployArgs, DeploymentsCommand, DlqCommand, EnvCommand, Global, Output, PageArgs,
    ReplayArgs, StrategyArgs,
};
use crate::client::{error_chain, Answer, ApiClient, ApiError};

#[derive(Debug)]
pub enum Error {
    /// The API answered with an error status.
    Api(ApiError),
    /// The command line asks for something that cannot be sent.
    Usage(String),
    /// Network, credentials, configuration.
    Other(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Api(e) => e.fmt(f),
            Self::Usage(m) | Self::Other(m) => f.write_str(m),
        }
    }
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => 2,
            Self::Api(_) | Self::Other(_) => 1,
        }
    }
}

/// How a command that ran to its end came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// A deployment waited for failed or was cancelled; a replay left messages in the queue.
    Unsuccessful,
}

pub async fn run(cli: Cli) -> Result<Outcome, Error> {
    if let Command::Completions { shell } = cli.command {
        cli::write_completions(shell, &mut std::io::stdout());
        return Ok(Outcome::Success);
    }
    let config = load_aws_config(&cli.global).await;
    match cli.command {
        Command::Dlq(DlqCommand::Replay(args)) => replay(&config, &cli.global, args).await,
        command => {
            let api = api_client(&config, &cli.global).await?;
            api_command(&api, cli.global.output, command).await
        }
    }
}

async fn load_aws_config(global: &Global) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(p) = &global.profile {
        loader = loader.profile_name(p);
    }
    if let Some(r) = &global.region {
        loader = loader.region(Region::new(r.clone()));
    } else {
        loader = loader.region(RegionProviderChain::default_provider());
    }
    loader.load().await
}

async fn api_client(config: &SdkConfig, global: &Global) -> Result<ApiClient, Error> {
    let env = |k: &str| std::env::var(k).ok();
    let source = endpoint::choose(
        global.endpoint.as_deref(),
        global.stack.as_deref(),
        env(endpoint::ENV_ENDPOINT).as_deref(),
        env(endpoint::ENV_STACK).as_deref(),
    )
    .map_err(Error::Usage)?;
    let url = match source {
        endpoint::Source::Url(u) => u,
        endpoint::Source::Stack(s) => stack_api_url(config, &s).await?,
    };
    let base = endpoint::normalize_base(&url).map_err(Error::Usage)?;
    let region = config
        .region()
        .map(|r| r.to_string())
        .or_else(|| endpoint::region_of_host(&base))
        .ok_or_else(|| {
            Error::Usage(
                "no AWS region: pass --region or set AWS_REGION (or a profile's region)".into(),
            )
        })?;
    let credentials = config.credentials_provider().ok_or_else(|| {
        Error::Other("no AWS credentials provider (set AWS_PROFILE or AWS_ACCESS_KEY_ID)".into())
    })?;
    ApiClient::new(
        base,
        region,
        credentials,
        Duration::from_secs(global.timeout),
    )
}

/// The outputs of a CloudFormation stack (infra/template.yaml's Outputs), by key.
async fn stack_outputs(config: &SdkConfig, stack: &str) -> Result<HashMap<String, String>, Error> {
    let cfn = aws_sdk_cloudformation::Client::new(config);
    let out = cfn
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| Error::Other(format!("DescribeStacks {stack}: {}", error_chain(&e))))?;
    Ok(out
        .stacks()
        .iter()
        .flat_map(|s| s.outputs())
        .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
        .collect())
}

fn output(outputs: &HashMap<String, String>, stack: &str, key: &str) -> Result<String, Error> {
    outputs
        .get(key)
        .cloned()
        .ok_or_else(|| Error::Other(format!("stack {stack} has no {key} output")))
}

async fn stack_api_url(config: &SdkConfig, stack: &str) -> Result<String, Error> {
    output(&stack_outputs(config, stack).await?, stack, "ApiUrl")
}

/// The `updateStrategy` object of the flags given, or nothing when none was given. Counts go as
/// numbers, percents as strings; the API checks the values.
pub fn strategy_json(s: &StrategyArgs) -> Option<Value> {
    let amount = |v: &str| match v.trim().parse::<u64>() {
        Ok(n) => json!(n),
        Err(_) => json!(v.trim()),
    };
    let mut m = serde_json::Map::new();
    if let Some(v) = &s.max_unavailable {
        m.insert("maxUnavailable".into(), amount(v));
    }
    if let Some(v) = s.min_healthy_seconds {
        m.insert("minHealthySeconds".into(), json!(v));
    }
    if let Some(v) = &s.failure_threshold {
        m.insert("failureThreshold".into(), amount(v));
    }
    if let Some(v) = s.auto_rollback {
        m.insert("autoRollback".into(), json!(v));
    }
    if let Some(v) = &s.max_surge {
        m.insert("maxSurge".into(), amount(v));
    }
    if let Some(v) = &s.canary {
        m.insert("canary".into(), amount(v));
    }
    if let Some(v) = s.auto_promote {
        m.insert("autoPromote".into(), json!(v));
    }
    if !s.alarms.is_empty() {
        m.insert("alarms".into(), json!(s.alarms));
    }
    (!m.is_empty()).then_some(Value::Object(m))
}

fn read_stdin() -> std::io::Result<String> {
    std::io::read_to_string(std::io::stdin())
}

pub(crate) fn emit(output: Output, answer: &Answer, render: fn(&Value) -> String) {
    match output {
        Output::Json => println!("{}", answer.raw.trim_end()),
        Output::Table => print!("{}", render(&answer.json)),
    }
}

fn page_query(
    page: &PageArgs,
    mut query: Vec<(&'static str, String)>,
) -> Vec<(&'static str, String)> {
    if let Some(l) = page.limit {
        query.push(("limit", l.to_string()));
    }
    if let Some(t) = &page.next_token {
        query.push(("nextToken", t.clone()));
    }
    query
}

/// One page, or with `--all` every page merged into one `{"items", "nextToken": null}`.
async fn paged(
    api: &ApiClient,
    segments: &[&str],
    page: &PageArgs,
    query: Vec<(&'static str, String)>,
) -> Result<Answer, Error> {
    let query = page_query(page, query);
    if !page.all {
        return api.get(segments, &query).await;
    }
    let mut items = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut q = query.clone();
        if let Some(t) = &token {
            q.push(("nextToken", t.clone()));
        }
        let answer = api.get(segments, &q).await?;
        if let Some(list) = answer.json["items"].as_array() {
            items.extend(list.iter().cloned());
        }
        match answer.json["nextToken"].as_str() {
            Some(t) if !t.is_empty() && token.as_deref() != Some(t) => token = Some(t.to_owned()),
            _ => break,
        }
    }
    let json = json!({ "items": items, "nextToken": null });
    Ok(Answer {
        raw: json.to_string(),
        json,
    })
}

/// The items of a list of hosts that are `host` (a container instance ARN, or its id).
fn only_host(mut a: Answer, host: &str) -> Answer {
    if let Some(items) = a.json["items"].as_array_mut() {
        items.retain(|h| {
            let arn = h["containerInstanceArn"].as_str().unwrap_or_default();
            arn == host || output::short_arn(arn) == host
        });
    }
    a.raw = a.json.to_string();
    a
}

async fn api_command(api: &ApiClient, output: Output, command: Command) -> Result<Outcome, Error> {
    use http::Method;
    match command {
        Command::Ping => emit(output, &api.get(&["ping"], &[]).await?, output::ping),
        Command::Env(cmd) => match cmd {
            EnvCommand::Create {
                name,
                cluster,
                task_definition,
                strategy,
                placement,
            } => {
                let mut body = json!({
                    "name": name,
                    "instanceGroup": { "cluster": cluster },
                    "taskDefinition": task_definition,
                });
                if let Some(s) = strategy_json(&strategy) {
                    body["updateStrategy"] = s;
                }
                for (k, v) in
                    spec::placement_fields(&placement, None, read_stdin).map_err(Error::Usage)?
                {
                    body[k] = v;
                }
                let a = api
                    .call(Method::POST, &["environments"], &[], Some(&body))
                    .await?;
                emit(output, &a, output::environment);
            }
            EnvCommand::List { cluster, page } => {
                let query = cluster.into_iter().map(|c| ("cluster", c)).collect();
                let a = paged(api, &["environments"], &page, query).await?;
                emit(output, &a, output::environment_list);
            }
            EnvCommand::Get { name } => emit(
                output,
                &api.get(&["environments", &name], &[]).await?,
                output::environment,
            ),
            EnvCommand::Update {
                name,
                task_definition,
                strategy,
                placement,
                clear,
            } => {
                let mut body = serde_json::Map::new();
                if let Some(td) = task_definition {
                    body.insert("taskDefinition".into(), json!(td));
                }
                if let Some(s) = strategy_json(&strategy) {
                    body.insert("updateStrategy".into(), s);
                }
                body.extend(
                    spec::placement_fields(&placement, Some(&clear), read_stdin)
                        .map_err(Error::Usage)?,
                );
                if body.is_empty() {
                    return Err(Error::Usage(
                        "nothing to update: give --task-definition, a strategy flag \
                         (--max-unavailable, --min-healthy-seconds, --failure-threshold, --auto-rollback) \
                         and/or a placement flag (--placement-constraint, --size, --overrides, --env, \
                         --depends-on, or a --no-... flag to clear one)"
                            .into(),
                    ));
                }
                let a = api
                    .call(
                        Method::PUT,
                        &["environments", &name],
                        &[],
                        Some(&Value::Object(body)),
                    )
                    .await?;
                emit(output, &a, output::environment);
            }
            EnvCommand::Delete { name } => {
                let a = api
                    .call(Method::DELETE, &["environments", &name], &[], None)
                    .await?;
                emit(output, &a, output::environment);
            }
            EnvCommand::Revisions { name, page } => {
                let a = paged(api, &["environments", &name, "revisions"], &page, vec![]).await?;
                emit(output, &a, output::revision_list);
            }
            EnvCommand::Revision { name, number } => emit(
                output,
                &api.get(
                    &["environments", &name, "revisions", &number.to_string()],
                    &[],
                )
                .await?,
                output::revision,
            ),
            EnvCommand::Status {
                name,
                watch: true,
                interval,
                ..
            } => return watch::status(api, output, &name, poll_interval(interval)).await,
            EnvCommand::Status { name, hosts, .. } => {
                let query = if hosts {
                    vec![("hosts", "true".to_owned())]
                } else {
                    vec![]
                };
                emit(
                    output,
                    &api.get(&["environments", &name, "status"], &query).await?,
                    output::status,
                );
            }
        },
        Command::Deploy(args) => return deploy(api, output, args).await,
        Command::Deployments(cmd) => match cmd {
            DeploymentsCommand::List { name, page } => {
                let a = paged(api, &["environments", &name, "deployments"], &page, vec![]).await?;
                emit(output, &a, output::deployment_list);
            }
            DeploymentsCommand::Get { name, id } => emit(
                output,
                &api.get(&["environments", &name, "deployments", &id], &[])
                    .await?,
                output::deployment,
            ),
            DeploymentsCommand::Hosts {
                name,
                id,
                host,
                page,
            } => {
                let segments = ["environments", &name, "deployments", &id, "hosts"];
                let a = match host {
                    None => paged(api, &segments, &page, vec![]).await?,
                    Some(host) => {
                        let every = PageArgs {
                            all: true,
                            next_token: None,
                            ..page
                        };
                        only_host(paged(api, &segments, &every, vec![]).await?, &host)
                    }
                };
                emit(output, &a, output::deployment_hosts);
            }
            DeploymentsCommand::Cancel { name, id } => {
                control(api, output, &name, &id, "cancel").await?
            }
            DeploymentsCommand::Promote { name, id } => {
                control(api, output, &name, &id, "promote").await?
            }
            DeploymentsCommand::Pause { name, id } => {
                control(api, output, &name, &id, "pause").await?
            }
            DeploymentsCommand::Resume { name, id } => {
                control(api, output, &name, &id, "resume").await?
            }
        },
        Command::Dlq(_) | Command::Completions { .. } => unreachable!("handled by run"),
    }
    Ok(Outcome::Success)
}

/// POST …/deployments/{id}/{action} (cancel, promote, pause, resume): the deployment after it.
async fn control(
    api: &ApiClient,
    output: Output,
    name: &str,
    id: &str,
    action: &str,
) -> Result<(), Error> {
    let segments = ["environments", name, "deployments", id, action];
    let a = api.call(http::Method::POST, &segments, &[], None).await?;
    emit(output, &a, output::deployment);
    Ok(())
}

/// At least a second between polls.
fn poll_interval(seconds: u64) -> Duration {
    Duration::from_secs(seconds.max(1))
}

async fn deploy(api: &ApiClient, output: Output, args: DeployArgs) -> Result<Outcome, Error> {
    let mut query = Vec::new();
    if let Some(r) = args.revision {
        query.push(("revision", r.to_string()));
    }
    if let Some(t) = &args.token {
        query.push(("deploymentToken", t.clone()));
    }
    let segments = ["environments", args.name.as_str(), "deployments"];
    let body = strategy_json(&args.strategy).map(|s| json!({ "updateStrategy": s }));
    let created = api
        .call(http::Method::POST, &segments, &query, body.as_ref())
        .await?;
    if !args.wait {
        emit(output, &created, output::deployment);
        return Ok(Outcome::Success);
    }
    let id = created.json["id"]
        .as_str()
        .ok_or_else(|| {
            Error::Other(format!(
                "the API answered no deployment id: {}",
                created.raw
            ))
        })?
        .to_owned();
    let wait = wait::Wait {
        name: &args.name,
        id: &id,
        interval: poll_interval(args.interval),
        timeout: Duration::from_secs(args.wait_timeout),
    };
    wait::deployment(api, output, wait, created).await
}

async fn replay(config: &SdkConfig, global: &Global, args: ReplayArgs) -> Result<Outcome, Error> {
    let region = config
        .region()
        .map(|r| r.to_string())
        .ok_or_else(|| Error::Usage("no AWS region: pass --region or set AWS_REGION".into()))?;
    let sqs = aws_sdk_sqs::Client::new(config);
    // One attempt per invocation: a failed event stays in the queue for the next replay rather
    // than running the function again and again within one.
    let lambda = aws_sdk_lambda::Client::from_conf(
        aws_sdk_lambda::config::Builder::from(config)
            .retry_config(RetryConfig::standard().with_max_attempts(1))
            .build(),
    );
    let (queue_url, function, as_sqs_event) = match (args.dlq, args.queue, args.function) {
        (Some(dlq), _, _) => {
            let stack = global
                .stack
                .clone()
                .or_else(|| std::env::var(endpoint::ENV_STACK).ok())
                .filter(|s| !s.trim().is_empty())
                .ok_or_else(|| {
                    Error::Usage(format!(
                        "--dlq needs the stack: pass --stack NAME or set {}",
                        endpoint::ENV_STACK
                    ))
                })?;
            let (queue_key, function_key, wrap) = dlq.outputs();
            let outputs = stack_outputs(config, &stack).await?;
            (
                output(&outputs, &stack, queue_key)?,
                output(&outputs, &stack, function_key)?,
                wrap || args.as_sqs_event,
            )
        }
        (None, Some(q), Some(f)) => (q, f, args.as_sqs_event),
        _ => return Err(Error::Usage("give --queue and --function, or --dlq".into())),
    };
    let opts = replay::Options {
        queue_url,
        function,
        max: args.max,
        dry_run: args.dry_run,
        as_sqs_event,
        visibility_timeout: args.visibility_timeout,
        wait_seconds: args.wait_seconds,
        region,
    };
    let json = global.output == Output::Json;
    let mut print = |line: String| {
        if json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    };
    let summary = replay::run(&sqs, &lambda, &opts, &mut print)
        .await
        .map_err(Error::Other)?;
    if json {
        println!(
            "{}",
            json!({
                "replayed": summary.replayed,
                "failed": summary.failed,
                "unreplayable": summary.unreplayable,
                "wouldReplay": summary.would_replay,
                "dryRun": opts.dry_run,
            })
        );
    } else {
        println!("{}", summary.line(opts.dry_run));
    }
    // A dry run changes nothing, so nothing was left behind by it.
    Ok(if opts.dry_run || summary.ok() {
        Outcome::Success
    } else {
        Outcome::Unsuccessful
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategy_flags_become_the_api_fields_given_only() {
        assert_eq!(strategy_json(&StrategyArgs::default()), None);
        let s = StrategyArgs {
            max_unavailable: Some("25%".into()),
            min_healthy_seconds: Some(30),
            failure_threshold: Some("2".into()),
            auto_rollback: Some(false),
            max_surge: Some("1".into()),
            canary: Some("10%".into()),
            auto_promote: Some(true),
            alarms: vec!["api-5xx".into(), "agent-errors".into()],
        };
        assert_eq!(
            strategy_json(&s),
            Some(
                json!({"maxUnavailable": "25%", "minHealthySeconds": 30, "failureThreshold": 2, "autoRollback": false,
                       "maxSurge": 1, "canary": "10%", "autoPromote": true, "alarms": ["api-5xx", "agent-errors"]})
            )
        );
        let only = StrategyArgs {
            min_healthy_seconds: Some(0),
            ..Default::default()
        };
        assert_eq!(strategy_json(&only), Some(json!({"minHealthySeconds": 0})));
    }
}
