//! `/v1/ping` and `/v1/environments[/{name}]` (Blox v0.3 compatible, plus paging and timestamps).

use serde::Deserialize;
use serde_json::json;

use crate::clock::now_rfc3339;
use crate::domain::names::{validate_environment_name, validate_task_definition};
use crate::domain::{Environment, EnvironmentStatus, ManagedClusters, UpdateStrategy};
use crate::error::{Error, Result};
use crate::http::{not_found_route, ApiRequest, ApiResponse};
use crate::ports::{Cluster, Page, Store};
use crate::services::status;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateEnvironment {
    name: Option<String>,
    instance_group: Option<InstanceGroupIn>,
    task_definition: Option<String>,
    update_strategy: Option<serde_json::Value>,
}

/// `PUT /v1/environments/{name}`: a new revision with these changes.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UpdateEnvironment {
    task_definition: Option<String>,
    update_strategy: Option<serde_json::Value>,
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

/// A `taskDefinition` of a request: given, and in a form ECS takes.
fn task_definition_input(value: Option<String>) -> Result<String> {
    let td = required(value, "taskDefinition")?;
    validate_task_definition(&td)?;
    Ok(td)
}

/// Every route, for a stack that manages any cluster.
pub async fn route<S: Store + ?Sized, C: Cluster + ?Sized>(
    store: &S,
    cluster: &C,
    req: &ApiRequest,
) -> Result<ApiResponse> {
    route_with(store, cluster, &ManagedClusters::any(), req).await
}

/// Every route; environments are created only on the `managed` clusters.
pub async fn route_with<S: Store + ?Sized, C: Cluster + ?Sized>(
    store: &S,
    cluster: &C,
    managed: &ManagedClusters,
    req: &ApiRequest,
) -> Result<ApiResponse> {
    match (req.method.as_str(), req.seg().as_slice()) {
        ("GET", ["ping"]) => ApiResponse::ok(&json!({ "status": "ok" })),
        ("POST", ["environments"]) => create(store, cluster, managed, req).await,
        ("GET", ["environments"]) => list(store, cluster, req).await,
        ("GET", ["environments", name]) => ApiResponse::ok(&get_live(store, name).await?),
        ("PUT", ["environments", name]) => update(store, cluster, name, req).await,
        ("DELETE", ["environments", name]) => delete(store, name).await,
        ("GET", ["environments", name, "revisions"]) => {
            get_live(store, name).await?;
            let page = store
                .list_revisions(name, req.limit()?, req.param("nextToken"))
                .await?;
            ApiResponse::ok(&json!({ "items": page.items, "nextToken": page.next_token }))
        }
        ("GET", ["environments", name, "revisions", number]) => {
            get_live(store, name).await?;
            let n: u32 = number
                .parse()
                .map_err(|_| Error::invalid("revision", "revision must be a revision number"))?;
            let rev = store.get_revision(name, n).await?.ok_or_else(|| {
                Error::not_found(format!("revision {n} of environment '{name}' not found"))
            })?;
            ApiResponse::ok(&rev)
        }
        ("GET", ["environments", name, "status"]) => {
            let env = get_live(store, name).await?;
            let slots = store.slots_of(name).await?;
            let dep = match env
                .active_deployment_id
                .as_ref()
                .or(env.current_deployment_id.as_ref())
            {
                Some(id) => store.get_deployment(name, id).await?,
                None => None,
            };
            // Not `param()`: an empty `?hosts=` is neither true nor false.
            let hosts = match req.query.get("hosts").map(String::as_str) {
                None | Some("false") => false,
                Some("true") => true,
                Some(_) => return Err(Error::invalid("hosts", "hosts must be true or false")),
            };
            ApiResponse::ok(&status::status(&env, &slots, dep, hosts))
        }
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
    managed: &ManagedClusters,
    req: &ApiRequest,
) -> Result<ApiResponse> {
    let input: CreateEnvironment = req.json()?;
    let name = input.name.unwrap_or_default();
    validate_environment_name(&name)?;
    let cluster_name = required(
        input.instance_group.and_then(|g| g.cluster),
        "instanceGroup.cluster",
    )?;
    let task_definition = task_definition_input(input.task_definition)?;
    let strategy = match &input.update_strategy {
        Some(patch) => UpdateStrategy::merged(&UpdateStrategy::default(), patch)?,
        None => UpdateStrategy::default(),
    };

    let cluster_arn = match cluster.describe_cluster(&cluster_name).await? {
        Some(c) if c.active => c.arn,
        _ => {
            return Err(Error::not_found(format!(
                "cluster '{cluster_name}' does not exist or is not ACTIVE"
            )))
        }
    };
    if !managed.allows(&cluster_arn) {
        return Err(Error::invalid(
            "instanceGroup.cluster",
            format!(
                "cluster '{cluster_arn}' is not managed by this stack (ManagedClusters: {})",
                managed.patterns().join(", ")
            ),
        ));
    }
    let task_definition_arn = active_task_definition(cluster, &task_definition).await?;
    let now = now_rfc3339();
    let env = Environment::new(&name, &cluster_arn, &task_definition_arn, strategy, &now);
    store.create_environment(&env, &env.latest(&now)).await?;
    ApiResponse::ok(&env)
}

/// The ARN of an ACTIVE task definition, or 404.
async fn active_task_definition<C: Cluster + ?Sized>(cluster: &C, td: &str) -> Result<String> {
    match cluster.describe_task_definition(td).await? {
        Some(found) if found.active => Ok(found.arn),
        _ => Err(Error::not_found(format!(
            "task definition '{td}' does not exist or is INACTIVE"
        ))),
    }
}

/// A new revision (task definition, update strategy); running tasks are not touched until a
/// deployment of it says so.
async fn update<S: Store + ?Sized, C: Cluster + ?Sized>(
    store: &S,
    cluster: &C,
    name: &str,
    req: &ApiRequest,
) -> Result<ApiResponse> {
    let input: UpdateEnvironment = req.json()?;
    if input.task_definition.is_none() && input.update_strategy.is_none() {
        return Err(Error::invalid(
            "taskDefinition",
            "give taskDefinition and/or updateStrategy to change",
        ));
    }
    let task_definition = match input.task_definition {
        Some(td) => Some(active_task_definition(cluster, &task_definition_input(Some(td))?).await?),
        None => None,
    };
    for _ in 0..3 {
        let env = get_live(store, name).await?;
        let mut next = env.clone();
        if let Some(td) = &task_definition {
            next.task_definition = td.clone();
        }
        if let Some(patch) = &input.update_strategy {
            next.update_strategy = UpdateStrategy::merged(&env.update_strategy, patch)?;
        }
        let now = now_rfc3339();
        next.latest_revision += 1;
        next.updated_at = now.clone();
        next.version += 1;
        match store
            .add_revision(&next, env.version, &next.latest(&now))
            .await
        {
            Ok(()) => return ApiResponse::ok(&next),
            Err(Error::ConcurrentUpdate { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::ConcurrentUpdate {
        what: format!("environment '{name}'"),
    })
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
