//! `GET /v1/environments/{name}/deployments/{id}/hosts`: what happened on each host a deployment
//! touched, from the histories its environment's slots keep (`domain::history`; one Query of the
//! slots, as the status reads them). Hosts in ARN order, paged in the store's way: `limit`, and an
//! opaque `nextToken` (the last host of the page).

use serde::{Deserialize, Serialize};

use crate::domain::history::{Entry, Event};
use crate::domain::{HostStatus, Slot};
use crate::error::{Error, Result};
use crate::services::status::phase;

/// One host a deployment touched: where it stands now, and its transitions for the deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentHostView {
    pub container_instance_arn: String,
    pub host_status: HostStatus,
    /// vacant, launching, pending, running or stopping.
    pub task: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_arn: Option<String>,
    /// The revision the host runs or launches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<u32>,
    /// Its task runs and counts as healthy.
    pub available: bool,
    /// runs, waiting, unschedulable or notSelected.
    pub placement: &'static str,
    /// Why it waits, cannot run, or is not selected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Its transitions of this deployment, oldest first.
    pub events: Vec<HostEventView>,
}

/// One transition of a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostEventView {
    /// When (RFC 3339, milliseconds).
    pub at: String,
    pub event: Event,
    /// ECS's reason of a failure, why the host cannot run the revision, why a task was stopped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentHostsPage {
    pub items: Vec<DeploymentHostView>,
    pub next_token: Option<String>,
}

/// A page of the hosts `deployment` touched, after the host `next_token` names.
pub fn hosts_page(
    deployment: &str,
    slots: &[Slot],
    limit: usize,
    next_token: Option<&str>,
) -> Result<DeploymentHostsPage> {
    let after = decode_token(next_token)?;
    let mut touched: Vec<&Slot> = slots
        .iter()
        .filter(|s| s.history.of(deployment).next().is_some())
        .filter(|s| {
            after
                .as_deref()
                .is_none_or(|a| s.host.container_instance_arn.as_str() > a)
        })
        .collect();
    touched.sort_by(|a, b| {
        a.host
            .container_instance_arn
            .cmp(&b.host.container_instance_arn)
    });
    let more = touched.len() > limit;
    touched.truncate(limit);
    let next_token = more
        .then(|| {
            touched
                .last()
                .map(|s| encode_token(&s.host.container_instance_arn))
        })
        .flatten();
    Ok(DeploymentHostsPage {
        items: touched.iter().map(|s| view(deployment, s)).collect(),
        next_token,
    })
}

fn view(deployment: &str, s: &Slot) -> DeploymentHostView {
    DeploymentHostView {
        container_instance_arn: s.host.container_instance_arn.clone(),
        host_status: s.host.status,
        task: phase(&s.task),
        task_arn: s.task.task_arn().map(str::to_owned),
        revision: s.launch.as_ref().map(|l| l.revision).filter(|r| *r > 0),
        available: s.is_available(),
        placement: s.placement.label(),
        reason: s.placement.reason().map(str::to_owned),
        events: s
            .history
            .of(deployment)
            .map(|e| event_view(e, &s.cluster_arn))
            .collect(),
    }
}

fn event_view(e: &Entry, cluster_arn: &str) -> HostEventView {
    HostEventView {
        at: rfc3339(e.at_ms),
        event: e.event,
        reason: e.reason.clone(),
        task_arn: e.task_arn(cluster_arn),
        revision: Some(e.revision).filter(|r| *r > 0),
    }
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The token of a page that ends at this host.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Token {
    after: String,
}

fn encode_token(host: &str) -> String {
    let json = serde_json::to_vec(&Token {
        after: host.to_owned(),
    })
    .unwrap_or_default();
    aws_smithy_types::base64::encode(json)
}

fn decode_token(token: Option<&str>) -> Result<Option<String>> {
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let invalid = || Error::invalid("nextToken", "nextToken is not a token this list returned");
    let bytes = aws_smithy_types::base64::decode(token).map_err(|_| invalid())?;
    let t: Token = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if t.after.is_empty() {
        return Err(invalid());
    }
    Ok(Some(t.after))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::history::Entry;
    use crate::domain::{HostState, SlotTask};

    const CLUSTER: &str = "arn:aws:ecs:us-east-1:123456789012:cluster/demo";

    fn slot(n: usize, entries: &[(&str, Event)]) -> Slot {
        let mut s = Slot::new(
            "env",
            CLUSTER,
            HostState {
                container_instance_arn: format!(
                    "arn:aws:ecs:us-east-1:123456789012:container-instance/demo/h{n:02}"
                ),
                status: HostStatus::Active,
                agent_connected: true,
                version: 1,
                other_tasks: None,
            },
        );
        s.task = SlotTask::Running {
            task_arn: format!("arn:aws:ecs:us-east-1:123456789012:task/demo/t{n:02}"),
            version: 2,
            since_ms: 0,
        };
        s.history.record(
            entries
                .iter()
                .enumerate()
                .map(|(i, (d, e))| Entry::new(d, 1_764_000_000_000 + i as i64, *e, 2)),
        );
        s
    }

    #[test]
    fn the_hosts_a_deployment_touched_in_pages_with_their_events_of_it_alone() {
        let slots: Vec<Slot> = (0..5)
            .rev()
            .map(|n| {
                if n == 2 {
                    slot(n, &[("D1", Event::Claimed)]) // another deployment's host only
                } else {
                    slot(
                        n,
                        &[
                            ("D1", Event::Healthy),
                            ("D2", Event::Replaced),
                            ("D2", Event::Claimed),
                        ],
                    )
                }
            })
            .collect();
        let first = hosts_page("D2", &slots, 3, None).unwrap();
        let hosts: Vec<&str> = first
            .items
            .iter()
            .map(|h| h.container_instance_arn.rsplit('/').next().unwrap())
            .collect();
        assert_eq!(hosts, ["h00", "h01", "h03"]);
        let events: Vec<Event> = first.items[0].events.iter().map(|e| e.event).collect();
        assert_eq!(events, [Event::Replaced, Event::Claimed]);
        assert_eq!(first.items[0].events[0].at, "2025-11-24T16:00:00.001Z");
        let token = first.next_token.expect("one more page");
        let second = hosts_page("D2", &slots, 3, Some(&token)).unwrap();
        assert_eq!(second.items.len(), 1);
        assert!(second.items[0].container_instance_arn.ends_with("/h04"));
        assert_eq!(second.next_token, None);
        // Exactly one page: no token.
        assert_eq!(hosts_page("D2", &slots, 4, None).unwrap().next_token, None);
        assert!(hosts_page("D9", &slots, 4, None).unwrap().items.is_empty());
    }

    #[test]
    fn a_token_this_list_did_not_return_is_refused_naming_the_field() {
        let slots = [slot(1, &[("D1", Event::Claimed)])];
        for bad in [
            "x",
            "!!!",
            &aws_smithy_types::base64::encode("{\"pk\":\"ENV#a\"}"),
        ] {
            let err = hosts_page("D1", &slots, 10, Some(bad)).unwrap_err();
            assert_eq!(err.field(), Some("nextToken"), "{bad}");
        }
    }
}
