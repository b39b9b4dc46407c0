//! `/v1/environments/{name}/deployments[/{id}[/hosts]]` (Blox v0.3 compatible, plus counts,
//! reasons and each host's history).

use serde_json::json;

use crate::clock::now_rfc3339;
use crate::domain::{Deployed, Deployment, DeploymentTransition, Environment, Revision};
use crate::error::{Error, Result};
use crate::http::{not_found_route, ApiRequest, ApiResponse};
use crate::ports::Store;
use crate::services::environments_api::get_live;
use crate::services::history;
use crate::services::views::DeploymentView;

pub async fn route<S: Store + ?Sized>(store: &S, req: &ApiRequest) -> Result<ApiResponse> {
    match (req.method.as_str(), req.seg().as_slice()) {
        ("POST", ["environments", name, "deployments"]) => {
            let (revision, strategy) = requested_revision(req)?;
            let token = req.param("deploymentToken");
            let dep = create_with(store, name, token, revision, strategy.as_ref()).await?;
            ApiResponse::ok(&DeploymentView::from(&dep))
        }
        ("GET", ["environments", name, "deployments"]) => {
            get_live(store, name).await?;
            let page = store
                .list_deployments(name, req.limit()?, req.param("nextToken"))
                .await?;
            let items: Vec<DeploymentView> = page.items.iter().map(DeploymentView::from).collect();
            ApiResponse::ok(&json!({ "items": items, "nextToken": page.next_token }))
        }
        ("GET", ["environments", name, "deployments", id]) => {
            ApiResponse::ok(&DeploymentView::from(&get(store, name, id).await?))
        }
        ("GET", ["environments", name, "deployments", id, "hosts"]) => {
            let limit = req.limit()?;
            let dep = get(store, name, id).await?;
            let slots = store.slots_of(name).await?;
            let page = history::hosts_page(&dep.id, &slots, limit, req.param("nextToken"))?;
            ApiResponse::ok(&page)
        }
        ("POST", ["environments", name, "deployments", id, "cancel"]) => {
            ApiResponse::ok(&DeploymentView::from(&cancel(store, name, id).await?))
        }
        ("POST", ["environments", name, "deployments", id, "promote"]) => {
            ApiResponse::ok(&DeploymentView::from(&promote(store, name, id).await?))
        }
        ("POST", ["environments", name, "deployments", id, "pause"]) => {
            let change = DeploymentTransition::pause(&now_rfc3339());
            ApiResponse::ok(&DeploymentView::from(
                &control(store, name, id, &change, "paused").await?,
            ))
        }
        ("POST", ["environments", name, "deployments", id, "resume"]) => {
            let change = DeploymentTransition::resume();
            ApiResponse::ok(&DeploymentView::from(
                &control(store, name, id, &change, "resumed").await?,
            ))
        }
        _ => Err(not_found_route(req)),
    }
}

async fn get<S: Store + ?Sized>(store: &S, name: &str, id: &str) -> Result<Deployment> {
    get_live(store, name).await?;
    store.get_deployment(name, id).await?.ok_or_else(|| {
        Error::not_found(format!(
            "deployment '{id}' of environment '{name}' not found"
        ))
    })
}

/// `?revision=N` or a body `{"revision": N}` (the query wins); neither means the latest revision.
/// The body may also carry `updateStrategy`: changes for this deployment only (a canary, a surge).
/// A body is checked even when the query names the revision: invalid input is never ignored.
fn requested_revision(req: &ApiRequest) -> Result<(Option<u32>, Option<serde_json::Value>)> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Body {
        revision: Option<u32>,
        update_strategy: Option<serde_json::Value>,
    }
    let bad = || Error::invalid("revision", "revision must be a revision number (1, 2, …)");
    let has_body = req
        .body
        .as_deref()
        .is_some_and(|b| !b.iter().all(u8::is_ascii_whitespace));
    let (from_body, strategy) = match has_body {
        true => {
            let body = req.json::<Body>()?;
            match body.revision {
                Some(0) => return Err(bad()),
                r => (r, body.update_strategy),
            }
        }
        false => (None, None),
    };
    // Not `param()`: an empty `?revision=` is no revision number.
    let revision = match req.query.get("revision") {
        Some(r) => r
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .map(Some)
            .ok_or_else(bad)?,
        None => from_body,
    };
    Ok((revision, strategy))
}

/// Checks the token and that no deployment is in progress, then records a deployment of
/// `revision` (default: the latest); the deployer carries it out.
pub async fn create<S: Store + ?Sized>(
    store: &S,
    name: &str,
    token: Option<&str>,
    revision: Option<u32>,
) -> Result<Deployment> {
    create_with(store, name, token, revision, None).await
}

/// As `create`, the revision's update strategy changed by `strategy` for this deployment only
/// (checked as a PUT's would be: a bad field is a 400 naming it).
pub async fn create_with<S: Store + ?Sized>(
    store: &S,
    name: &str,
    token: Option<&str>,
    revision: Option<u32>,
    strategy: Option<&serde_json::Value>,
) -> Result<Deployment> {
    let env = get_live(store, name).await?;
    if let Some(token) = token {
        if token != env.deployment_token {
            return Err(Error::conflict(
                Some("deploymentToken"),
                "deploymentToken is stale or already used; GET the environment for the current one",
            ));
        }
    }
    let number = revision.unwrap_or(env.latest_revision);
    let revision = store.get_revision(name, number).await?.ok_or_else(|| {
        Error::not_found(format!(
            "revision {number} of environment '{name}' not found"
        ))
    })?;
    let revision = match strategy {
        Some(v) => {
            let mut r = revision.clone();
            let changes = crate::domain::spec::SpecChanges {
                update_strategy: Some(v),
                ..Default::default()
            };
            r.spec = revision.spec.changed(name, &changes)?;
            r
        }
        None => revision,
    };
    begin(store, &env, &revision, None).await
}

/// Records a deployment of `revision` and points the environment at it (new token, the task
/// definition joining hosts get) in one transaction. Refused while another one is in progress.
pub async fn begin<S: Store + ?Sized>(
    store: &S,
    env: &Environment,
    revision: &Revision,
    rollback_of: Option<String>,
) -> Result<Deployment> {
    if let Some(active) = &env.active_deployment_id {
        return Err(Error::conflict(
            None,
            format!(
                "deployment '{active}' of environment '{}' is in progress",
                env.name
            ),
        ));
    }
    let now = now_rfc3339();
    let dep = Deployment::new(env, revision, rollback_of, &now);
    let mut next = env.clone();
    next.deployment_token = uuid::Uuid::new_v4().to_string();
    // A canary leaves the environment on what it ran: joining hosts get that until promotion.
    if !dep.in_canary() {
        next.deployed = Some(Deployed {
            deployment_id: dep.id.clone(),
            revision: revision.number,
            spec: revision.spec.clone(),
        });
    }
    next.active_deployment_id = Some(dep.id.clone());
    next.updated_at = now;
    next.version += 1;
    match store.create_deployment(&next, env.version, &dep).await {
        Ok(()) => Ok(dep),
        Err(Error::ConcurrentUpdate { .. }) => Err(Error::conflict(
            Some("deploymentToken"),
            "the environment changed meanwhile (another deployment?); GET it and retry",
        )),
        Err(e) => Err(e),
    }
}

/// The canary of deployment `id` is promoted: the environment deploys its revision (joining
/// hosts get it) and the deployment goes on replacing every other host, in waves.
pub async fn promote<S: Store + ?Sized>(store: &S, name: &str, id: &str) -> Result<Deployment> {
    let dep = get(store, name, id).await?;
    let env = get_live(store, name).await?;
    if !dep.in_canary() || dep.status.is_finished() {
        return Err(Error::conflict(
            None,
            format!(
                "deployment '{id}' is {} and has no canary waiting for promotion",
                dep.status.as_str()
            ),
        ));
    }
    let now = now_rfc3339();
    let mut next = env.clone();
    next.deployed = Some(Deployed {
        deployment_id: dep.id.clone(),
        revision: dep.revision,
        spec: dep.spec.clone(),
    });
    next.updated_at = now.clone();
    next.version += 1;
    if !store
        .promote_deployment(&next, env.version, id, &now)
        .await?
    {
        return Err(Error::conflict(
            None,
            format!("deployment '{id}' or its environment changed meanwhile; GET it and retry"),
        ));
    }
    tracing::info!(environment = %name, deployment = %id, "canary promoted");
    get(store, name, id).await
}

/// Pauses or resumes a deployment in progress (`change`); `what` names it in the error.
async fn control<S: Store + ?Sized>(
    store: &S,
    name: &str,
    id: &str,
    change: &DeploymentTransition,
    what: &str,
) -> Result<Deployment> {
    let dep = get(store, name, id).await?;
    if !store.transition_deployment(name, id, change).await? {
        let now = store.get_deployment(name, id).await?.unwrap_or(dep);
        return Err(Error::conflict(
            None,
            format!(
                "deployment '{id}' is {} and can no longer be {what}",
                now.status.as_str()
            ),
        ));
    }
    get(store, name, id).await
}

/// Stops a deployment where it stands: no host is taken any more, each keeps what it runs —
/// except a canary's hosts, which a deployment of the revision before it rolls back.
async fn cancel<S: Store + ?Sized>(store: &S, name: &str, id: &str) -> Result<Deployment> {
    let dep = get(store, name, id).await?;
    if dep.status.is_finished() || !store.cancel_deployment(&dep).await? {
        let now = store.get_deployment(name, id).await?.unwrap_or(dep);
        return Err(Error::conflict(
            None,
            format!(
                "deployment '{id}' is {} and can no longer be cancelled",
                now.status.as_str()
            ),
        ));
    }
    if dep.in_canary() {
        roll_back_canary(store, name, &dep).await?;
    }
    get(store, name, id).await
}

/// A cancelled canary: the revision the environment still deploys goes back onto its hosts, by
/// a deployment of its own (waves, breaker), never itself a canary.
async fn roll_back_canary<S: Store + ?Sized>(
    store: &S,
    name: &str,
    dep: &Deployment,
) -> Result<()> {
    let env = get_live(store, name).await?;
    let Some(deployed) = env.deployed.as_ref() else {
        return Ok(());
    };
    let Some(revision) = store.get_revision(name, deployed.revision).await? else {
        return Ok(());
    };
    match begin(store, &env, &revision, Some(dep.id.clone())).await {
        Ok(rollback) => {
            tracing::info!(environment = %name, cancelled = %dep.id, rollback = %rollback.id, "canary cancelled: rolling its hosts back");
            Ok(())
        }
        // Someone deployed something else first: that decides what runs.
        Err(Error::Conflict { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}
