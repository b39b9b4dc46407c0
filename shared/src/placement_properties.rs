//! Property tests of placement across the whole decision loop, on the in-process fakes: two
//! daemons on a mixed fleet — `router` everywhere it fits, and `agent` only on hosts labelled
//! `gpu=true`, after `router` (dependsOn) — while hosts join, drain, leave, lose their agent, are
//! relabelled, and have their memory taken and given back by other tasks; tasks are killed; events
//! arrive duplicated, out of order, concurrently, or never. Checked after every step: never two
//! tasks of one daemon on a host. Checked once it settles (events delivered, two reconciles):
//! - no task on a host outside its selection (relabelled hosts lost or gained the agent);
//! - none on a host it cannot fit, and a host without one it belongs on is unschedulable
//!   because it truly lacks the room, with the reason;
//! - the agent never runs on a host where the router does not;
//! - unschedulable is never counted as a failure.

use proptest::prelude::*;
use serde_json::json;

use crate::domain::resources::{ContainerNeeds, Resources, TaskNeeds};
use crate::domain::{HostStatus, Placement};
use crate::executor::system_now_ms;
use crate::fakes::{FakeStore, FAKE_CLUSTER_ARN};
use crate::ports::Store;
use crate::services::deployments_api;
use crate::sim::{block_on, call_api, host_arn, Ev, Sim, HOSTS};

const ROUTER: &str = "router";
const AGENT: &str = "agent";
/// Free memory of a host that joins, and what each daemon reserves (MiB).
const HOST_MEMORY: i64 = 1024;
const ROUTER_MEMORY: i64 = 256;
const AGENT_MEMORY: i64 = 512;
/// What another workload takes when it lands on a host: the agent no longer fits beside it.
const SQUEEZE: i64 = 400;

#[derive(Debug, Clone)]
enum Op {
    Join(usize),
    Drain(usize),
    Disconnect(usize),
    Reconnect(usize),
    Deregister(usize),
    /// PutAttributes gpu=true (or removes it).
    Label(usize, bool),
    /// Another workload takes (true) or gives back (false) `SQUEEZE` MiB on the host.
    Squeeze(usize, bool),
    Kill(usize),
    Deliver {
        pick: usize,
        keep: bool,
    },
    DeliverConcurrently(usize),
    Reconcile,
    Lose(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..HOSTS).prop_map(Op::Join),
        1 => (0..HOSTS).prop_map(Op::Drain),
        1 => (0..HOSTS).prop_map(Op::Disconnect),
        1 => (0..HOSTS).prop_map(Op::Reconnect),
        1 => (0..HOSTS).prop_map(Op::Deregister),
        2 => (0..HOSTS, any::<bool>()).prop_map(|(i, b)| Op::Label(i, b)),
        2 => (0..HOSTS, any::<bool>()).prop_map(|(i, b)| Op::Squeeze(i, b)),
        2 => (0..8usize).prop_map(Op::Kill),
        6 => (0..16usize, any::<bool>()).prop_map(|(pick, keep)| Op::Deliver { pick, keep }),
        2 => (2..6usize).prop_map(Op::DeliverConcurrently),
        1 => Just(Op::Reconcile),
        1 => (0..16usize).prop_map(Op::Lose),
    ]
}

fn needs(memory: i64) -> TaskNeeds {
    TaskNeeds {
        containers: vec![ContainerNeeds {
            name: "main".into(),
            cpu: 128,
            memory: Some(memory),
            ..Default::default()
        }],
        ..Default::default()
    }
}

async fn api(sim: &Sim, method: &str, path: &[&str], body: serde_json::Value) {
    call_api(&sim.store, &sim.cluster, method, path, Some(body))
        .await
        .unwrap();
}

/// Both daemons created through the API (so the router knows its dependent) and deployed.
async fn mixed_fleet() -> (Sim, Vec<bool>) {
    let mut sim = Sim::new(
        FakeStore::default(),
        &[ROUTER, AGENT],
        Some(Resources {
            cpu: 4096,
            memory: HOST_MEMORY,
            ..Default::default()
        }),
    );
    sim.cluster
        .set_task_definition("router:1", needs(ROUTER_MEMORY));
    sim.cluster
        .set_task_definition("agent:1", needs(AGENT_MEMORY));
    api(&sim, "POST", &["environments"], json!({
        "name": ROUTER, "instanceGroup": {"cluster": FAKE_CLUSTER_ARN}, "taskDefinition": "router:1"
    }))
    .await;
    api(&sim, "POST", &["environments"], json!({
        "name": AGENT, "instanceGroup": {"cluster": FAKE_CLUSTER_ARN}, "taskDefinition": "agent:1",
        "placementConstraints": [{"type": "memberOf", "expression": "attribute:gpu == true"}],
        "dependsOn": [ROUTER]
    }))
    .await;
    for env in [ROUTER, AGENT] {
        let dep = deployments_api::create(&sim.store, env, None, None)
            .await
            .unwrap();
        sim.queue.push(Ev::Deployment(env.into(), dep.id));
    }
    (sim, vec![false; HOSTS])
}

async fn apply(sim: &mut Sim, squeezed: &mut [bool], op: &Op) {
    match op {
        Op::Join(i) => sim.set_host(*i, Some(HostStatus::Active), Some(true), None),
        Op::Drain(i) => sim.set_host(*i, Some(HostStatus::Draining), None, None),
        Op::Disconnect(i) => sim.set_host(*i, None, Some(false), None),
        Op::Reconnect(i) => sim.set_host(*i, None, Some(true), None),
        Op::Deregister(i) => sim.set_host(*i, Some(HostStatus::Inactive), Some(false), None),
        Op::Label(i, on) => sim.set_host(*i, None, None, Some(("gpu", on.then_some("true")))),
        Op::Squeeze(i, take) => {
            if sim.cluster.host(&host_arn(*i)).is_some() && squeezed[*i] != *take {
                squeezed[*i] = *take;
                sim.take_memory(*i, if *take { SQUEEZE } else { -SQUEEZE });
            }
        }
        Op::Kill(i) => {
            let live = sim.cluster.live_tasks();
            if !live.is_empty() {
                sim.cluster.kill(&live[i % live.len()].arn);
            }
        }
        Op::Deliver { pick, keep } => sim.deliver_one(*pick, *keep).await,
        Op::DeliverConcurrently(n) => sim.deliver_concurrently(*n).await,
        Op::Reconcile => sim.reconcile(system_now_ms()).await,
        Op::Lose(i) => sim.lose(*i),
    }
    sim.settle().await;
}

fn run(ops: Vec<Op>) {
    block_on(async {
        let (mut sim, mut squeezed) = mixed_fleet().await;
        sim.settle().await;
        for op in &ops {
            apply(&mut sim, &mut squeezed, op).await;
            sim.check_safety();
        }
        sim.quiesce().await;

        let slots = sim.store.slots();
        let slot = |env: &str, i: usize| {
            slots
                .iter()
                .find(|s| s.environment == env && s.host.container_instance_arn == host_arn(i))
                .cloned()
        };
        for i in 0..HOSTS {
            let Some(h) = sim.cluster.host(&host_arn(i)) else {
                continue;
            };
            let (router, agent) = (sim.tasks_on(ROUTER, i), sim.tasks_on(AGENT, i));
            if !h.is_eligible() {
                if h.state.status != HostStatus::Active {
                    assert_eq!((router, agent), (0, 0), "a daemon left on {h:?}");
                }
                continue;
            }
            let gpu = h
                .attributes
                .get("gpu")
                .is_some_and(|v| v.as_deref() == Some("true"));
            let free = h.remaining.as_ref().map_or(0, |r| r.memory);
            // The router runs wherever it fits; where it does not, it says so, truly.
            if router == 0 {
                let s = slot(ROUTER, i).unwrap_or_else(|| panic!("no router slot on {h:?}"));
                assert!(
                    matches!(s.placement, Placement::Unschedulable { .. }) && free < ROUTER_MEMORY,
                    "router missing on {h:?}: {s:?}"
                );
            }
            // The agent: only on gpu hosts, never without the router, and wherever it fits.
            assert!(agent == 0 || gpu, "agent on an unlabelled host {h:?}");
            assert!(
                agent == 0 || router == 1,
                "agent without the router on {h:?}"
            );
            if gpu && router == 1 && agent == 0 {
                let s = slot(AGENT, i).unwrap_or_else(|| panic!("no agent slot on {h:?}"));
                assert!(
                    matches!(s.placement, Placement::Unschedulable { .. }) && free < AGENT_MEMORY,
                    "agent missing on {h:?} ({free} MiB free): {s:?}"
                );
            }
        }
        // Unschedulable is never a failure: no resource refusal was ever counted.
        for s in &slots {
            assert!(
                !s.last_failure
                    .as_deref()
                    .unwrap_or_default()
                    .starts_with("RESOURCE"),
                "{s:?}"
            );
        }
        for env in [ROUTER, AGENT] {
            let e = sim.store.get_environment(env).await.unwrap().unwrap();
            let id = e.deployed.as_ref().unwrap().deployment_id.clone();
            let d = sim.store.deployment(env, &id).unwrap();
            assert!(
                d.failures.iter().all(|f| !f.reason.starts_with("RESOURCE")),
                "{d:?}"
            );
        }
    });
}

proptest! {
    // PROPTEST_CASES=20000 for a longer soak.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(300),
        ..ProptestConfig::default()
    })]

    #[test]
    fn daemons_run_where_they_belong_fit_and_follow_their_dependencies(
        ops in prop::collection::vec(op(), 1..60)
    ) {
        run(ops);
    }
}

#[test]
fn a_relabelled_and_squeezed_fleet_settles_as_placement_says() {
    use Op::*;
    run(vec![
        Join(0),
        Join(1),
        Join(2),
        Label(0, true),
        Label(1, true),
        DeliverConcurrently(5),
        Squeeze(1, true),
        Deliver {
            pick: 3,
            keep: true,
        },
        Label(2, true),
        Label(0, false),
        Kill(0),
        DeliverConcurrently(4),
        Squeeze(1, false),
        Drain(2),
    ]);
}
