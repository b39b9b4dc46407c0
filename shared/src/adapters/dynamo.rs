//! DynamoDB adapter of the `Store` port: one table, items mapped with serde_dynamo, every write
//! conditional (see docs/design.md for the key design).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, DeleteRequest, Put, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use serde::{de::DeserializeOwned, Serialize};

use aws_sdk_dynamodb::types::KeysAndAttributes;

use crate::domain::{
    Deployment, DeploymentStatus, DeploymentTransition, Environment, EnvironmentStatus, Health,
    HostFailure, Revision, Slot, SlotKey,
};
use crate::error::{Error, Result};
use crate::limits::{BATCH_GET_ITEMS, BATCH_WRITE_ITEMS, TRANSACT_ITEMS};
use crate::planner::Counts;
use crate::ports::{Page, SlotWrite, Store, WriteOutcome};

type Item = HashMap<String, AttributeValue>;

const BY_CLUSTER: &str = "by-cluster";
const BY_KIND: &str = "by-kind";
const ENVIRONMENTS: &str = "ENVIRONMENTS";
/// Longest reason kept per failed host (ECS reasons are short; a runaway one must not bloat items).
const REASON_MAX: usize = 255;

pub fn env_pk(name: &str) -> String {
    format!("ENV#{name}")
}
const ENV_SK: &str = "ENV";
fn dep_sk(id: &str) -> String {
    format!("DEP#{id}")
}
/// Zero-padded so that revisions sort by number.
fn rev_sk(number: u32) -> String {
    format!("REV#{number:010}")
}
fn slot_sk(container_instance_arn: &str) -> String {
    format!("HOST#{container_instance_arn}")
}
fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

pub(crate) fn sdk_error<E, R>(service: &str, err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let code = err.code().unwrap_or_default().to_owned();
    let message = err.message().map(str::to_owned).unwrap_or_else(|| {
        format!(
            "{}",
            aws_smithy_types::error::display::DisplayErrorContext(&err)
        )
    });
    if code.contains("Throttl")
        || code == "ProvisionedThroughputExceededException"
        || code == "RequestLimitExceeded"
    {
        Error::Throttled {
            service: service.to_owned(),
            message,
        }
    } else {
        Error::Aws {
            service: service.to_owned(),
            message: if code.is_empty() {
                message
            } else {
                format!("{code}: {message}")
            },
            code,
        }
    }
}

fn ddb<E, R>(err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    sdk_error("DynamoDB", err)
}

fn to_item<T: Serialize>(value: &T, keys: &[(&str, String)]) -> Result<Item> {
    let mut item: Item = serde_dynamo::to_item(value)
        .map_err(|e| Error::Internal(format!("serialize item: {e}")))?;
    for (k, v) in keys {
        item.insert((*k).to_owned(), s(v.clone()));
    }
    Ok(item)
}

/// The index of the first item whose condition failed in a cancelled transaction.
fn cancelled_at<R>(
    err: &SdkError<aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError, R>,
) -> Option<usize> {
    match err.as_service_error() {
        Some(aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c)) => c
            .cancellation_reasons()
            .iter()
            .position(|r| r.code() == Some("ConditionalCheckFailed")),
        _ => None,
    }
}

fn from_item<T: DeserializeOwned>(item: Item) -> Result<T> {
    serde_dynamo::from_item(item).map_err(|e| Error::Internal(format!("corrupt item: {e}")))
}

fn built<T>(r: std::result::Result<T, aws_sdk_dynamodb::error::BuildError>) -> Result<T> {
    r.map_err(|e| Error::Internal(format!("request build: {e}")))
}

/// Opaque page tokens: the LastEvaluatedKey (all string attributes) as base64 JSON.
fn encode_token(key: Option<&Item>) -> Option<String> {
    let key = key?;
    let map: std::collections::BTreeMap<&str, &str> = key
        .iter()
        .filter_map(|(k, v)| v.as_s().ok().map(|v| (k.as_str(), v.as_str())))
        .collect();
    serde_json::to_vec(&map)
        .ok()
        .map(aws_smithy_types::base64::encode)
}

/// The start key in a page token, checked against the query it continues: exactly its `keys`
/// attributes, and `fits` (same partition, same kind of item). DynamoDB answers a start key that
/// does not fit the query with ValidationException, which would be a 500 for a forged token or
/// one of another list.
fn decode_token(
    token: Option<&str>,
    keys: &[&str],
    fits: impl Fn(&HashMap<String, String>) -> bool,
) -> Result<Option<Item>> {
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let invalid = || Error::invalid("nextToken", "nextToken is not a token this list returned");
    let bytes = aws_smithy_types::base64::decode(token).map_err(|_| invalid())?;
    let map: HashMap<String, String> = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if map.len() != keys.len() || !keys.iter().all(|k| map.contains_key(*k)) || !fits(&map) {
        return Err(invalid());
    }
    Ok(Some(map.into_iter().map(|(k, v)| (k, s(v))).collect()))
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    fn env_item(&self, env: &Environment) -> Result<Item> {
        to_item(
            env,
            &[
                ("pk", env_pk(&env.name)),
                ("sk", ENV_SK.to_owned()),
                ("gsi1pk", format!("CLUSTER#{}", env.cluster_arn())),
                ("gsi1sk", env_pk(&env.name)),
                ("gsi2pk", ENVIRONMENTS.to_owned()),
                ("gsi2sk", env.name.clone()),
            ],
        )
    }

    /// An environment written whole, conditional on the version it was read at (and active).
    fn env_put_at(&self, env: &Environment, expected_version: u64) -> Result<TransactWriteItem> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(self.env_item(env)?))
            .condition_expression("version = :v AND #st = :active")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":v", n(expected_version))
            .expression_attribute_values(":active", s("active"))
            .build();
        Ok(TransactWriteItem::builder().put(built(put)?).build())
    }

    /// Items by key, strongly consistent, `BATCH_GET_ITEMS` keys a call; keys DynamoDB leaves
    /// unprocessed (throttling) are asked again with a short backoff.
    async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>> {
        let mut out = Vec::new();
        for chunk in keys.chunks(BATCH_GET_ITEMS) {
            let mut pending = chunk.to_vec();
            for attempt in 0..8u32 {
                if pending.is_empty() {
                    break;
                }
                let ask = built(
                    KeysAndAttributes::builder()
                        .set_keys(Some(std::mem::take(&mut pending)))
                        .consistent_read(true)
                        .build(),
                )?;
                let res = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, ask)
                    .send()
                    .await
                    .map_err(ddb)?;
                if let Some(mut found) = res.responses {
                    out.extend(found.remove(&self.table).unwrap_or_default());
                }
                pending = res
                    .unprocessed_keys
                    .and_then(|mut m| m.remove(&self.table))
                    .map(|k| k.keys)
                    .unwrap_or_default();
                if !pending.is_empty() {
                    tokio::time::sleep(std::time::Duration::from_millis(20 << attempt)).await;
                }
            }
            if !pending.is_empty() {
                return Err(Error::Throttled {
                    service: "DynamoDB".into(),
                    message: "BatchGetItem left keys unprocessed".into(),
                });
            }
        }
        Ok(out)
    }

    fn revision_put(&self, revision: &Revision) -> Result<TransactWriteItem> {
        let item = to_item(
            revision,
            &[
                ("pk", env_pk(&revision.environment_name)),
                ("sk", rev_sk(revision.number)),
            ],
        )?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build();
        Ok(TransactWriteItem::builder().put(built(put)?).build())
    }

    /// The environment no longer has `deployment` in progress (and takes its health, if given).
    fn release(
        &self,
        environment: &str,
        deployment: &str,
        health: Option<&str>,
        now: &str,
    ) -> Result<TransactWriteItem> {
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(env_pk(environment), ENV_SK.to_owned())))
            .condition_expression("activeDeploymentId = :id")
            .expression_attribute_values(":now", s(now))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":id", s(deployment));
        update = match health {
            Some(h) => update
                .update_expression(
                    "REMOVE activeDeploymentId SET health = :h, updatedAt = :now ADD version :one",
                )
                .expression_attribute_values(":h", s(h)),
            None => update.update_expression(
                "REMOVE activeDeploymentId SET updatedAt = :now ADD version :one",
            ),
        };
        Ok(TransactWriteItem::builder()
            .update(built(update.build())?)
            .build())
    }

    /// One page of a partition's items under `prefix`, newest (highest sort key) first.
    async fn page_newest_first<T: DeserializeOwned>(
        &self,
        environment: &str,
        prefix: &str,
        limit: usize,
        next_token: Option<&str>,
    ) -> Result<Page<T>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :p)")
            .expression_attribute_values(":pk", s(env_pk(environment)))
            .expression_attribute_values(":p", s(prefix))
            .scan_index_forward(false)
            .limit(limit as i32)
            .set_exclusive_start_key(decode_token(next_token, &["pk", "sk"], |k| {
                k["pk"] == env_pk(environment) && k["sk"].starts_with(prefix)
            })?)
            .send()
            .await
            .map_err(ddb)?;
        Ok(Page {
            items: out
                .items
                .unwrap_or_default()
                .into_iter()
                .map(from_item)
                .collect::<Result<_>>()?,
            next_token: encode_token(out.last_evaluated_key.as_ref()),
        })
    }

    fn key(pk: String, sk: String) -> Item {
        HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
    }

    async fn get<T: DeserializeOwned>(&self, pk: String, sk: String) -> Result<Option<T>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(ddb)?;
        out.item.map(from_item).transpose()
    }

    /// Every item of one partition whose sort key starts with `prefix` (all pages).
    async fn query_prefix(&self, pk: String, prefix: &str) -> Result<Vec<Item>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let query = self
                .client
                .query()
                .table_name(&self.table)
                .expression_attribute_values(":pk", s(pk.clone()))
                .consistent_read(true);
            // DynamoDB refuses an empty begins_with operand: no prefix means the whole partition.
            let query = if prefix.is_empty() {
                query.key_condition_expression("pk = :pk")
            } else {
                query
                    .key_condition_expression("pk = :pk AND begins_with(sk, :p)")
                    .expression_attribute_values(":p", s(prefix))
            };
            let out = query
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(ddb)?;
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    fn slot_put(&self, w: &SlotWrite) -> Result<(TransactWriteItem, Slot)> {
        let mut after = w.after.clone();
        after.rev = w.before.as_ref().map_or(1, |b| b.rev + 1);
        let item = to_item(
            &after,
            &[
                ("pk", env_pk(&after.environment)),
                ("sk", slot_sk(&after.host.container_instance_arn)),
            ],
        )?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let put = match &w.before {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(b) => put
                .condition_expression("#rev = :rev")
                .expression_attribute_names("#rev", "rev")
                .expression_attribute_values(":rev", n(b.rev)),
        };
        Ok((
            TransactWriteItem::builder()
                .put(built(put.build())?)
                .build(),
            after,
        ))
    }

    fn env_active_check(&self, environment: &str) -> Result<TransactWriteItem> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(env_pk(environment), ENV_SK.to_owned())))
            .condition_expression("#st = :active")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":active", s("active"))
            .build();
        Ok(TransactWriteItem::builder()
            .condition_check(built(check)?)
            .build())
    }

    /// The counter change (and the hosts that newly failed) of one deployment, conditional on it
    /// still being in progress.
    fn counter_update(
        &self,
        environment: &str,
        deployment: &str,
        c: &Counts,
        newly_failed: &[HostFailure],
        pending_cap: Option<i64>,
    ) -> Result<TransactWriteItem> {
        let mut expr = String::from(
            "ADD desiredCount :d, pendingCount :p, runningCount :r, failedCount :f, failedHosts :fh \
             SET updatedAt = :now",
        );
        let mut condition = String::from("#st IN (:pending, :running)");
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(env_pk(environment), dep_sk(deployment))))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":running", s("running"))
            .expression_attribute_values(":d", n(c.desired))
            .expression_attribute_values(":p", n(c.pending))
            .expression_attribute_values(":r", n(c.running))
            .expression_attribute_values(":f", n(c.failed))
            .expression_attribute_values(":fh", n(c.failed_hosts))
            .expression_attribute_values(":now", s(crate::clock::now_rfc3339()));
        if !newly_failed.is_empty() {
            expr.push_str(
                ", failures = list_append(if_not_exists(failures, :empty), :fl), \
                 failedInstances = list_append(if_not_exists(failedInstances, :empty), :fi)",
            );
            let fl = newly_failed
                .iter()
                .map(|f| {
                    let mut r = f.reason.clone();
                    r.truncate(REASON_MAX);
                    AttributeValue::M(HashMap::from([
                        (
                            "containerInstanceArn".to_owned(),
                            s(f.container_instance_arn.clone()),
                        ),
                        ("reason".to_owned(), s(r)),
                    ]))
                })
                .collect();
            let fi = newly_failed
                .iter()
                .map(|f| s(f.container_instance_arn.clone()))
                .collect();
            update = update
                .expression_attribute_values(":empty", AttributeValue::L(vec![]))
                .expression_attribute_values(":fl", AttributeValue::L(fl))
                .expression_attribute_values(":fi", AttributeValue::L(fi));
        }
        if let Some(cap) = pending_cap {
            // Checked before the ADD: what is pending now plus what this write adds stays in budget.
            condition.push_str(" AND (attribute_not_exists(pendingCount) OR pendingCount <= :cap)");
            update = update.expression_attribute_values(":cap", n(cap - c.pending));
        }
        let update = update
            .condition_expression(condition)
            .update_expression(expr)
            .build();
        Ok(TransactWriteItem::builder().update(built(update)?).build())
    }

    /// One transaction: some slot CAS writes of one environment, the counter changes they cause,
    /// and (when any of them claims) the check that the environment is still active.
    async fn write_chunk(&self, writes: &[&SlotWrite]) -> Result<Vec<WriteOutcome>> {
        #[derive(PartialEq)]
        enum Part {
            Slot(usize),
            EnvCheck,
            Counters(String),
        }
        // A chunk carries one budget at most (a rolling step writes only budgeted slots).
        let pending_cap = writes.iter().find_map(|w| w.pending_cap);
        let environment = &writes[0].after.environment;
        let mut items = Vec::new();
        let mut parts = Vec::new();
        let mut stored = Vec::new();
        let mut per_dep: Vec<(String, Counts, Vec<HostFailure>)> = Vec::new();
        let mut carries: Vec<Vec<String>> = Vec::new();
        let mut claims = false;
        for (i, w) in writes.iter().enumerate() {
            let (item, after) = self.slot_put(w)?;
            items.push(item);
            parts.push(Part::Slot(i));
            stored.push(after);
            claims |= w.claims;
            let mut mine = Vec::new();
            let deps = w
                .counters
                .iter()
                .map(|(d, _)| d)
                .chain(w.failures.iter().map(|(d, _)| d));
            for dep in deps {
                if !per_dep.iter().any(|(d, _, _)| d == dep) {
                    per_dep.push((dep.clone(), Counts::default(), Vec::new()));
                }
                if !mine.contains(dep) {
                    mine.push(dep.clone());
                }
            }
            for (dep, delta) in &w.counters {
                if let Some(e) = per_dep.iter_mut().find(|(d, _, _)| d == dep) {
                    e.1.absorb(delta);
                }
            }
            for (dep, failure) in &w.failures {
                if let Some(e) = per_dep.iter_mut().find(|(d, _, _)| d == dep) {
                    e.2.push(failure.clone());
                }
            }
            carries.push(mine);
        }
        if claims {
            items.push(self.env_active_check(environment)?);
            parts.push(Part::EnvCheck);
        }
        for (dep, counts, failed) in &per_dep {
            if !counts.is_zero() || !failed.is_empty() {
                let cap = pending_cap.filter(|_| counts.pending > 0);
                items.push(self.counter_update(environment, dep, counts, failed, cap)?);
                parts.push(Part::Counters(dep.clone()));
            }
        }
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(stored.into_iter().map(WriteOutcome::Written).collect()),
            Err(e) => e,
        };
        let reasons = match err.as_service_error() {
            Some(aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c)) => {
                c.cancellation_reasons().to_vec()
            }
            _ => return Err(ddb(err)),
        };
        let mut out: Vec<WriteOutcome> = vec![WriteOutcome::NotAttempted; writes.len()];
        let mut env_failed = false;
        let mut closed: Vec<String> = Vec::new();
        let mut over_budget = false;
        let mut refetch = Vec::new();
        for (part, reason) in parts.iter().zip(reasons.iter()) {
            if reason.code() != Some("ConditionalCheckFailed") {
                continue; // "None": fine on its own; "TransactionConflict" etc.: retried as is
            }
            match part {
                Part::Slot(i) => match reason.item() {
                    Some(old) => out[*i] = WriteOutcome::Conflict(Some(from_item(old.clone())?)),
                    None => refetch.push(*i),
                },
                Part::EnvCheck => env_failed = true,
                Part::Counters(dep) => {
                    // Still in progress: the condition that failed was the budget.
                    let in_progress = reason
                        .item()
                        .and_then(|i| i.get("status"))
                        .and_then(|v| v.as_s().ok())
                        .is_some_and(|st| st == "pending" || st == "running");
                    if in_progress && pending_cap.is_some() {
                        over_budget = true;
                    } else {
                        closed.push(dep.clone());
                    }
                }
            }
        }
        for i in refetch {
            let key = writes[i].after.key();
            out[i] = WriteOutcome::Conflict(self.get_slot(&key).await?);
        }
        for (i, w) in writes.iter().enumerate() {
            if out[i] != WriteOutcome::NotAttempted {
                continue;
            }
            if env_failed && w.claims {
                out[i] = WriteOutcome::EnvironmentInactive;
            } else if over_budget && w.pending_cap.is_some() {
                out[i] = WriteOutcome::OverBudget;
            } else if let Some(dep) = carries[i].iter().find(|d| closed.contains(d)) {
                out[i] = WriteOutcome::DeploymentClosed(dep.clone());
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn create_environment(
        &self,
        env: &Environment,
        first: &Revision,
        dependencies: &[(Environment, u64)],
    ) -> Result<()> {
        let put_env = Put::builder()
            .table_name(&self.table)
            .set_item(Some(self.env_item(env)?))
            .condition_expression("attribute_not_exists(pk)")
            .build();
        let mut items = vec![
            TransactWriteItem::builder().put(built(put_env)?).build(),
            self.revision_put(first)?,
        ];
        for (dep, version) in dependencies {
            items.push(self.env_put_at(dep, *version)?);
        }
        let res = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) => match cancelled_at(&e) {
                Some(0) => Err(Error::conflict(
                    Some("name"),
                    format!("environment '{}' already exists", env.name),
                )),
                Some(_) => Err(Error::ConcurrentUpdate {
                    what: format!("environment '{}'", env.name),
                }),
                // Cancelled for another reason (a conflicting transaction): worth another try.
                None if e.code() == Some("TransactionCanceledException") => {
                    Err(Error::ConcurrentUpdate {
                        what: format!("environment '{}'", env.name),
                    })
                }
                None => Err(ddb(e)),
            },
        }
    }

    async fn add_revision(
        &self,
        env: &Environment,
        expected_version: u64,
        revision: &Revision,
        dependencies: &[(Environment, u64)],
    ) -> Result<()> {
        let put_env = Put::builder()
            .table_name(&self.table)
            .set_item(Some(self.env_item(env)?))
            .condition_expression("version = :v AND #st = :active")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":v", n(expected_version))
            .expression_attribute_values(":active", s("active"))
            .build();
        let mut items = vec![
            TransactWriteItem::builder().put(built(put_env)?).build(),
            self.revision_put(revision)?,
        ];
        for (dep, version) in dependencies {
            items.push(self.env_put_at(dep, *version)?);
        }
        let res = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("TransactionCanceledException") => {
                Err(Error::ConcurrentUpdate {
                    what: format!("environment '{}'", env.name),
                })
            }
            Err(e) => Err(ddb(e)),
        }
    }

    async fn get_revision(&self, environment: &str, number: u32) -> Result<Option<Revision>> {
        self.get(env_pk(environment), rev_sk(number)).await
    }

    async fn list_revisions(
        &self,
        environment: &str,
        limit: usize,
        next_token: Option<&str>,
    ) -> Result<Page<Revision>> {
        self.page_newest_first(environment, "REV#", limit, next_token)
            .await
    }

    async fn get_environment(&self, name: &str) -> Result<Option<Environment>> {
        self.get(env_pk(name), ENV_SK.to_owned()).await
    }

    async fn list_environments(
        &self,
        cluster_arn: Option<&str>,
        limit: usize,
        next_token: Option<&str>,
    ) -> Result<Page<Environment>> {
        let (index, key, sort, value) = match cluster_arn {
            Some(c) => (BY_CLUSTER, "gsi1pk", "gsi1sk", format!("CLUSTER#{c}")),
            None => (BY_KIND, "gsi2pk", "gsi2sk", ENVIRONMENTS.to_owned()),
        };
        // An index query's LastEvaluatedKey holds the table's key and the index's.
        let start = decode_token(next_token, &["pk", "sk", key, sort], |k| k[key] == value)?;
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression("#k = :v")
            .expression_attribute_names("#k", key)
            .expression_attribute_values(":v", s(value))
            .limit(limit as i32)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(ddb)?;
        let items = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(from_item::<Environment>)
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .filter(|e| e.status == EnvironmentStatus::Active)
            .collect();
        Ok(Page {
            items,
            next_token: encode_token(out.last_evaluated_key.as_ref()),
        })
    }

    async fn environments_of_cluster(&self, cluster_arn: &str) -> Result<Vec<Environment>> {
        let mut envs = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(BY_CLUSTER)
                .key_condition_expression("gsi1pk = :v")
                .expression_attribute_values(":v", s(format!("CLUSTER#{cluster_arn}")))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(ddb)?;
            for item in out.items.unwrap_or_default() {
                envs.push(from_item(item)?);
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(envs);
            }
        }
    }

    async fn update_environment(&self, env: &Environment, expected_version: u64) -> Result<()> {
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.env_item(env)?))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", n(expected_version))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => {
                Err(Error::ConcurrentUpdate {
                    what: format!("environment '{}'", env.name),
                })
            }
            Err(e) => Err(ddb(e)),
        }
    }

    async fn create_deployment(
        &self,
        env: &Environment,
        expected_version: u64,
        deployment: &Deployment,
    ) -> Result<()> {
        let dep_item = to_item(
            deployment,
            &[("pk", env_pk(&env.name)), ("sk", dep_sk(&deployment.id))],
        )?;
        let put_dep = Put::builder()
            .table_name(&self.table)
            .set_item(Some(dep_item))
            .condition_expression("attribute_not_exists(pk)")
            .build();
        let put_env = Put::builder()
            .table_name(&self.table)
            .set_item(Some(self.env_item(env)?))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", n(expected_version))
            .build();
        let res = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(built(put_dep)?).build())
            .transact_items(TransactWriteItem::builder().put(built(put_env)?).build())
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("TransactionCanceledException") => {
                Err(Error::ConcurrentUpdate {
                    what: format!("environment '{}'", env.name),
                })
            }
            Err(e) => Err(ddb(e)),
        }
    }

    async fn get_deployment(&self, environment: &str, id: &str) -> Result<Option<Deployment>> {
        self.get(env_pk(environment), dep_sk(id)).await
    }

    async fn list_deployments(
        &self,
        environment: &str,
        limit: usize,
        next_token: Option<&str>,
    ) -> Result<Page<Deployment>> {
        self.page_newest_first(environment, "DEP#", limit, next_token)
            .await
    }

    async fn halt_deployment(&self, environment: &str, id: &str, reason: &str) -> Result<bool> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(env_pk(environment), dep_sk(id))))
            .update_expression("SET #st = :running, haltedReason = :why, updatedAt = :now")
            .condition_expression(
                "#st IN (:pending, :awaiting, :running) AND attribute_not_exists(haltedReason)",
            )
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":running", s("running"))
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":awaiting", s("awaiting-promotion"))
            .expression_attribute_values(":why", s(reason))
            .expression_attribute_values(":now", s(crate::clock::now_rfc3339()))
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
            Err(e) => Err(ddb(e)),
        }
    }

    async fn cancel_deployment(&self, deployment: &Deployment) -> Result<bool> {
        let now = crate::clock::now_rfc3339();
        let close = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(
                env_pk(&deployment.environment_name),
                dep_sk(&deployment.id),
            )))
            .update_expression("SET #st = :cancelled, updatedAt = :now, finishedAt = :now")
            .condition_expression("#st IN (:pending, :awaiting, :running)")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":cancelled", s("cancelled"))
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":awaiting", s("awaiting-promotion"))
            .expression_attribute_values(":running", s("running"))
            .expression_attribute_values(":now", s(now.clone()))
            .build();
        let release = self.release(&deployment.environment_name, &deployment.id, None, &now)?;
        let res = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(built(close)?).build())
            .transact_items(release)
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("TransactionCanceledException") => Ok(false),
            Err(e) => Err(ddb(e)),
        }
    }

    async fn transition_deployment(
        &self,
        environment: &str,
        id: &str,
        change: &DeploymentTransition,
    ) -> Result<bool> {
        let mut set = vec!["updatedAt = :now".to_owned()];
        let mut remove = Vec::new();
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(env_pk(environment), dep_sk(id))))
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":now", s(crate::clock::now_rfc3339()));
        let mut from = Vec::new();
        for (i, st) in change.from.iter().enumerate() {
            from.push(format!(":from{i}"));
            update = update.expression_attribute_values(format!(":from{i}"), s(st.as_str()));
        }
        let mut condition = format!("#st IN ({})", from.join(", "));
        if change.settled {
            condition.push_str(" AND pendingCount = :zero");
            update = update.expression_attribute_values(":zero", n(0));
        }
        if let Some(to) = change.to {
            set.push("#st = :to".into());
            update = update.expression_attribute_values(":to", s(to.as_str()));
        }
        match &change.paused_at {
            Some(Some(at)) => {
                set.push("pausedAt = :paused".into());
                update = update.expression_attribute_values(":paused", s(at));
            }
            Some(None) => remove.push("pausedAt"),
            None => {}
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let res = update
            .update_expression(expression)
            .condition_expression(condition)
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
            Err(e) => Err(ddb(e)),
        }
    }

    async fn promote_deployment(
        &self,
        env: &Environment,
        expected_version: u64,
        id: &str,
        at: &str,
    ) -> Result<bool> {
        let promote = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(env_pk(&env.name), dep_sk(id))))
            .update_expression("SET #st = :pending, promotedAt = :at, updatedAt = :at")
            .condition_expression(
                "#st IN (:pending, :awaiting) AND attribute_not_exists(promotedAt)",
            )
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":awaiting", s("awaiting-promotion"))
            .expression_attribute_values(":at", s(at))
            .build();
        let put_env = Put::builder()
            .table_name(&self.table)
            .set_item(Some(self.env_item(env)?))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", n(expected_version))
            .build();
        let res = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(built(promote)?).build())
            .transact_items(TransactWriteItem::builder().put(built(put_env)?).build())
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("TransactionCanceledException") => Ok(false),
            Err(e) => Err(ddb(e)),
        }
    }

    async fn mark_deployment_running(&self, environment: &str, id: &str) -> Result<bool> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(env_pk(environment), dep_sk(id))))
            .update_expression("SET #st = :running, updatedAt = :now")
            .condition_expression("#st = :pending")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":running", s("running"))
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":now", s(crate::clock::now_rfc3339()))
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
            Err(e) => Err(ddb(e)),
        }
    }

    async fn nudge_deployment(&self, environment: &str, id: &str) -> Result<bool> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(env_pk(environment), dep_sk(id))))
            .update_expression("SET updatedAt = :now")
            .condition_expression("#st IN (:pending, :awaiting, :running)")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":awaiting", s("awaiting-promotion"))
            .expression_attribute_values(":running", s("running"))
            .expression_attribute_values(":now", s(crate::clock::now_rfc3339()))
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
            Err(e) => Err(ddb(e)),
        }
    }

    async fn finish_deployment(
        &self,
        deployment: &Deployment,
        outcome: DeploymentStatus,
        health: Health,
    ) -> Result<bool> {
        let now = crate::clock::now_rfc3339();
        let status = serde_json::to_value(outcome)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let health = serde_json::to_value(health)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let close = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(
                env_pk(&deployment.environment_name),
                dep_sk(&deployment.id),
            )))
            .update_expression("SET #st = :out, updatedAt = :now, finishedAt = :now")
            .condition_expression("#st = :running AND pendingCount = :zero")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":out", s(status))
            .expression_attribute_values(":running", s("running"))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":now", s(now.clone()))
            .build();
        let release = self.release(
            &deployment.environment_name,
            &deployment.id,
            Some(&health),
            &now,
        )?;
        let close = TransactWriteItem::builder().update(built(close)?).build();
        let res = self
            .client
            .transact_write_items()
            .transact_items(close.clone())
            .transact_items(release)
            .send()
            .await;
        let reasons = match res {
            Ok(_) => return Ok(true),
            Err(e) => match e.as_service_error() {
                Some(aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c)) => {
                    c.cancellation_reasons().to_vec()
                }
                _ => return Err(ddb(e)),
            },
        };
        let failed =
            |i: usize| reasons.get(i).and_then(|r| r.code()) == Some("ConditionalCheckFailed");
        if failed(0) {
            return Ok(false);
        }
        if failed(1) {
            // The environment no longer points at it (deleted meanwhile): close the deployment alone.
            let res = self
                .client
                .transact_write_items()
                .transact_items(close)
                .send()
                .await;
            return match res {
                Ok(_) => Ok(true),
                Err(e) if e.code() == Some("TransactionCanceledException") => Ok(false),
                Err(e) => Err(ddb(e)),
            };
        }
        Err(Error::ConcurrentUpdate {
            what: format!("deployment {}", deployment.id),
        })
    }

    async fn get_slot(&self, key: &SlotKey) -> Result<Option<Slot>> {
        self.get(
            env_pk(&key.environment),
            slot_sk(&key.container_instance_arn),
        )
        .await
    }

    async fn slot_and_environment(
        &self,
        key: &SlotKey,
    ) -> Result<(Option<Slot>, Option<Environment>)> {
        let pk = env_pk(&key.environment);
        let slot_key = slot_sk(&key.container_instance_arn);
        let items = self
            .batch_get(vec![
                Self::key(pk.clone(), slot_key.clone()),
                Self::key(pk, ENV_SK.to_owned()),
            ])
            .await?;
        let (mut slot, mut env) = (None, None);
        for item in items {
            match item.get("sk").and_then(|v| v.as_s().ok()) {
                Some(sk) if *sk == slot_key => slot = Some(from_item(item)?),
                Some(sk) if sk == ENV_SK => env = Some(from_item(item)?),
                _ => {}
            }
        }
        Ok((slot, env))
    }

    async fn slots_on_host(&self, environments: &[&str], host: &str) -> Result<Vec<Slot>> {
        let keys = environments
            .iter()
            .map(|e| Self::key(env_pk(e), slot_sk(host)))
            .collect();
        self.batch_get(keys)
            .await?
            .into_iter()
            .map(from_item)
            .collect()
    }

    async fn slots_of(&self, environment: &str) -> Result<Vec<Slot>> {
        self.query_prefix(env_pk(environment), "HOST#")
            .await?
            .into_iter()
            .map(from_item)
            .collect()
    }

    async fn write_slots(&self, writes: &[SlotWrite]) -> Result<Vec<WriteOutcome>> {
        // Group by environment (a transaction guards one environment), keep the caller's order.
        let mut order: Vec<&str> = Vec::new();
        for w in writes {
            if !order.contains(&w.after.environment.as_str()) {
                order.push(&w.after.environment);
            }
        }
        let mut outcomes = vec![WriteOutcome::NotAttempted; writes.len()];
        for env in order {
            let idx: Vec<usize> = (0..writes.len())
                .filter(|&i| writes[i].after.environment == env)
                .collect();
            // Room for the environment check and up to two counter updates per chunk... and at most
            // one counter item per deployment the chunk touches; 96 slots leaves room for 4.
            for chunk in idx.chunks(TRANSACT_ITEMS - 4) {
                let ws: Vec<&SlotWrite> = chunk.iter().map(|&i| &writes[i]).collect();
                for (&i, o) in chunk.iter().zip(self.write_chunk(&ws).await?) {
                    outcomes[i] = o;
                }
            }
        }
        Ok(outcomes)
    }

    async fn delete_environment_records(&self, environment: &str) -> Result<()> {
        let items = self.query_prefix(env_pk(environment), "").await?;
        let keys: Vec<Item> = items
            .into_iter()
            .filter_map(|mut i| {
                Some(Self::key(
                    i.remove("pk")?.as_s().ok()?.clone(),
                    i.remove("sk")?.as_s().ok()?.clone(),
                ))
            })
            .filter(|k| k.get("sk").and_then(|v| v.as_s().ok()).map(String::as_str) != Some(ENV_SK))
            .collect();
        for chunk in keys.chunks(BATCH_WRITE_ITEMS) {
            let mut requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|k| {
                    built(DeleteRequest::builder().set_key(Some(k.clone())).build())
                        .map(|d| WriteRequest::builder().delete_request(d).build())
                })
                .collect::<Result<_>>()?;
            // Unprocessed items come back under throttling: retry them with a short backoff.
            for attempt in 0..8u32 {
                if requests.is_empty() {
                    break;
                }
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(ddb)?;
                requests = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&self.table))
                    .unwrap_or_default();
                if !requests.is_empty() {
                    tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
                }
            }
            if !requests.is_empty() {
                return Err(Error::Throttled {
                    service: "DynamoDB".into(),
                    message: "BatchWriteItem left items unprocessed".into(),
                });
            }
        }
        // The environment item last: while it exists the teardown can be retried.
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(env_pk(environment), ENV_SK.to_owned())))
            .send()
            .await
            .map_err(ddb)?;
        Ok(())
    }
}
