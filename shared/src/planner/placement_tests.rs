//! Unit tests of placement as the planner applies it: which hosts, whether it fits, what each
//! host gets, and in what order daemons start and stop on a host. GIVEN / WHEN / THEN.

use serde_json::json;

use super::*;
use crate::domain::overrides::TaskOverride;
use crate::domain::resources::{ContainerNeeds, Reservation, Resources, TaskNeeds};
use crate::domain::{
    DaemonSpec, Host, HostState, HostStatus, Order, Placement, PlacementConstraint, SizingRule,
    Slot, SlotTask, Target, TaskObservation, TaskStatus, Verdict,
};

const CLUSTER: &str = "arn:aws:ecs:us-east-1:123456789012:cluster/demo";
const HOST: &str = "arn:aws:ecs:us-east-1:123456789012:container-instance/demo/h1";
const NOW: i64 = 5_000_000;

/// A task definition of one container reserving `memory` MiB.
pub(super) fn needs(memory: i64) -> TaskNeeds {
    TaskNeeds {
        containers: vec![ContainerNeeds {
            name: "agent".into(),
            cpu: 128,
            memory: Some(memory),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn spec(memory: i64) -> DaemonSpec {
    revision_spec(1, memory)
}

/// Revision `n`'s task definition (`agent:n`), reserving `memory` MiB.
fn revision_spec(n: u32, memory: i64) -> DaemonSpec {
    DaemonSpec::of_task_definition(
        &format!("arn:aws:ecs:us-east-1:123456789012:task-definition/agent:{n}"),
        needs(memory),
    )
}

fn target_of(env: &str, revision: u32, spec: &DaemonSpec) -> Target {
    Target::new(env, CLUSTER, revision, spec, "D1", Some("D1"))
}

fn constraint(expression: &str) -> Vec<PlacementConstraint> {
    PlacementConstraint::parse_list(
        "placementConstraints",
        &json!([{"type": "memberOf", "expression": expression}]),
    )
    .unwrap()
}

/// An ACTIVE host at `version` with these attributes and `free` MiB of memory (4,096 CPU units).
fn host(version: i64, attributes: &[(&str, &str)], free: i64) -> Host {
    let mut h = Host::from_state(HostState {
        container_instance_arn: HOST.into(),
        status: HostStatus::Active,
        agent_connected: true,
        version,
        other_tasks: None,
    });
    h.ec2_instance_id = Some("i-0abc".into());
    h.attributes = attributes
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Some((*v).to_owned())))
        .collect();
    h.remaining = Some(Resources {
        cpu: 4096,
        memory: free,
        ..Default::default()
    });
    h
}

fn none() -> Order {
    Order::none()
}

fn start_of(t: &Transition) -> Option<&crate::domain::LaunchSpec> {
    match &t.effect {
        Effect::Start(l) => Some(l),
        _ => None,
    }
}

fn running_slot(env: &str, t: &Target, h: &Host) -> Slot {
    let claimed = plan_host(Some(t), None, Some(h), &none(), NOW, "C")
        .next
        .unwrap();
    let mut s = claimed;
    s.environment = env.into();
    s.task = SlotTask::Running {
        task_arn: format!("task-{env}"),
        version: 2,
        since_ms: 0,
    };
    s.rev = 2;
    s
}

#[test]
fn a_host_outside_the_selection_gets_nothing_and_says_why() {
    let mut s = spec(256);
    s.placement_constraints = constraint("attribute:gpu == true");
    let t = target_of("exporter", 1, &s);
    // WHEN a host without the label joins
    let plain = plan_host(Some(&t), None, Some(&host(1, &[], 4000)), &none(), NOW, "C");
    // THEN nothing starts, and the slot records why
    assert_eq!(plain.effect, Effect::None);
    let rec = plain.next.expect("the verdict is recorded");
    assert!(
        matches!(&rec.placement, Placement::Excluded { reason } if reason.contains("attribute:gpu == true")),
        "{:?}",
        rec.placement
    );
    assert_eq!(counters::bucket(&rec), None, "not desired");
    // AND a labelled host gets the daemon
    let gpu = plan_host(
        Some(&t),
        None,
        Some(&host(1, &[("gpu", "true")], 4000)),
        &none(),
        NOW,
        "C",
    );
    assert!(start_of(&gpu).is_some());
}

#[test]
fn relabelling_a_host_moves_the_daemon_off_and_back() {
    let mut s = spec(256);
    s.placement_constraints = constraint("attribute:gpu == true");
    let t = target_of("exporter", 1, &s);
    let running = running_slot("exporter", &t, &host(1, &[("gpu", "true")], 4000));
    // WHEN PutAttributes removes the label (a newer instance event)
    let off = plan_host(
        Some(&t),
        Some(&running),
        Some(&host(2, &[], 4000)),
        &none(),
        NOW,
        "C",
    );
    // THEN the daemon is stopped there
    assert!(matches!(off.effect, Effect::Stop { ref task_arn, .. } if task_arn == "task-exporter"));
    let stopping = off.next.unwrap();
    let stopped = plan_task(
        &stopping,
        &TaskObservation {
            task_arn: "task-exporter".into(),
            container_instance_arn: HOST.into(),
            environment: "exporter".into(),
            started_by: Some("D1".into()),
            task_definition: None,
            last_status: TaskStatus::Stopped,
            desired_status: TaskStatus::Stopped,
            stopped_reason: Some("daemon-scheduler:not placed here".into()),
            version: 3,
            ran_for_ms: None,
        },
        &none(),
        NOW,
        "C2",
    )
    .next
    .unwrap();
    assert_eq!(stopped.task, SlotTask::Vacant, "and not restarted");
    // WHEN the label comes back, it starts again
    let back = plan_host(
        Some(&t),
        Some(&stopped),
        Some(&host(3, &[("gpu", "true")], 4000)),
        &none(),
        NOW,
        "C3",
    );
    assert!(start_of(&back).is_some());
}

#[test]
fn a_host_without_room_is_unschedulable_with_the_reason_never_failed_and_retried_when_it_changes() {
    let t = target_of("agent", 1, &spec(512));
    // WHEN a host with 300 MiB free joins
    let small = plan_host(Some(&t), None, Some(&host(1, &[], 300)), &none(), NOW, "C");
    // THEN it is unschedulable with the reason, no failure, no timer, not desired
    assert_eq!(small.effect, Effect::None);
    let rec = small.next.unwrap();
    assert_eq!(
        rec.placement,
        Placement::Unschedulable {
            reason: "needs 512 MiB memory, 300 free".into(),
            revision: 1,
            deployment: Some("D1".into()),
        }
    );
    assert_eq!(
        (rec.failures, rec.retry_at_ms, rec.last_failure.clone()),
        (0, 0, None)
    );
    assert_eq!(counters::bucket(&rec), None);
    // AND once the host has room (another task stopped: a newer event), it starts
    let roomy = plan_host(
        Some(&t),
        Some(&rec),
        Some(&host(2, &[], 900)),
        &none(),
        NOW,
        "C2",
    );
    assert!(start_of(&roomy).is_some());
}

#[test]
fn the_platform_must_match() {
    let mut s = spec(256);
    s.needs.cpu_architecture = Some("ARM64".into());
    let t = target_of("agent", 1, &s);
    let x86 = host(1, &[("ecs.cpu-architecture", "x86_64")], 4000);
    match t.wants(&x86, &none(), None) {
        Verdict::Unschedulable(reason) => assert!(reason.contains("ARM64"), "{reason}"),
        v => panic!("{v:?}"),
    }
    let arm = host(1, &[("ecs.cpu-architecture", "arm64")], 4000);
    assert!(matches!(t.wants(&arm, &none(), None), Verdict::Run(_)));
}

#[test]
fn overrides_are_filled_from_each_host_and_a_missing_value_makes_it_unschedulable() {
    let mut s = spec(256);
    s.overrides = Some(
        TaskOverride::parse(
            "overrides",
            &json!({"containerOverrides": [{"name": "agent", "environment": [
                {"name": "AZ", "value": "${host.availabilityZone}"},
                {"name": "TEAM", "value": "${attribute:team}"},
                {"name": "ID", "value": "${host.instanceId}"}]}]}),
            &s.needs,
        )
        .unwrap(),
    );
    let t = target_of("agent", 1, &s);
    let h = host(
        1,
        &[("ecs.availability-zone", "us-east-1b"), ("team", "obs")],
        4000,
    );
    let Verdict::Run(launch) = t.wants(&h, &none(), None) else {
        panic!("runs")
    };
    let env = launch.overrides.unwrap().container_overrides[0]
        .environment
        .clone()
        .unwrap();
    let values: Vec<&str> = env.iter().map(|kv| kv.value.as_str()).collect();
    assert_eq!(values, ["us-east-1b", "obs", "i-0abc"]);
    // A host without `team` cannot run it, and says which value is missing.
    let bare = host(1, &[("ecs.availability-zone", "us-east-1a")], 4000);
    match t.wants(&bare, &none(), None) {
        Verdict::Unschedulable(reason) => assert!(reason.contains("team"), "{reason}"),
        v => panic!("{v:?}"),
    }
}

#[test]
fn the_first_matching_sizing_rule_sizes_the_task_and_fit_uses_that_size() {
    let mut s = spec(256);
    s.sizing = SizingRule::parse_list(
        "sizing",
        &json!([
            {"expression": "attribute:ecs.instance-type =~ m5\\..*", "cpu": "1024", "memory": "2 GB"},
            {"expression": "attribute:ecs.instance-type =~ t3\\..*", "cpu": 256, "memory": 512},
        ]),
    )
    .unwrap();
    let t = target_of("agent", 1, &s);
    let big = host(1, &[("ecs.instance-type", "m5.large")], 8000);
    let Verdict::Run(launch) = t.wants(&big, &none(), None) else {
        panic!("runs")
    };
    let o = launch.overrides.clone().unwrap();
    assert_eq!(
        (o.cpu.as_deref(), o.memory.as_deref()),
        (Some("1024"), Some("2048"))
    );
    assert_eq!((launch.reserves.cpu, launch.reserves.memory), (1024, 2048));
    let Verdict::Run(small) = t.wants(
        &host(1, &[("ecs.instance-type", "t3.small")], 8000),
        &none(),
        None,
    ) else {
        panic!("runs")
    };
    assert_eq!(small.reserves.memory, 512);
    // No rule matches: the task definition's own size.
    let Verdict::Run(plain) = t.wants(
        &host(1, &[("ecs.instance-type", "c6g.xlarge")], 8000),
        &none(),
        None,
    ) else {
        panic!("runs")
    };
    assert_eq!((plain.overrides, plain.reserves.memory), (None, 256));
    // An m5 host with 1,500 MiB free cannot take the 2 GB size.
    let tight = host(1, &[("ecs.instance-type", "m5.large")], 1500);
    assert!(
        matches!(t.wants(&tight, &none(), None), Verdict::Unschedulable(r) if r.contains("2048"))
    );
}

#[test]
fn a_replacement_is_fitted_with_what_the_old_task_gives_back() {
    // GIVEN a host running revision 1 (256 MiB) with 1,000 MiB free
    let old = target_of("agent", 1, &spec(256));
    let running = running_slot("agent", &old, &host(1, &[], 4000));
    let h = host(2, &[], 1000);
    // WHEN revision 2 needs 1,200 MiB: 1,000 free + 256 given back fits
    let two = target_of("agent", 2, &revision_spec(2, 1200));
    let own = Some(&running.launch.as_ref().unwrap().reserves);
    let v = two.wants(&h, &none(), own);
    assert!(needs_replacement(&two, &running, &v), "{v:?}");
    // WHEN revision 3 needs 2,000 MiB it does not: the host keeps revision 1, nothing is stopped
    let three = target_of("agent", 3, &revision_spec(3, 2000));
    let v = three.wants(&h, &none(), own);
    assert!(matches!(v, Verdict::Unschedulable(_)), "{v:?}");
    assert!(!needs_replacement(&three, &running, &v));
    let t = plan_host(Some(&three), Some(&running), Some(&h), &none(), NOW, "C");
    assert!(!matches!(t.effect, Effect::Stop { .. }));
    // AND if that old task crashes, it restarts as it was (the new revision cannot run there)
    let rec = t.next.unwrap_or(running.clone());
    let mut crashed = rec.clone();
    crashed.task = SlotTask::Vacant;
    assert!(
        matches!(plan_restart(&crashed, &none(), NOW, "C").effect, Effect::Start(ref l) if l.revision == 1)
    );
}

#[test]
fn a_new_selector_leaves_hosts_out_within_the_rollout_budget() {
    // GIVEN a host running revision 1, and revision 2 that selects only gpu hosts
    let one = target_of("agent", 1, &spec(256));
    let running = running_slot("agent", &one, &host(1, &[], 4000));
    let mut s2 = spec(256);
    s2.placement_constraints = constraint("attribute:gpu exists");
    let two = target_of("agent", 2, &s2);
    let h = host(1, &[], 4000);
    let v = two.wants(&h, &none(), None);
    // THEN a plain observation does not stop it (that is the rollout's, within its budget)…
    let seen = plan_host(Some(&two), Some(&running), Some(&h), &none(), NOW, "C");
    assert!(!matches!(seen.effect, Effect::Stop { .. }));
    // …and the rollout's replacement stops it, counted pending until it is gone
    assert!(needs_replacement(&two, &running, &v));
    let r = plan_replace(&two, &running, &v);
    assert!(matches!(r.effect, Effect::Stop { .. }));
    let stopping = r.next.unwrap();
    assert_eq!(counters::bucket(&stopping), Some(("D1", Bucket::Pending)));
    let mut gone = stopping.clone();
    gone.task = SlotTask::Vacant;
    assert_eq!(counters::bucket(&gone), None, "then it leaves the counts");
    assert_eq!(plan_restart(&gone, &none(), NOW, "C").effect, Effect::None);
}

fn order_for(env: &str, depends_on: &[&str], neighbours: &[Slot]) -> Order {
    let deps: Vec<String> = depends_on.iter().map(|d| (*d).to_owned()).collect();
    Order::on_host(env, &deps, neighbours)
}

#[test]
fn a_daemon_waits_for_the_one_it_depends_on_and_starts_when_that_one_is_healthy() {
    let router_t = target_of("router", 1, &spec(128));
    let mut agent_spec = spec(128);
    agent_spec.depends_on = vec!["router".into()];
    let agent_t = target_of("agent", 1, &agent_spec);
    let h = host(1, &[], 4000);
    // GIVEN the router launching on the host
    let router = plan_host(Some(&router_t), None, Some(&h), &none(), NOW, "C")
        .next
        .unwrap();
    // WHEN the agent is planned there
    let order = order_for("agent", &["router"], std::slice::from_ref(&router));
    let agent = plan_host(Some(&agent_t), None, Some(&h), &order, NOW, "C2");
    // THEN it waits, with the reason, holding what it will launch
    assert_eq!(agent.effect, Effect::None);
    let waiting = agent.next.unwrap();
    assert!(
        matches!(&waiting.placement, Placement::Waiting { reason } if reason.contains("router"))
    );
    assert!(waiting.launch.is_some());
    // WHEN the router runs and is healthy, the agent's record alone releases it
    let mut healthy = router.clone();
    healthy.task = SlotTask::Running {
        task_arn: "r".into(),
        version: 1,
        since_ms: 0,
    };
    let order = order_for("agent", &["router"], std::slice::from_ref(&healthy));
    let released = plan_restart(&waiting, &order, NOW, "C3");
    assert!(start_of(&released).is_some());
    assert_eq!(released.next.unwrap().placement, Placement::Runs);
}

#[test]
fn a_daemon_whose_dependency_will_not_run_on_a_host_does_not_run_there_either() {
    let mut router_spec = spec(128);
    router_spec.placement_constraints = constraint("attribute:edge == true");
    let router_t = target_of("router", 1, &router_spec);
    let mut agent_spec = spec(128);
    agent_spec.depends_on = vec!["router".into()];
    let agent_t = target_of("agent", 1, &agent_spec);
    let h = host(2, &[], 4000);
    let router = plan_host(Some(&router_t), None, Some(&h), &none(), NOW, "C")
        .next
        .unwrap();
    let order = order_for("agent", &["router"], std::slice::from_ref(&router));
    // A running agent there is stopped; a vacant one shows it waits, and why.
    let running = running_slot("agent", &agent_t, &host(1, &[], 4000));
    let t = plan_host(Some(&agent_t), Some(&running), Some(&h), &order, NOW, "C2");
    assert!(matches!(t.effect, Effect::Stop { .. }), "{t:?}");
    let vacant = plan_host(Some(&agent_t), None, Some(&h), &order, NOW, "C3")
        .next
        .unwrap();
    assert_eq!(vacant.placement.label(), "waiting");
    assert!(vacant
        .placement
        .reason()
        .unwrap()
        .contains("router does not run on this host"));
    assert!(!vacant.placement.is_desired());
}

#[test]
fn on_a_draining_host_a_daemon_stops_only_after_those_depending_on_it() {
    let router_t = target_of("router", 1, &spec(128));
    let mut agent_spec = spec(128);
    agent_spec.depends_on = vec!["router".into()];
    let agent_t = target_of("agent", 1, &agent_spec);
    let router = running_slot("router", &router_t, &host(1, &[], 4000));
    let mut agent = running_slot("agent", &agent_t, &host(1, &[], 4000));
    agent.depends_on = vec!["router".into()];
    let mut draining = host(2, &[], 4000);
    draining.state.status = HostStatus::Draining;
    draining.state.other_tasks = Some(0);
    // WHILE the agent still runs, the router stays
    let order = order_for("router", &[], std::slice::from_ref(&agent));
    assert!(order.dependents_live);
    let t = plan_host(
        Some(&router_t),
        Some(&router),
        Some(&draining),
        &order,
        NOW,
        "C",
    );
    assert!(!matches!(t.effect, Effect::Stop { .. }));
    // AND the agent itself stops
    let t = plan_host(
        Some(&agent_t),
        Some(&agent),
        Some(&draining),
        &none(),
        NOW,
        "C",
    );
    assert!(matches!(t.effect, Effect::Stop { .. }));
    // ONCE the agent is gone, the router stops too
    let mut gone = agent.clone();
    gone.task = SlotTask::Vacant;
    let order = order_for("router", &[], std::slice::from_ref(&gone));
    let t = plan_host(
        Some(&router_t),
        Some(&router),
        Some(&draining),
        &order,
        NOW,
        "C",
    );
    assert!(matches!(t.effect, Effect::Stop { .. }));
}

#[test]
fn fit_counts_the_reservation_given_back() {
    let free = Resources {
        cpu: 1000,
        memory: 300,
        ..Default::default()
    };
    let want = Reservation {
        cpu: 128,
        memory: 512,
        ..Default::default()
    };
    assert!(want.fits(&free, None).is_err());
    let own = Reservation {
        cpu: 128,
        memory: 256,
        ..Default::default()
    };
    assert!(want.fits(&free, Some(&own)).is_ok());
}
