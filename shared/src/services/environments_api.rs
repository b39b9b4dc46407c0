//! `/v1/ping` and `/v1/environments[/{name}]` (Blox v0.3 compatible, plus paging and timestamps).

use serde::Deserialize;
use serde_json::json;

use crate::clock::now_rfc3339;
use crate::domain::names::validate_environment_name;
use crate::domain::{Environment, EnvironmentStatus};
use crate::error::{Error, Result};
use crate::http::{not_found_route, ApiRequest, ApiResponse};
use crate::ports::{Cluster, Page, Store};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateEnvironment {
    name: Option<String>,
    instance_group: Option<InstanceGroupIn>,
    task_definition: Option<String>,
}

#[derive(Debug, Deserialize)]
struct InstanceGroupIn {
    cluster: Option<String>,
}

fn required(value: Option<String>, field: &str) -> Result<String> {
    value
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Error::invalid(field, format!("{field} is required")))
}

pub async fn route<S: Store + ?Sized, C: Cluster + ?Sized>(
    store: &S,
    cluster: &C,
    req: &ApiRequest,
) -> Result<ApiResponse> {
    match (req.method.as_str(), req.seg().as_slice()) {
        ("GET", ["ping"]) => ApiResponse::ok(&json!({ "status": "ok" })),
        ("POST", ["environments"]) => create(store, cluster, req).await,
        ("GET", ["environments"]) => list(store, cluster, req).await,
        ("GET", ["environments", name]) => ApiResponse::ok(&get_live(store, name).await?),
        ("DELETE", ["environments", name]) => delete(store, name).await,
        _ => Err(not_found_route(req)),
    }
}

/// An environment that exists and is not being deleted, or 404.
pub async fn get_live<S: Store + ?Sized>(store: &S, name: &str) -> Result<Environment> {
    store
        .get_environment(name)
        .await?
        .filter(|e| e.status == EnvironmentStatus::Active)
        .ok_or_else(|| Error::not_found(format!("environment '{name}' not found")))
}

async fn create<S: Store + ?Sized, C: Cluster + ?Sized>(
    store: &S,
    cluster: &C,
    req: &ApiRequest,
) -> Result<ApiResponse> {
    let input: CreateEnvironment = req.json()?;
    let name = input.name.unwrap_or_default();
    validate_environment_name(&name)?;
    let cluster_name = required(
        input.instance_group.and_then(|g| g.cluster),
        "instanceGroup.cluster",
    )?;
    let task_definition = required(input.task_definition, "taskDefinition")?;

    let cluster_arn = match cluster.describe_cluster(&cluster_name).await? {
        Some(c) if c.active => c.arn,
        _ => {
            return Err(Error::not_found(format!(
                "cluster '{cluster_name}' does not exist or is not ACTIVE"
            )))
        }
    };
    let task_definition_arn = match cluster.describe_task_definition(&task_definition).await? {
        Some(td) if td.active => td.arn,
        _ => {
            return Err(Error::not_found(format!(
                "task definition '{task_definition}' does not exist or is INACTIVE"
            )))
        }
    };
    let env = Environment::new(&name, &cluster_arn, &task_definition_arn, &now_rfc3339());
    store.create_environment(&env).await?;
    ApiResponse::ok(&env)
}

async fn list<S: Store + ?Sized, C: Cluster + ?Sized>(
    store: &S,
    cluster: &C,
    req: &ApiRequest,
) -> Result<ApiResponse> {
    let limit = req.limit()?;
    let cluster_arn = match req.param("cluster") {
        None => None,
        Some(c) if c.starts_with("arn:") => Some(c.to_owned()),
        // A cluster name: the index is keyed by ARN, which ECS knows.
        Some(c) => match cluster.describe_cluster(c).await? {
            Some(found) => Some(found.arn),
            None => return ApiResponse::ok(&json!({ "items": [], "nextToken": null })),
        },
    };
    let page: Page<Environment> = store
        .list_environments(cluster_arn.as_deref(), limit, req.param("nextToken"))
        .await?;
    ApiResponse::ok(&json!({ "items": page.items, "nextToken": page.next_token }))
}

/// Marks the environment deleting (nothing new starts from then on); the deployer stops its tasks
/// and removes its records. Deleting again, or something already gone, is harmless.
async fn delete<S: Store + ?Sized>(store: &S, name: &str) -> Result<ApiResponse> {
    for _ in 0..3 {
        let Some(env) = store.get_environment(name).await? else {
            return ApiResponse::ok(&json!({ "name": name, "status": "deleted" }));
        };
        if env.status == EnvironmentStatus::Deleting {
            return ApiResponse::ok(&env);
        }
        let mut next = env.clone();
        next.status = EnvironmentStatus::Deleting;
        next.updated_at = now_rfc3339();
        next.version += 1;
        match store.update_environment(&next, env.version).await {
            Ok(()) => return ApiResponse::ok(&next),
            Err(Error::ConcurrentUpdate { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::ConcurrentUpdate {
        what: format!("environment '{name}'"),
    })
}
