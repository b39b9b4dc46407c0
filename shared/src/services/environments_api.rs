//! `/v1/ping` and `/v1/environments[/{name}]` (Blox v0.3 compatible, plus paging and timestamps).

use serde::Deserialize;
use serde_json::{json, Value};

use crate::clock::now_rfc3339;
use crate::domain::names::{validate_environment_name, validate_task_definition};
use crate::domain::resources::TaskNeeds;
use crate::domain::{
    AllowedAlarms, DaemonSpec, Environment, EnvironmentStatus, ManagedClusters, SpecChanges,
};
use crate::error::{Error, Result};
use crate::http::{not_found_route, ApiRequest, ApiResponse};
use crate::ports::{Cluster, Page, Store};
use crate::services::status;
use crate::services::views::{EnvironmentView, RevisionView};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateEnvironment {
    name: Option<String>,
    instance_group: Option<InstanceGroupIn>,
    #[serde(flatten)]
    revision: RevisionFields,
}

/// What a revision is made of, as a request gives it (create, or `PUT`: a new revision with
/// these changes). Besides the task definition, a field given replaces the revision's (`null`
/// clears it); a field left out keeps it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RevisionFields {
    task_definition: Option<String>,
    #[serde(default, deserialize_with = "present")]
    update_strategy: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    placement_constraints: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    sizing: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    overrides: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    depends_on: Option<Value>,
}

const REVISION_FIELDS: [&str; 6] = [
    "taskDefinition",
    "updateStrategy",
    "placementConstraints",
    "sizing",
    "overrides",
    "dependsOn",
];

/// A field that is present, even as `null` (which clears it), is `Some`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

impl RevisionFields {
    /// A `PUT` body: only revision fields, at least one of them.
    fn of_update(req: &ApiRequest) -> Result<Self> {
        let body: serde_json::Map<String, Value> = req.json()?;
        if let Some(k) = body.keys().find(|k| !REVISION_FIELDS.contains(&k.as_str())) {
            return Err(Error::invalid(
                k,
                format!("unknown field {k}; expected {}", REVISION_FIELDS.join(", ")),
            ));
        }
        if body.is_empty() {
            return Err(Error::invalid(
                "taskDefinition",
                format!("give at least one of {}", REVISION_FIELDS.join(", ")),
            ));
        }
        req.json()
    }

    fn changes(&self, task_definition: Option<(String, TaskNeeds)>) -> SpecChanges<'_> {
        SpecChanges {
            task_definition,
            update_strategy: self.update_strategy.as_ref(),
            placement_constraints: self.placement_constraints.as_ref(),
            sizing: self.sizing.as_ref(),
            overrides: self.overrides.as_ref(),
            depends_on: self.depends_on.as_ref(),
        }
    }
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
    route_with(
        store,
        cluster,
        &ManagedClusters::any(),
        &AllowedAlarms::any(),
        req,
    )
    .await
}

/// Every route; environments are created only on the `managed` clusters, and revisions gate only
/// on the `alarms` the stack may read.
pub async fn route_with<S: Store + ?Sized, C: Cluster + ?Sized>(
    store: &S,
    cluster: &C,
    managed: &ManagedClusters,
    alarms: &AllowedAlarms,
    req: &ApiRequest,
) -> Result<ApiResponse> {
    match (req.method.as_str(), req.seg().as_slice()) {
        ("GET", ["ping"]) => ApiResponse::ok(&json!({ "status": "ok" })),
        ("POST", ["environments"]) => create(store, cluster, managed, alarms, req).await,
        ("GET", ["environments"]) => list(store, cluster, req).await,
        ("GET", ["environments", name]) => {
            ApiResponse::ok(&EnvironmentView::from(&get_live(store, name).await?))
        }
        ("PUT", ["environments", name]) => update(store, cluster, alarms, name, req).await,
        ("DELETE", ["environments", name]) => delete(store, name).await,
        ("GET", ["environments", name, "revisions"]) => {
            get_live(store, name).await?;
            let page = store
                .list_revisions(name, req.limit()?, req.param("nextToken"))
                .await?;
            let items: Vec<RevisionView> = page.items.iter().map(RevisionView::from).collect();
            ApiResponse::ok(&json!({ "items": items, "nextToken": page.next_token }))
        }
        ("GET", ["environments", name, "revisions", number]) => {
            get_live(store, name).await?;
            let n: u32 = number
                .parse()
                .map_err(|_| Error::invalid("revision", "revision must be a revision number"))?;
            let rev = store.get_revision(name, n).await?.ok_or_else(|| {
                Error::not_found(format!("revision {n} of environment '{name}' not found"))
            })?;
            ApiResponse::ok(&RevisionView::from(&rev))
        }
        ("GET", ["environments", name, "status"]) => {
            let env = get_live(store, name).await?;
            let slots = store.slots_of(name).await?;
            let latest = env.deployed.as_ref().map(|d| &d.deployment_id);
            let dep = match env.active_deployment_id.as_ref().or(latest) {
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
    alarms: &AllowedAlarms,
    req: &ApiRequest,
) -> Result<ApiResponse> {
    let input: CreateEnvironment = req.json()?;
    let name = input.name.unwrap_or_default();
    validate_environment_name(&name)?;
    let cluster_name = required(
        input.instance_group.and_then(|g| g.cluster),
        "instanceGroup.cluster",
    )?;
    let task_definition = task_definition_input(input.revision.task_definition.clone())?;

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
    let (arn, needs) = active_task_definition(cluster, &task_definition).await?;
    let spec = DaemonSpec::of_task_definition(&arn, needs.clone())
        .changed(&name, &input.revision.changes(None))?;
    alarms.check(&spec.update_strategy.alarms)?;
    for _ in 0..3 {
        let dependencies = dependencies_of(store, &name, &cluster_arn, &spec.depends_on).await?;
        let now = now_rfc3339();
        let env = Environment::new(&name, &cluster_arn, spec.clone(), &now);
        match store
            .create_environment(&env, &env.latest(&now), &dependencies)
            .await
        {
            Ok(()) => return ApiResponse::ok(&EnvironmentView::from(&env)),
            // An environment it depends on changed meanwhile: look again.
            Err(Error::ConcurrentUpdate { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::ConcurrentUpdate {
        what: format!("environment '{name}'"),
    })
}

/// The environments `name` depends on, each as it must be written to list `name` among its
/// dependents (with the version it was read at); those that already list it are left alone.
/// Each must exist, be on the same cluster, and not depend on `name` itself, however indirectly.
async fn dependencies_of<S: Store + ?Sized>(
    store: &S,
    name: &str,
    cluster_arn: &str,
    depends_on: &[String],
) -> Result<Vec<(Environment, u64)>> {
    let mut out = Vec::new();
    for (i, dep) in depends_on.iter().enumerate() {
        let field = format!("dependsOn[{i}]");
        let Some(other) = store
            .get_environment(dep)
            .await?
            .filter(|e| e.status == EnvironmentStatus::Active)
        else {
            return Err(Error::invalid(&field, format!("no environment '{dep}'")));
        };
        if other.cluster_arn() != cluster_arn {
            return Err(Error::invalid(
                &field,
                format!(
                    "'{dep}' runs on another cluster ({}); daemons can only wait for each other on the same hosts",
                    other.cluster_arn()
                ),
            ));
        }
        if let Some(path) = path_to(store, &other, name).await? {
            return Err(Error::invalid(
                &field,
                format!("a cycle: {name} → {}", path.join(" → ")),
            ));
        }
        if !other.dependents.iter().any(|d| d == name) {
            let version = other.version;
            let mut updated = other;
            updated.dependents.push(name.to_owned());
            updated.version += 1;
            out.push((updated, version));
        }
    }
    Ok(out)
}

/// A chain of `dependsOn` from `from` that reaches `target` (latest and deployed revisions), if
/// any: `[from, …, target]`.
async fn path_to<S: Store + ?Sized>(
    store: &S,
    from: &Environment,
    target: &str,
) -> Result<Option<Vec<String>>> {
    let mut stack: Vec<(String, Vec<String>)> = vec![(from.name.clone(), vec![from.name.clone()])];
    let mut seen = std::collections::BTreeSet::new();
    while let Some((at, path)) = stack.pop() {
        if !seen.insert(at.clone()) {
            continue;
        }
        let Some(env) = store.get_environment(&at).await? else {
            continue;
        };
        let next = env
            .spec
            .depends_on
            .iter()
            .chain(env.deployed.iter().flat_map(|d| d.spec.depends_on.iter()));
        for n in next {
            let mut p = path.clone();
            p.push(n.clone());
            if n == target {
                return Ok(Some(p));
            }
            stack.push((n.clone(), p));
        }
    }
    Ok(None)
}

/// The ARN of an ACTIVE task definition and what it needs of a host, or 404.
async fn active_task_definition<C: Cluster + ?Sized>(
    cluster: &C,
    td: &str,
) -> Result<(String, TaskNeeds)> {
    match cluster.describe_task_definition(td).await? {
        Some(found) if found.active => Ok((found.arn, found.needs)),
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
    alarms: &AllowedAlarms,
    name: &str,
    req: &ApiRequest,
) -> Result<ApiResponse> {
    let input = RevisionFields::of_update(req)?;
    let task_definition = match input.task_definition.clone() {
        Some(td) => Some(active_task_definition(cluster, &task_definition_input(Some(td))?).await?),
        None => None,
    };
    for _ in 0..3 {
        let env = get_live(store, name).await?;
        let mut next = env.clone();
        next.spec = env
            .spec
            .changed(name, &input.changes(task_definition.clone()))?;
        alarms.check(&next.spec.update_strategy.alarms)?;
        let dependencies =
            dependencies_of(store, name, env.cluster_arn(), &next.spec.depends_on).await?;
        let now = now_rfc3339();
        next.latest_revision += 1;
        next.updated_at = now.clone();
        next.version += 1;
        match store
            .add_revision(&next, env.version, &next.latest(&now), &dependencies)
            .await
        {
            Ok(()) => return ApiResponse::ok(&EnvironmentView::from(&next)),
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
    let items: Vec<EnvironmentView> = page.items.iter().map(EnvironmentView::from).collect();
    ApiResponse::ok(&json!({ "items": items, "nextToken": page.next_token }))
}

/// Marks the environment deleting (nothing new starts from then on); the deployer stops its tasks
/// and removes its records. Deleting again, or something already gone, is harmless.
async fn delete<S: Store + ?Sized>(store: &S, name: &str) -> Result<ApiResponse> {
    for _ in 0..3 {
        let Some(env) = store.get_environment(name).await? else {
            return ApiResponse::ok(&json!({ "name": name, "status": "deleted" }));
        };
        if env.status == EnvironmentStatus::Deleting {
            return ApiResponse::ok(&EnvironmentView::from(&env));
        }
        refuse_while_depended_on(store, &env).await?;
        let mut next = env.clone();
        next.status = EnvironmentStatus::Deleting;
        next.updated_at = now_rfc3339();
        next.version += 1;
        match store.update_environment(&next, env.version).await {
            Ok(()) => return ApiResponse::ok(&EnvironmentView::from(&next)),
            Err(Error::ConcurrentUpdate { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::ConcurrentUpdate {
        what: format!("environment '{name}'"),
    })
}

/// An environment others still depend on (their latest or deployed revision names it) cannot be
/// deleted: their daemons would wait for it forever.
async fn refuse_while_depended_on<S: Store + ?Sized>(store: &S, env: &Environment) -> Result<()> {
    for name in &env.dependents {
        let Some(other) = store.get_environment(name).await? else {
            continue;
        };
        let names_it = other
            .spec
            .depends_on
            .iter()
            .chain(other.deployed.iter().flat_map(|d| d.spec.depends_on.iter()))
            .any(|d| d == &env.name);
        if names_it && other.status == EnvironmentStatus::Active {
            return Err(Error::conflict(
                None,
                format!(
                    "environment '{name}' depends on '{}': remove it from {name}'s dependsOn (and deploy that) or delete {name} first",
                    env.name
                ),
            ));
        }
    }
    Ok(())
}
