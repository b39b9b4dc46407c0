//! `shared::runtime::sdk_config` keeps the SDK default client's proxy settings: an HTTPS call goes
//! through the proxy `HTTPS_PROXY` names (a CONNECT tunnel). One test in its own process, as it
//! sets environment variables.

use std::net::Ipv4Addr;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use shared::runtime::sdk_config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[tokio::test]
async fn https_goes_through_the_proxy_of_https_proxy() {
    let proxy = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
    let first_line = tokio::spawn(async move {
        let (mut conn, _) = proxy.accept().await.unwrap();
        let mut buf = vec![0u8; 1024];
        let n = conn.read(&mut buf).await.unwrap();
        let _ = conn
            .write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")
            .await;
        let request = String::from_utf8_lossy(&buf[..n]).into_owned();
        request.lines().next().unwrap_or_default().to_owned()
    });
    for k in [
        "HTTP_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "no_proxy",
    ] {
        std::env::remove_var(k);
    }
    for (k, v) in [
        ("HTTPS_PROXY", proxy_url.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "x"),
        ("AWS_SECRET_ACCESS_KEY", "x"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ] {
        std::env::set_var(k, v);
    }

    let config = sdk_config().await.unwrap();
    let client = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&config)
            // A name that resolves nowhere: only the proxy can take the call.
            .endpoint_url("https://dynamodb.example.invalid")
            .retry_config(RetryConfig::disabled())
            .build(),
    );
    // Bounded: without the proxy the call would wait on a name lookup that cannot succeed here.
    let call = tokio::time::timeout(Duration::from_secs(10), client.list_tables().send()).await;
    assert!(matches!(call, Ok(Err(_))), "{call:?}");

    let line = tokio::time::timeout(Duration::from_secs(1), first_line).await;
    assert_eq!(
        line.expect("the proxy saw no connection").unwrap(),
        "CONNECT dynamodb.example.invalid:443 HTTP/1.1"
    );
}
