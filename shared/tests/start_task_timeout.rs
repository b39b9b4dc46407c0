//! The ECS adapter gives a StartTask call up after `START_TASK_ATTEMPT_TIMEOUT_MS` when ECS does
//! not answer: the launcher's call cannot hang on past its claim's lease (the launch deadline is
//! derived from it). Its outcome is unknown (ECS may have started the task): the claim stays for
//! the lease check.

use std::time::{Duration, Instant};

use shared::adapters::EcsCluster;
use shared::domain::resources::Reservation;
use shared::domain::LaunchSpec;
use shared::planner::START_TASK_ATTEMPT_TIMEOUT_MS;
use shared::ports::{Cluster, StartRequest};

/// Accepts connections, reads the request, never answers.
async fn silent_server() -> String {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let _ = sock.read(&mut buf).await;
                tokio::time::sleep(Duration::from_secs(3600)).await;
                drop(sock);
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_start_task_that_ecs_never_answers_is_given_up_and_its_outcome_unknown() {
    let endpoint = silent_server().await;
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_ecs::config::Credentials::new(
            "x", "x", None, None, "test",
        ))
        .endpoint_url(&endpoint)
        .load()
        .await;
    let cluster = EcsCluster::new(aws_sdk_ecs::Client::new(&config));
    let launch = LaunchSpec {
        task_definition: "arn:aws:ecs:us-east-1:123456789012:task-definition/agent:1".into(),
        revision: 1,
        started_by: "01JCLAIM".into(),
        group: "daemon-scheduler:agent".into(),
        overrides: None,
        reserves: Reservation::default(),
    };
    let hosts = vec!["arn:aws:ecs:us-east-1:123456789012:container-instance/c/h1".to_owned()];
    let started = Instant::now();
    let outcome = cluster
        .start_tasks(StartRequest {
            cluster_arn: "arn:aws:ecs:us-east-1:123456789012:cluster/c",
            launch: &launch,
            container_instances: &hosts,
        })
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(outcome.unknown.len(), 1, "{outcome:?}");
    assert!(outcome.started.is_empty() && outcome.refused.is_empty());
    let limit = Duration::from_millis(START_TASK_ATTEMPT_TIMEOUT_MS as u64);
    assert!(
        took >= limit && took < limit + Duration::from_secs(2),
        "{took:?}"
    );
}
