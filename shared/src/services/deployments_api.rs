//! `/v1/environments/{name}/deployments[/{id}]` (Blox v0.3 compatible, plus counts and reasons).

use serde_json::json;

use crate::clock::now_rfc3339;
use crate::domain::{Deployment, DeploymentStatus};
use crate::error::{Error, Result};
use crate::http::{not_found_route, ApiRequest, ApiResponse};
use crate::ports::Store;
use crate::services::environments_api::get_live;

pub async fn route<S: Store + ?Sized>(store: &S, req: &ApiRequest) -> Result<ApiResponse> {
    match (req.method.as_str(), req.seg().as_slice()) {
        ("POST", ["environments", name, "deployments"]) => ApiResponse::ok(&view(
            create(store, name, req.param("deploymentToken")).await?,
        )),
        ("GET", ["environments", name, "deployments"]) => {
            get_live(store, name).await?;
            let page = store
                .list_deployments(name, req.limit()?, req.param("nextToken"))
                .await?;
            let items: Vec<Deployment> = page.items.into_iter().map(view).collect();
            ApiResponse::ok(&json!({ "items": items, "nextToken": page.next_token }))
        }
        ("GET", ["environments", name, "deployments", id]) => {
            get_live(store, name).await?;
            let dep = store.get_deployment(name, id).await?.ok_or_else(|| {
                Error::not_found(format!(
                    "deployment '{id}' of environment '{name}' not found"
                ))
            })?;
            ApiResponse::ok(&view(dep))
        }
        _ => Err(not_found_route(req)),
    }
}

/// Records a deployment and rotates the token in one transaction; the deployer carries it out.
pub async fn create<S: Store + ?Sized>(
    store: &S,
    name: &str,
    token: Option<&str>,
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
    if let Some(active) = &env.active_deployment_id {
        return Err(Error::conflict(
            None,
            format!("deployment '{active}' of environment '{name}' is in progress"),
        ));
    }
    let now = now_rfc3339();
    let dep = Deployment {
        id: ulid::Ulid::new().to_string(),
        environment_name: env.name.clone(),
        status: DeploymentStatus::Pending,
        task_definition: env.task_definition.clone(),
        cluster_arn: env.cluster_arn().to_owned(),
        desired_count: 0,
        pending_count: 0,
        running_count: 0,
        failed_count: 0,
        failed_instances: vec![],
        failures: vec![],
        created_at: now.clone(),
        updated_at: now.clone(),
        finished_at: None,
    };
    let mut next = env.clone();
    next.deployment_token = uuid::Uuid::new_v4().to_string();
    next.current_deployment_id = Some(dep.id.clone());
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

/// A host that failed, retried and failed again is listed once, with its latest reason.
fn view(mut dep: Deployment) -> Deployment {
    let mut seen = std::collections::HashSet::new();
    dep.failures.reverse();
    dep.failures
        .retain(|f| seen.insert(f.container_instance_arn.clone()));
    dep.failures.reverse();
    dep.failed_instances = dep
        .failures
        .iter()
        .map(|f| f.container_instance_arn.clone())
        .collect();
    dep
}
