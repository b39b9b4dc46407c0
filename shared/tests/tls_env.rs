//! `shared::runtime::sdk_config`, what every function's `App::from_env` builds its clients from,
//! and the certificate variables: the certificate directory (`SSL_CERT_DIR`, or the system's) is not
//! read, and `SSL_CERT_FILE` adds its certificates. One test in its own process, as it sets
//! environment variables.

mod tls_support;

use shared::runtime::sdk_config;
use tls_support::{dynamodb, list_tables, TempDir, TABLE};

#[tokio::test]
async fn the_certificate_directory_is_not_read_and_ssl_cert_file_adds_roots() {
    let server = tls_support::start("env").await;
    // A certificate directory that trusts the test CA (under its name and a c_rehash-style one)
    // next to a file that is no certificate at all: a client that walked it would trust the
    // server, or fail to build.
    let certs = TempDir::new("env-certs");
    let ca = std::fs::read(&server.ca_file).unwrap();
    std::fs::write(certs.path().join("test-ca.pem"), &ca).unwrap();
    std::fs::write(certs.path().join("0123abcd.0"), &ca).unwrap();
    std::fs::write(certs.path().join("README"), "not a certificate\n").unwrap();
    std::env::set_var("SSL_CERT_DIR", certs.path());
    std::env::remove_var("SSL_CERT_FILE");
    for (k, v) in [
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "x"),
        ("AWS_SECRET_ACCESS_KEY", "x"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ] {
        std::env::set_var(k, v);
    }

    let config = sdk_config().await.unwrap();
    let error = list_tables(&dynamodb(Some(&config), None, &server.endpoint))
        .await
        .unwrap_err();
    assert!(error.contains("UnknownIssuer"), "{error}");

    std::env::set_var("SSL_CERT_FILE", &server.ca_file);
    let config = sdk_config().await.unwrap();
    let trusted = list_tables(&dynamodb(Some(&config), None, &server.endpoint)).await;
    assert_eq!(trusted, Ok(vec![TABLE.to_owned()]));
}
