//! What a rolling update costs, counted on the wire (moto): the cluster is read once per wave of
//! `maxUnavailable` hosts, never per counter change, and a host replaced costs a bounded number of
//! AWS calls all in (StopTask, StartTask, the slot and counter writes, the task events' reads, the
//! deployment's steps).

use integration_tests::{Pump, World};

/// A rolling update of `hosts` hosts at 25 % (`waves` waves): its AWS calls, counted.
async fn roll(hosts: usize) -> (World, std::collections::BTreeMap<String, usize>) {
    let w = World::new().await;
    let all = w.add_hosts(hosts).await;
    w.create_environment("roll").await;
    w.deploy("roll").await;
    let v2 = w.register_task_definition().await;
    let (status, body) = w
        .api(
            "PUT",
            "/v1/environments/roll",
            Some(serde_json::json!({"taskDefinition": v2, "updateStrategy": {"maxUnavailable": "25%"}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let mut pump = Pump::from_now(&w).await;
    w.create_deployment("roll").await;
    w.calls.reset();
    pump.run(&w, "roll", &all, None).await;
    let calls = w.calls.snapshot();
    // everything replaced
    let tasks = w.all_tasks().await;
    let on_v2 = tasks
        .iter()
        .filter(|t| t.status != "STOPPED" && t.task_definition == v2)
        .count();
    assert_eq!(on_v2, hosts, "every host on the new revision");
    (w, calls)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rolling_update_reads_the_cluster_once_per_wave_and_costs_at_most_8_calls_a_host() {
    let hosts = 40;
    let waves = 4; // 25 % of 40
    let (_w, calls) = roll(hosts).await;
    let get = |op: &str| calls.get(op).copied().unwrap_or(0);
    let reads = get("ECS.ListContainerInstances") + get("ECS.DescribeContainerInstances");
    // ECS cluster reads: at most one List + one Describe (100 hosts a call) per wave
    assert!(
        reads <= 2 * waves * hosts.div_ceil(100),
        "{reads} cluster reads for {waves} waves: {calls:?}"
    );
    assert_eq!(get("ECS.StopTask"), hosts, "{calls:?}");
    assert_eq!(get("ECS.StartTask"), hosts, "{calls:?}");
    let total: usize = calls.values().sum();
    println!(
        "{hosts} hosts, {waves} waves: {total} calls ({:.2} a host): {calls:?}",
        total as f64 / hosts as f64
    );
    assert!(
        total <= 8 * hosts,
        "{total} AWS calls for {hosts} hosts replaced ({:.2} a host): {calls:?}",
        total as f64 / hosts as f64
    );
}
