//! `make bench` (scripts/bench.sh) drives this; each subcommand prints Markdown for docs/benchmarks.md.
//!
//!     bench lambda <name> <binary> <event.json> [runs]   cold start ×runs, then peak RSS over one event
//!     bench coldstart <label> <binary> <runs> [KEY=VALUE...]   cold start only, with extra variables
//!     bench calls [deployer-binary]                      AWS calls per join / per 1,000-host deployment
//!     bench reconcile-fleet                              AWS calls of the reconciler over 5,000 hosts
//!     bench chaos                                        chaos at volume: 1,000 hosts (fakes), moto
//!     bench rollout                                      a rolling update of 1,000 hosts (moto)
//!     bench rollout-model                                a rolling update of 5,000 hosts (fakes)
//!     bench alarm-gated                                  the calls an alarm-gated rollout adds (fakes, moto)
//!     bench reconcile-model                              the reconcile fan-out at fleet scale (fakes)
//!
//! `lambda` and `calls` need MOTO_ENDPOINT (a running moto server; the script starts one).

mod calls;
mod chaos;
mod counted;
mod gates;
mod rates;
mod reconcile_model;
mod rollout;
mod runtime_api;

use std::path::{Path, PathBuf};
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["lambda", name, bin, event, rest @ ..] => {
            let runs = rest.first().map_or(20, |r| r.parse().expect("runs"));
            lambda(name, Path::new(bin), Path::new(event), runs);
        }
        ["coldstart", label, bin, runs, extra @ ..] => {
            coldstart(label, Path::new(bin), runs.parse().expect("runs"), extra);
        }
        ["calls", rest @ ..] => {
            let deployer = rest.first().map(PathBuf::from);
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(calls::run(deployer));
        }
        ["rollout"] => {
            let f = runtime().block_on(rollout::moto());
            println!("{}", f.markdown("on moto"));
        }
        ["chaos"] => println!("{}", chaos::run()),
        ["alarm-gated"] => runtime().block_on(gates::run()),
        ["rollout-model"] => {
            let f = runtime().block_on(rollout::model());
            println!("{}", f.markdown("modelled on the in-process fakes"));
        }
        ["reconcile-model"] => println!("{}", runtime().block_on(reconcile_model::run())),
        ["reconcile-fleet"] => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(calls::reconcile_fleet()),
        _ => {
            eprintln!(
                "usage: bench lambda <name> <binary> <event.json> [runs] \
                 | bench coldstart <label> <binary> <runs> [KEY=VALUE...] | bench calls [deployer-binary] | bench reconcile-fleet"
            );
            std::process::exit(2);
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The environment Lambda gives a function (what the functions read of it), nothing else.
pub fn lambda_env(name: &str, table: &str, endpoint: Option<&str>) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("TABLE_NAME", table),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "x"),
        ("AWS_SECRET_ACCESS_KEY", "x"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_LAMBDA_FUNCTION_NAME", name),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "1"),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    // BENCH_LOG_LEVEL: the functions' log level (AWS_LAMBDA_LOG_LEVEL), to look into a figure.
    if let Ok(level) = std::env::var("BENCH_LOG_LEVEL") {
        env.push(("AWS_LAMBDA_LOG_LEVEL".into(), level));
    }
    if let Some(e) = endpoint {
        env.push(("AWS_ENDPOINT_URL".into(), e.into()));
    }
    env
}

/// Cold starts of `runs` fresh processes, sorted.
fn cold_starts(
    name: &str,
    bin: &Path,
    runs: usize,
    extra: &[(String, String)],
    log: &Path,
) -> Vec<Duration> {
    let mut env = lambda_env(name, "bench", None);
    env.extend(extra.iter().cloned());
    let mut starts: Vec<Duration> = (0..runs)
        .map(|_| match runtime_api::run(bin, name, &env, None, log) {
            Ok(run) => run.cold_start,
            Err(e) => fail(&format!("{name}: cold start: {e} (log: {})", log.display())),
        })
        .collect();
    starts.sort();
    starts
}

fn median(sorted: &[Duration]) -> Duration {
    (sorted[(sorted.len() - 1) / 2] + sorted[sorted.len() / 2]) / 2
}

fn p90(sorted: &[Duration]) -> Duration {
    sorted[(sorted.len() * 9).div_ceil(10) - 1]
}

fn fail(message: &str) -> ! {
    eprintln!("bench: {message}");
    std::process::exit(1)
}

pub fn log_path(name: &str) -> PathBuf {
    let logs = PathBuf::from("target/bench/logs");
    std::fs::create_dir_all(&logs).unwrap();
    logs.join(format!("{name}.log"))
}

/// One Markdown row: cold start over `runs` runs, then one run that serves `event` against moto.
fn lambda(name: &str, bin: &Path, event: &Path, runs: usize) {
    let log = log_path(name);
    let starts = cold_starts(name, bin, runs, &[], &log);
    let (median, p90) = (median(&starts), p90(&starts));

    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(calls::prepare_moto("bench"));
    let body =
        std::fs::read(event).unwrap_or_else(|e| fail(&format!("read {}: {e}", event.display())));
    let env = lambda_env(name, "bench", Some(&integration_tests::moto_endpoint()));
    let run = match runtime_api::run(bin, name, &env, Some(&body), &log) {
        Ok(run) => run,
        // One function's failed invocation is a finding to report, not the end of the bench.
        Err(e) => {
            println!(
                "| {name} | {} | {} | {} – {} | – | – | – | `{}` | **invocation failed**: {} | {} |",
                ms(median),
                ms(p90),
                ms(starts[0]),
                ms(starts[runs - 1]),
                event.display().to_string().trim_start_matches("events/"),
                e.replace('|', "\\|"),
                log_problems(&log),
            );
            return;
        }
    };
    let inv = run.invocation.unwrap();
    let verdict = |ok: bool| if ok { "✓" } else { "✗" };
    println!(
        "| {name} | {} | {} | {} – {} | {} | {} | {} {} | `{}` | {} ({} ms) | {} |",
        ms(median),
        ms(p90),
        ms(starts[0]),
        ms(starts[runs - 1]),
        mb(run.init_hwm_kb),
        mb(inv.peak_hwm_kb),
        verdict(median.as_secs_f64() <= 0.006),
        verdict(inv.peak_hwm_kb * 1024 <= 30_000_000),
        event.display().to_string().trim_start_matches("events/"),
        summarize(&inv.result),
        inv.took.as_millis(),
        log_problems(&log),
    );
}

/// One Markdown row: cold start with extra environment variables (what part of init they change).
fn coldstart(label: &str, bin: &Path, runs: usize, extra: &[&str]) {
    let extra: Vec<(String, String)> = extra
        .iter()
        .map(|kv| {
            let (k, v) = kv
                .split_once('=')
                .unwrap_or_else(|| fail("extra env must be KEY=VALUE"));
            (k.to_owned(), v.to_owned())
        })
        .collect();
    let name = bin.file_name().unwrap().to_string_lossy().to_string();
    let starts = cold_starts(
        &name,
        bin,
        runs,
        &extra,
        &log_path(&format!("{name}-coldstart")),
    );
    println!(
        "| {name} | {label} | {} | {} | {} – {} |",
        ms(median(&starts)),
        ms(p90(&starts)),
        ms(starts[0]),
        ms(starts[runs - 1]),
    );
}

pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

pub fn mb(kb: u64) -> String {
    format!("{:.1} MiB", kb as f64 / 1024.0)
}

/// `HTTP 200` for an API answer, `ok` for an event function's, the message of an error.
fn summarize(result: &str) -> String {
    let (kind, body) = result.split_once(": ").unwrap_or((result, ""));
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let text = match (kind, v.get("statusCode")) {
        ("response", Some(code)) => format!("HTTP {code}"),
        ("response", None) => "ok".to_owned(),
        _ => format!(
            "error: {}",
            v["errorMessage"]
                .as_str()
                .unwrap_or(body)
                .chars()
                .take(90)
                .collect::<String>()
        ),
    };
    text.replace('|', "\\|")
}

/// WARN/ERROR lines the function logged during the measured invocation.
fn log_problems(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let bad: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(r#""level":"WARN""#) || l.contains(r#""level":"ERROR""#))
        .collect();
    match bad.first() {
        None => "none".to_owned(),
        Some(first) => {
            let v: serde_json::Value = serde_json::from_str(first).unwrap_or_default();
            let msg = format!(
                "{} {}",
                v["message"].as_str().unwrap_or(first),
                v["error"].as_str().unwrap_or("")
            );
            format!(
                "{} (first: {})",
                bad.len(),
                msg.trim().chars().take(90).collect::<String>()
            )
            .replace('|', "\\|")
        }
    }
}
