//! Human-readable views of the API's JSON (`--output table`, the default). They read the JSON
//! field by field so a newer API with more fields still renders; a missing field shows `-`.

use serde_json::Value;

/// Columns padded to their widest cell, two spaces apart, no trailing blanks.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            out.push_str(cell);
            if i + 1 < cells.len() {
                out.extend(std::iter::repeat_n(' ', widths[i] - cell.chars().count()));
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// `Key:  value` lines, keys padded to the longest; pairs with an empty value are left out. A
/// value of several lines continues under its first.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let pairs: Vec<&(&str, String)> = pairs.iter().filter(|(_, v)| !v.is_empty()).collect();
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let indent = format!("\n{}", " ".repeat(width + 3));
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{:<width$}  {}\n",
                format!("{k}:"),
                v.replace('\n', &indent),
                width = width + 1
            )
        })
        .collect()
}

/// At most `width` characters; longer text ends in `…` (tables stay aligned; `-o json` has it
/// all).
pub fn clip(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Widths of the long text cells of tables.
pub const REASON_WIDTH: usize = 48;
pub const SUMMARY_WIDTH: usize = 36;

/// A scalar as text; absent or null is empty.
fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn or_dash(s: String) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s
    }
}

/// The resource part of an ARN (`cluster/prod` → `prod`, `task-definition/web:3` → `web:3`).
pub fn short_arn(arn: &str) -> &str {
    if arn.starts_with("arn:") {
        arn.rsplit('/').next().unwrap_or(arn)
    } else {
        arn
    }
}

fn short(v: &Value, key: &str) -> String {
    short_arn(&text(v, key)).to_owned()
}

fn items(v: &Value) -> &[Value] {
    v.get("items")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn next_token(v: &Value, out: &mut String) {
    let t = text(v, "nextToken");
    if !t.is_empty() {
        out.push_str(&format!("(more: --next-token {t}, or --all)\n"));
    }
}

pub fn strategy(s: &Value) -> String {
    if s.is_null() {
        return String::new();
    }
    format!(
        "maxUnavailable {}, minHealthySeconds {}, failureThreshold {}, autoRollback {}",
        or_dash(text(s, "maxUnavailable")),
        or_dash(text(s, "minHealthySeconds")),
        or_dash(text(s, "failureThreshold")),
        or_dash(text(s, "autoRollback")),
    )
}

/// The expressions of `placementConstraints` (`type expression` for a type other than
/// memberOf).
fn constraints(v: &Value) -> Vec<String> {
    list(v, "placementConstraints")
        .iter()
        .map(|c| match text(c, "type").as_str() {
            "" | "memberOf" => text(c, "expression"),
            kind => format!("{kind} {}", text(c, "expression")),
        })
        .collect()
}

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// All constraints on one line: `a`, or `(a) and (b)`.
fn constraints_line(v: &Value) -> String {
    match constraints(v).as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        many => many
            .iter()
            .map(|c| format!("({c})"))
            .collect::<Vec<_>>()
            .join(" and "),
    }
}

/// Each sizing rule as `EXPR → CPU/MEMORY` (`-` for a size it leaves to the task definition).
fn sizing_rules(v: &Value) -> Vec<String> {
    list(v, "sizing")
        .iter()
        .map(|r| {
            format!(
                "{} → {}/{}",
                text(r, "expression"),
                or_dash(text(r, "cpu")),
                or_dash(text(r, "memory"))
            )
        })
        .collect()
}

/// `1 rule`, `3 rules`, or empty.
fn count(n: usize, what: &str) -> String {
    match n {
        0 => String::new(),
        1 => format!("1 {what}"),
        n => format!("{n} {what}s"),
    }
}

/// A TaskOverride in one line: `NAME=VALUE` per environment variable, `command=[…]`,
/// `cpu=`, `memory=`, `memoryReservation=` of a container (each prefixed with `container:` when
/// several containers are overridden), and with `task_size` the task-level `cpu=` / `memory=`.
pub fn overrides_line(o: &Value, task_size: bool) -> String {
    let containers = list(o, "containerOverrides");
    let mut parts = Vec::new();
    for c in containers {
        let prefix = if containers.len() > 1 {
            format!("{}:", text(c, "name"))
        } else {
            String::new()
        };
        for e in list(c, "environment") {
            parts.push(format!("{prefix}{}={}", text(e, "name"), text(e, "value")));
        }
        if let Some(cmd) = c.get("command").filter(|v| !v.is_null()) {
            parts.push(format!("{prefix}command={cmd}"));
        }
        for key in ["cpu", "memory", "memoryReservation"] {
            let v = text(c, key);
            if !v.is_empty() {
                parts.push(format!("{prefix}{key}={v}"));
            }
        }
    }
    if task_size {
        for key in ["cpu", "memory"] {
            let v = text(o, key);
            if !v.is_empty() {
                parts.push(format!("task {key}={v}"));
            }
        }
    }
    parts.join(", ")
}

/// A list of names, comma separated.
fn names(v: &Value, key: &str) -> String {
    list(v, key)
        .iter()
        .map(|n| n.as_str().map_or_else(|| n.to_string(), str::to_owned))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The placement fields of a revision's desired state, as `fields` pairs.
fn placement_pairs(v: &Value) -> [(&'static str, String); 4] {
    [
        ("Placement", constraints(v).join("\n")),
        ("Sizing", sizing_rules(v).join("\n")),
        ("Overrides", overrides_line(&v["overrides"], true)),
        ("Depends on", names(v, "dependsOn")),
    ]
}

pub fn ping(v: &Value) -> String {
    format!("{}\n", or_dash(text(v, "status")))
}

pub fn environment(v: &Value) -> String {
    let revisions = match (text(v, "latestRevision"), text(v, "activeRevision")) {
        (l, a) if l.is_empty() && a.is_empty() => String::new(),
        (l, a) if a.is_empty() => format!("latest {l}, none deployed"),
        (l, a) => format!("latest {l}, deployed {a}"),
    };
    let deployment = match (
        text(v, "activeDeploymentId"),
        text(v, "currentDeploymentId"),
    ) {
        (a, _) if !a.is_empty() => format!("{a} (in progress)"),
        (_, c) => c,
    };
    let mut pairs = vec![
        ("Name", text(v, "name")),
        ("Status", text(v, "status")),
        ("Health", text(v, "health")),
        ("Cluster", text(&v["instanceGroup"], "cluster")),
        ("Task definition", text(v, "taskDefinition")),
        ("Deployed task definition", text(v, "activeTaskDefinition")),
        ("Revisions", revisions),
        ("Update strategy", strategy(&v["updateStrategy"])),
    ];
    pairs.extend(placement_pairs(v));
    pairs.extend([
        ("Dependents", names(v, "dependents")),
        ("Deployment", deployment),
        ("Deployment token", text(v, "deploymentToken")),
        ("Created", text(v, "createdAt")),
        ("Updated", text(v, "updatedAt")),
    ]);
    fields(&pairs)
}

pub fn environment_list(v: &Value) -> String {
    let list = items(v);
    let mut out = if list.is_empty() {
        "no environments\n".to_owned()
    } else {
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|e| {
                vec![
                    text(e, "name"),
                    or_dash(short(&e["instanceGroup"], "cluster")),
                    or_dash(short(e, "taskDefinition")),
                    format!(
                        "{}/{}",
                        or_dash(text(e, "activeRevision")),
                        or_dash(text(e, "latestRevision"))
                    ),
                    or_dash(text(e, "health")),
                    or_dash(text(e, "status")),
                    or_dash(clip(&constraints_line(e), SUMMARY_WIDTH)),
                    or_dash(names(e, "dependsOn")),
                ]
            })
            .collect();
        table(
            &[
                "NAME",
                "CLUSTER",
                "TASK DEFINITION",
                "DEPLOYED/LATEST",
                "HEALTH",
                "STATUS",
                "PLACEMENT",
                "DEPENDS ON",
            ],
            &rows,
        )
    };
    next_token(v, &mut out);
    out
}

pub fn revision(v: &Value) -> String {
    let mut pairs = vec![
        ("Environment", text(v, "environmentName")),
        ("Revision", text(v, "number")),
        ("Task definition", text(v, "taskDefinition")),
        ("Update strategy", strategy(&v["updateStrategy"])),
    ];
    pairs.extend(placement_pairs(v));
    pairs.push(("Created", text(v, "createdAt")));
    fields(&pairs)
}

pub fn revision_list(v: &Value) -> String {
    let rows: Vec<Vec<String>> = items(v)
        .iter()
        .map(|r| {
            let s = &r["updateStrategy"];
            vec![
                text(r, "number"),
                or_dash(short(r, "taskDefinition")),
                or_dash(text(s, "maxUnavailable")),
                or_dash(text(s, "minHealthySeconds")),
                or_dash(text(s, "failureThreshold")),
                or_dash(text(s, "autoRollback")),
                or_dash(text(r, "createdAt")),
                or_dash(clip(&constraints_line(r), SUMMARY_WIDTH)),
                or_dash(count(list(r, "sizing").len(), "rule")),
                or_dash(clip(&overrides_line(&r["overrides"], true), SUMMARY_WIDTH)),
                or_dash(names(r, "dependsOn")),
            ]
        })
        .collect();
    let mut out = if rows.is_empty() {
        "no revisions\n".to_owned()
    } else {
        table(
            &[
                "REVISION",
                "TASK DEFINITION",
                "MAX UNAVAILABLE",
                "MIN HEALTHY S",
                "FAILURE THRESHOLD",
                "AUTO ROLLBACK",
                "CREATED",
                "PLACEMENT",
                "SIZING",
                "OVERRIDES",
                "DEPENDS ON",
            ],
            &rows,
        )
    };
    next_token(v, &mut out);
    out
}

/// `running 2, pending 1, failed 0 of 3 hosts`
pub fn deployment_progress(d: &Value) -> String {
    format!(
        "running {}, pending {}, failed {} of {} hosts",
        or_dash(text(d, "runningCount")),
        or_dash(text(d, "pendingCount")),
        or_dash(text(d, "failedHosts")),
        or_dash(text(d, "desiredCount")),
    )
}

fn failures(d: &Value) -> String {
    let list = d.get("failures").and_then(Value::as_array);
    let rows: Vec<Vec<String>> = list
        .into_iter()
        .flatten()
        .map(|f| vec![short(f, "containerInstanceArn"), text(f, "reason")])
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    format!(
        "\nFailed hosts:\n{}",
        table(&["CONTAINER INSTANCE", "REASON"], &rows)
    )
}

pub fn deployment(d: &Value) -> String {
    let revision = match text(d, "previousRevision") {
        p if p.is_empty() => text(d, "revision"),
        p => format!("{} (previous {p})", text(d, "revision")),
    };
    let mut out = fields(&[
        ("Deployment", text(d, "id")),
        ("Environment", text(d, "environmentName")),
        ("Status", text(d, "status")),
        ("Revision", revision),
        ("Task definition", text(d, "taskDefinition")),
        ("Rollback of", text(d, "rollbackOf")),
        ("Hosts", deployment_progress(d)),
        ("Halted", text(d, "haltedReason")),
        ("Update strategy", strategy(&d["updateStrategy"])),
        ("Created", text(d, "createdAt")),
        ("Finished", text(d, "finishedAt")),
    ]);
    out.push_str(&failures(d));
    out
}

pub fn deployment_list(v: &Value) -> String {
    let rows: Vec<Vec<String>> = items(v)
        .iter()
        .map(|d| {
            vec![
                text(d, "id"),
                or_dash(text(d, "status")),
                or_dash(text(d, "revision")),
                or_dash(short(d, "taskDefinition")),
                or_dash(text(d, "desiredCount")),
                or_dash(text(d, "runningCount")),
                or_dash(text(d, "failedHosts")),
                or_dash(text(d, "createdAt")),
                or_dash(text(d, "finishedAt")),
            ]
        })
        .collect();
    let mut out = if rows.is_empty() {
        "no deployments\n".to_owned()
    } else {
        table(
            &[
                "ID",
                "STATUS",
                "REVISION",
                "TASK DEFINITION",
                "DESIRED",
                "RUNNING",
                "FAILED",
                "CREATED",
                "FINISHED",
            ],
            &rows,
        )
    };
    next_token(v, &mut out);
    out
}

/// A deployment's hosts: each host and where it stands, then its transitions, one a line.
pub fn deployment_hosts(v: &Value) -> String {
    let mut out = String::new();
    for h in items(v) {
        let mut state = or_dash(text(h, "task"));
        if h["available"] == Value::Bool(true) {
            state.push_str(", available");
        }
        let revision = text(h, "revision");
        if !revision.is_empty() {
            state.push_str(&format!(", revision {revision}"));
        }
        let placement = text(h, "placement");
        if !placement.is_empty() && placement != "runs" {
            match text(h, "reason") {
                r if r.is_empty() => state.push_str(&format!("; {placement}")),
                r => state.push_str(&format!("; {placement}: {r}")),
            }
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!(
            "{} ({}): {state}\n",
            short(h, "containerInstanceArn"),
            or_dash(text(h, "hostStatus"))
        ));
        let rows: Vec<Vec<String>> = list(h, "events")
            .iter()
            .map(|e| {
                vec![
                    or_dash(text(e, "at")),
                    or_dash(text(e, "event")),
                    or_dash(text(e, "revision")),
                    or_dash(short(e, "taskArn")),
                    or_dash(text(e, "reason")),
                ]
            })
            .collect();
        let events = table(&["TIME", "EVENT", "REVISION", "TASK", "REASON"], &rows);
        for line in events.lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    if out.is_empty() {
        out.push_str("no hosts\n");
    }
    next_token(v, &mut out);
    out
}

pub fn status(v: &Value) -> String {
    let health = match text(v, "reason") {
        r if r.is_empty() => text(v, "health"),
        r => format!("{} ({r})", text(v, "health")),
    };
    let d = &v["deployment"];
    let deployment = if d.is_object() {
        format!(
            "{} {} (revision {}): {}",
            text(d, "id"),
            text(d, "status"),
            or_dash(text(d, "revision")),
            deployment_progress(d)
        )
    } else {
        String::new()
    };
    let mut out = fields(&[
        ("Environment", text(v, "name")),
        ("Health", health),
        (
            "Revision",
            format!(
                "deployed {}, latest {}",
                or_dash(text(v, "activeRevision")),
                or_dash(text(v, "latestRevision"))
            ),
        ),
        ("Deployment", deployment),
    ]);
    let c = &v["counts"];
    let keys = [
        "desired",
        "current",
        "ready",
        "updated",
        "available",
        "misscheduled",
        "unavailable",
        "unschedulable",
        "waiting",
    ];
    let headers: Vec<String> = keys.iter().map(|k| k.to_ascii_uppercase()).collect();
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    out.push('\n');
    out.push_str(&table(
        &headers,
        &[keys.iter().map(|k| or_dash(text(c, k))).collect()],
    ));
    if let Some(hosts) = v.get("hosts").and_then(Value::as_array) {
        let rows: Vec<Vec<String>> = hosts
            .iter()
            .map(|h| {
                let launch = &h["launch"];
                let size = if launch.is_object() {
                    format!(
                        "{}/{}",
                        or_dash(text(launch, "cpu")),
                        or_dash(text(launch, "memory"))
                    )
                } else {
                    String::new()
                };
                vec![
                    short(h, "containerInstanceArn"),
                    or_dash(text(h, "hostStatus")),
                    or_dash(text(h, "agentConnected")),
                    or_dash(text(h, "placement")),
                    or_dash(text(h, "task")),
                    or_dash(short(h, "taskDefinition")),
                    or_dash(text(launch, "revision")),
                    or_dash(size),
                    or_dash(clip(
                        &overrides_line(&launch["overrides"], false),
                        SUMMARY_WIDTH,
                    )),
                    or_dash(text(h, "updated")),
                    or_dash(text(h, "available")),
                    or_dash(clip(&text(h, "reason"), REASON_WIDTH)),
                    or_dash(clip(&text(h, "lastFailure"), REASON_WIDTH)),
                ]
            })
            .collect();
        out.push('\n');
        if rows.is_empty() {
            out.push_str("no hosts\n");
        } else {
            out.push_str(&table(
                &[
                    "CONTAINER INSTANCE",
                    "HOST",
                    "AGENT",
                    "PLACEMENT",
                    "TASK",
                    "TASK DEFINITION",
                    "REVISION",
                    "CPU/MEMORY",
                    "OVERRIDES",
                    "UPDATED",
                    "AVAILABLE",
                    "REASON",
                    "LAST FAILURE",
                ],
                &rows,
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env() -> Value {
        json!({
            "name": "web",
            "instanceGroup": {"cluster": "arn:aws:ecs:us-east-1:123456789012:cluster/prod"},
            "taskDefinition": "arn:aws:ecs:us-east-1:123456789012:task-definition/web:3",
            "latestRevision": 2,
            "updateStrategy": {"maxUnavailable": "25%", "minHealthySeconds": 30, "failureThreshold": 1, "autoRollback": true},
            "deploymentToken": "tok",
            "health": "healthy",
            "status": "active",
            "placementConstraints": [],
            "sizing": [],
            "dependsOn": [],
            "currentDeploymentId": "01DEP",
            "activeRevision": 1,
            "createdAt": "2026-12-01T00:00:00Z",
            "updatedAt": "2026-12-01T00:01:00Z",
            "version": 4
        })
    }

    #[test]
    fn tables_align_columns_without_trailing_blanks() {
        let t = table(
            &["A", "LONG HEADER", "C"],
            &[
                vec!["wide cell".into(), "x".into(), "".into()],
                vec!["y".into(), "z".into(), "last".into()],
            ],
        );
        assert_eq!(
            t,
            "A          LONG HEADER  C\n\
             wide cell  x\n\
             y          z            last\n"
        );
    }

    #[test]
    fn environment_view_names_every_part() {
        // Absent fields (no deployed task definition yet) are left out, not shown empty.
        assert_eq!(
            environment(&env()),
            "Name:              web\n\
             Status:            active\n\
             Health:            healthy\n\
             Cluster:           arn:aws:ecs:us-east-1:123456789012:cluster/prod\n\
             Task definition:   arn:aws:ecs:us-east-1:123456789012:task-definition/web:3\n\
             Revisions:         latest 2, deployed 1\n\
             Update strategy:   maxUnavailable 25%, minHealthySeconds 30, failureThreshold 1, autoRollback true\n\
             Deployment:        01DEP\n\
             Deployment token:  tok\n\
             Created:           2026-12-01T00:00:00Z\n\
             Updated:           2026-12-01T00:01:00Z\n"
        );
        let mut deploying = env();
        deploying["activeDeploymentId"] = json!("01NEW");
        assert!(environment(&deploying).contains("Deployment:        01NEW (in progress)\n"));
    }

    #[test]
    fn a_deleted_environment_shows_what_the_api_said() {
        assert_eq!(
            environment(&json!({"name": "web", "status": "deleted"})),
            "Name:    web\nStatus:  deleted\n"
        );
    }

    #[test]
    fn environment_list_uses_short_names_and_shows_the_next_token() {
        let out = environment_list(&json!({"items": [env()], "nextToken": "abc"}));
        assert_eq!(
            out,
            "NAME  CLUSTER  TASK DEFINITION  DEPLOYED/LATEST  HEALTH   STATUS  PLACEMENT  DEPENDS ON\n\
             web   prod     web:3            1/2              healthy  active  -          -\n\
             (more: --next-token abc, or --all)\n"
        );
        let mut placed = env();
        placed["name"] = json!("agent");
        placed["placementConstraints"] = json!([
            {"type": "memberOf", "expression": "attribute:ecs.instance-type =~ m5\\..*"},
            {"type": "memberOf", "expression": "attribute:ecs.os-type == linux"}
        ]);
        placed["dependsOn"] = json!(["web", "base"]);
        let out = environment_list(&json!({"items": [env(), placed]}));
        assert_eq!(
            out,
            "NAME   CLUSTER  TASK DEFINITION  DEPLOYED/LATEST  HEALTH   STATUS  PLACEMENT                             DEPENDS ON\n\
             web    prod     web:3            1/2              healthy  active  -                                     -\n\
             agent  prod     web:3            1/2              healthy  active  (attribute:ecs.instance-type =~ m5\\…  web, base\n"
        );
        assert_eq!(
            environment_list(&json!({"items": [], "nextToken": null})),
            "no environments\n"
        );
    }

    #[test]
    fn environment_view_shows_placement_one_item_a_line() {
        let mut e = env();
        e["placementConstraints"] = json!([
            {"type": "memberOf", "expression": "attribute:ecs.instance-type =~ m5\\..*"},
            {"type": "memberOf", "expression": "agentConnected == true"}
        ]);
        e["sizing"] = json!([
            {"expression": "attribute:ecs.instance-type == m5.2xlarge", "cpu": "2048", "memory": "4096"},
            {"expression": "attribute:ecs.instance-type =~ m5\\..*", "memory": "2048"}
        ]);
        e["overrides"] = json!({"containerOverrides": [
            {"name": "agent", "environment": [{"name": "AZ", "value": "${host.availabilityZone}"}], "command": ["run", "--fast"]}
        ], "cpu": "512"});
        e["dependsOn"] = json!(["base"]);
        e["dependents"] = json!(["logs", "metrics"]);
        let out = environment(&e);
        assert!(
            out.contains(
                "Update strategy:   maxUnavailable 25%, minHealthySeconds 30, failureThreshold 1, autoRollback true\n\
                 Placement:         attribute:ecs.instance-type =~ m5\\..*\n\
                \x20                  agentConnected == true\n\
                 Sizing:            attribute:ecs.instance-type == m5.2xlarge → 2048/4096\n\
                \x20                  attribute:ecs.instance-type =~ m5\\..* → -/2048\n\
                 Overrides:         AZ=${host.availabilityZone}, command=[\"run\",\"--fast\"], task cpu=512\n\
                 Depends on:        base\n\
                 Dependents:        logs, metrics\n\
                 Deployment:        01DEP\n"
            ),
            "{out}"
        );
    }

    #[test]
    fn overrides_in_one_line_name_containers_only_when_several() {
        let two = json!({"containerOverrides": [
            {"name": "a", "environment": [{"name": "X", "value": "1"}, {"name": "Y", "value": ""}], "memoryReservation": 64},
            {"name": "b", "cpu": 256, "memory": 512}
        ], "memory": "2048"});
        assert_eq!(
            overrides_line(&two, false),
            "a:X=1, a:Y=, a:memoryReservation=64, b:cpu=256, b:memory=512"
        );
        assert_eq!(
            overrides_line(&two, true),
            "a:X=1, a:Y=, a:memoryReservation=64, b:cpu=256, b:memory=512, task memory=2048"
        );
        assert_eq!(overrides_line(&Value::Null, true), "");
        assert_eq!(clip("abcdef", 6), "abcdef");
        assert_eq!(clip("abcdefg", 6), "abcde…");
        assert_eq!(clip("ääääää", 3), "ää…");
    }

    #[test]
    fn deployment_view_lists_failed_hosts() {
        let d = json!({
            "id": "01DEP", "environmentName": "web", "status": "failed", "revision": 2,
            "previousRevision": 1, "taskDefinition": "arn:aws:ecs:us-east-1:1:task-definition/web:4",
            "desiredCount": 3, "pendingCount": 0, "runningCount": 2, "failedHosts": 1,
            "haltedReason": "1 host(s) failed, threshold 0",
            "failures": [{"containerInstanceArn": "arn:aws:ecs:us-east-1:1:container-instance/prod/abc", "reason": "RESOURCE:MEMORY"}],
            "createdAt": "t0", "updatedAt": "t1", "finishedAt": "t2"
        });
        let out = deployment(&d);
        assert!(out.contains("Status:           failed\n"), "{out}");
        assert!(out.contains("Revision:         2 (previous 1)\n"), "{out}");
        assert!(
            out.contains("Hosts:            running 2, pending 0, failed 1 of 3 hosts\n"),
            "{out}"
        );
        assert!(
            out.ends_with(
                "Failed hosts:\nCONTAINER INSTANCE  REASON\nabc                 RESOURCE:MEMORY\n"
            ),
            "{out}"
        );
    }

    #[test]
    fn status_view_shows_counts_and_hosts_when_asked() {
        let v = json!({
            "name": "web", "activeRevision": 1, "latestRevision": 1,
            "counts": {"desired": 2, "current": 2, "ready": 1, "updated": 2, "available": 1, "misscheduled": 0, "unavailable": 1, "unschedulable": 0, "waiting": 0},
            "health": "healthy",
            "deployment": {"id": "01DEP", "status": "running", "revision": 1, "desiredCount": 2, "runningCount": 1, "pendingCount": 1, "failedHosts": 0},
            "hosts": [{"containerInstanceArn": "arn:aws:ecs:r:1:container-instance/prod/i-1", "hostStatus": "ACTIVE", "agentConnected": true, "task": "running", "taskDefinition": "arn:aws:ecs:r:1:task-definition/web:1", "updated": true, "available": true}]
        });
        let out = status(&v);
        assert!(out.contains(
            "Deployment:   01DEP running (revision 1): running 1, pending 1, failed 0 of 2 hosts\n"
        ), "{out}");
        assert!(
            out.contains(
                "DESIRED  CURRENT  READY  UPDATED  AVAILABLE  MISSCHEDULED  UNAVAILABLE  UNSCHEDULABLE  WAITING\n\
                 2        2        1      2        1          0             1            0              0\n"
            ),
            "{out}"
        );
        // An API without placement yet: its hosts still render.
        assert!(out.contains(
            "i-1                 ACTIVE  true   -          running  web:1            -         -           -          true     true       -       -\n"
        ), "{out}");
        let mut without = v.clone();
        without.as_object_mut().unwrap().remove("hosts");
        assert!(!status(&without).contains("CONTAINER INSTANCE"));
    }

    #[test]
    fn status_hosts_show_placement_reasons_and_what_each_host_got() {
        let v = json!({
            "name": "agent", "activeRevision": 2, "latestRevision": 2, "health": "healthy",
            "counts": {"desired": 2, "current": 1, "ready": 1, "updated": 1, "available": 1, "misscheduled": 0, "unavailable": 1, "unschedulable": 1, "waiting": 1},
            "hosts": [
                {"containerInstanceArn": "arn:aws:ecs:r:1:container-instance/prod/i-1", "hostStatus": "ACTIVE", "agentConnected": true,
                 "placement": "runs", "task": "running", "taskDefinition": "arn:aws:ecs:r:1:task-definition/agent:4",
                 "launch": {"revision": 2, "cpu": 1024, "memory": 2048, "overrides": {"containerOverrides": [
                     {"name": "agent", "environment": [{"name": "AZ", "value": "us-east-1a"}, {"name": "TYPE", "value": "m5.large"}]}]}},
                 "updated": true, "available": true},
                {"containerInstanceArn": "arn:aws:ecs:r:1:container-instance/prod/i-2", "hostStatus": "ACTIVE", "agentConnected": true,
                 "placement": "waiting", "reason": "waits for base to run here", "task": "vacant",
                 "launch": {"revision": 2, "cpu": 512, "memory": 1024}, "updated": false, "available": false},
                {"containerInstanceArn": "arn:aws:ecs:r:1:container-instance/prod/i-3", "hostStatus": "ACTIVE", "agentConnected": true,
                 "placement": "unschedulable", "reason": "needs 2048 MiB memory, 512 free (after the tasks of web, base and metrics-collector)",
                 "task": "vacant", "updated": false, "available": false, "lastFailure": "RESOURCE:MEMORY on the previous attempt at 2026-12-01T00:00:00Z"},
                {"containerInstanceArn": "arn:aws:ecs:r:1:container-instance/prod/i-4", "hostStatus": "ACTIVE", "agentConnected": true,
                 "placement": "notSelected", "reason": "not selected by attribute:ecs.instance-type =~ m5\\..*", "task": "vacant",
                 "updated": false, "available": false}
            ]
        });
        let out = status(&v);
        assert!(
            out.contains(
                "DESIRED  CURRENT  READY  UPDATED  AVAILABLE  MISSCHEDULED  UNAVAILABLE  UNSCHEDULABLE  WAITING\n\
                 2        1        1      1        1          0             1            1              1\n"
            ),
            "{out}"
        );
        let hosts = out.split_once("\n\nCONTAINER").unwrap().1;
        assert_eq!(
            format!("CONTAINER{hosts}"),
            "CONTAINER INSTANCE  HOST    AGENT  PLACEMENT      TASK     TASK DEFINITION  REVISION  CPU/MEMORY  OVERRIDES                     UPDATED  AVAILABLE  REASON                                            LAST FAILURE\n\
             i-1                 ACTIVE  true   runs           running  agent:4          2         1024/2048   AZ=us-east-1a, TYPE=m5.large  true     true       -                                                 -\n\
             i-2                 ACTIVE  true   waiting        vacant   -                2         512/1024    -                             false    false      waits for base to run here                        -\n\
             i-3                 ACTIVE  true   unschedulable  vacant   -                -         -           -                             false    false      needs 2048 MiB memory, 512 free (after the task…  RESOURCE:MEMORY on the previous attempt at 2026…\n\
             i-4                 ACTIVE  true   notSelected    vacant   -                -         -           -                             false    false      not selected by attribute:ecs.instance-type =~ …  -\n"
        );
    }

    #[test]
    fn a_deployments_hosts_each_with_its_transitions() {
        let v = json!({"items": [
            {"containerInstanceArn": "arn:aws:ecs:r:1:container-instance/prod/ci-1", "hostStatus": "ACTIVE",
             "task": "running", "taskArn": "arn:aws:ecs:r:1:task/prod/new1", "revision": 2, "available": true,
             "placement": "runs", "events": [
                {"at": "2026-12-01T08:00:00.000Z", "event": "replaced", "taskArn": "arn:aws:ecs:r:1:task/prod/old1", "revision": 2},
                {"at": "2026-12-01T08:00:01.000Z", "event": "claimed", "revision": 2},
                {"at": "2026-12-01T08:00:01.500Z", "event": "started", "taskArn": "arn:aws:ecs:r:1:task/prod/new1", "revision": 2}]},
            {"containerInstanceArn": "arn:aws:ecs:r:1:container-instance/prod/ci-2", "hostStatus": "ACTIVE",
             "task": "vacant", "available": false, "placement": "unschedulable",
             "reason": "needs 512 MiB memory, 300 free", "events": [
                {"at": "2026-12-01T08:00:02.000Z", "event": "unschedulable", "revision": 2,
                 "reason": "needs 512 MiB memory, 300 free"}]}],
            "nextToken": "t2"});
        assert_eq!(
            deployment_hosts(&v),
            "ci-1 (ACTIVE): running, available, revision 2\n  \
               TIME                      EVENT     REVISION  TASK  REASON\n  \
               2026-12-01T08:00:00.000Z  replaced  2         old1  -\n  \
               2026-12-01T08:00:01.000Z  claimed   2         -     -\n  \
               2026-12-01T08:00:01.500Z  started   2         new1  -\n\
             \n\
             ci-2 (ACTIVE): vacant; unschedulable: needs 512 MiB memory, 300 free\n  \
               TIME                      EVENT          REVISION  TASK  REASON\n  \
               2026-12-01T08:00:02.000Z  unschedulable  2         -     needs 512 MiB memory, 300 free\n\
             (more: --next-token t2, or --all)\n"
        );
        assert_eq!(
            deployment_hosts(&json!({"items": [], "nextToken": null})),
            "no hosts\n"
        );
    }

    #[test]
    fn lists_of_revisions_and_deployments() {
        let r = revision_list(&json!({"items": [{"environmentName": "web", "number": 1,
            "taskDefinition": "arn:aws:ecs:r:1:task-definition/web:1",
            "updateStrategy": {"maxUnavailable": 1, "minHealthySeconds": 0, "failureThreshold": "20%", "autoRollback": false},
            "createdAt": "t0", "placementConstraints": [], "sizing": [], "dependsOn": []},
            {"environmentName": "web", "number": 2,
            "taskDefinition": "arn:aws:ecs:r:1:task-definition/web:2",
            "updateStrategy": {"maxUnavailable": 1, "minHealthySeconds": 0, "failureThreshold": "20%", "autoRollback": false},
            "placementConstraints": [{"type": "memberOf", "expression": "attribute:ecs.os-type == linux"}],
            "sizing": [{"expression": "attribute:ecs.instance-type == m5.large", "cpu": "1024"},
                       {"expression": "attribute:ecs.instance-type == m5.xlarge", "cpu": "2048"}],
            "overrides": {"containerOverrides": [{"name": "web", "environment": [{"name": "AZ", "value": "${host.availabilityZone}"}]}]},
            "dependsOn": ["base"],
            "createdAt": "t1"}], "nextToken": null}));
        assert_eq!(
            r,
            "REVISION  TASK DEFINITION  MAX UNAVAILABLE  MIN HEALTHY S  FAILURE THRESHOLD  AUTO ROLLBACK  CREATED  PLACEMENT                       SIZING   OVERRIDES                    DEPENDS ON\n\
             1         web:1            1                0              20%                false          t0       -                               -        -                            -\n\
             2         web:2            1                0              20%                false          t1       attribute:ecs.os-type == linux  2 rules  AZ=${host.availabilityZone}  base\n"
        );
        let one = revision(
            &json!({"environmentName": "web", "number": 3, "taskDefinition": "td",
            "sizing": [{"expression": "attribute:a exists", "memory": "4096"}], "createdAt": "t2"}),
        );
        assert_eq!(
            one,
            "Environment:      web\n\
             Revision:         3\n\
             Task definition:  td\n\
             Sizing:           attribute:a exists → -/4096\n\
             Created:          t2\n"
        );
        let d = deployment_list(
            &json!({"items": [{"id": "01A", "status": "completed", "revision": 1,
            "taskDefinition": "arn:aws:ecs:r:1:task-definition/web:1", "desiredCount": 3, "runningCount": 3,
            "failedHosts": 0, "createdAt": "t0", "finishedAt": "t1"}]}),
        );
        assert_eq!(
            d.lines().nth(1).unwrap(),
            "01A  completed  1         web:1            3        3        0       t0       t1"
        );
        assert_eq!(deployment_list(&json!({"items": []})), "no deployments\n");
    }
}
