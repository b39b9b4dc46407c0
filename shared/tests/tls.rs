//! `shared::runtime::https_client`, the HTTPS client of every AWS call the functions make, against
//! a local TLS server whose certificate comes from a CA made in the test: certificates are
//! verified (an unknown CA is refused), and a CA given as extra roots (`SSL_CERT_FILE`) is trusted.

mod tls_support;

use shared::runtime::{https_client, public_roots};
use tls_support::{dynamodb, list_tables, TempDir, TABLE};

#[tokio::test]
async fn a_certificate_from_an_unknown_ca_is_refused() {
    let server = tls_support::start("refused").await;
    let client = dynamodb(None, Some(https_client(None).unwrap()), &server.endpoint);

    let error = list_tables(&client).await.unwrap_err();

    // rustls's verdict on the chain, not a connection or HTTP error: verification is on.
    assert!(error.contains("UnknownIssuer"), "{error}");
}

#[tokio::test]
async fn a_ca_given_as_extra_roots_is_trusted() {
    let server = tls_support::start("trusted").await;
    let http = https_client(Some(&server.ca_file)).unwrap();
    let client = dynamodb(None, Some(http), &server.endpoint);

    assert_eq!(list_tables(&client).await, Ok(vec![TABLE.to_owned()]));
}

#[test]
fn the_public_roots_hold_the_cas_aws_endpoints_chain_to() {
    // Amazon Trust Services' roots, and the Starfield root their cross-signs lead to.
    for name in [
        "Amazon Root CA 1",
        "Amazon Root CA 2",
        "Amazon Root CA 3",
        "Amazon Root CA 4",
        "Starfield Services Root Certificate Authority - G2",
    ] {
        let found = public_roots().iter().any(|cert| {
            cert.as_ref()
                .windows(name.len())
                .any(|w| w == name.as_bytes())
        });
        assert!(found, "{name} is not among the compiled-in roots");
    }
}

#[test]
fn every_public_root_is_usable_as_a_trust_anchor() {
    // The SDK builds its connector on the first request and panics on a root it cannot parse.
    let mut store = rustls::RootCertStore::empty();
    let (usable, unusable) = store.add_parsable_certificates(public_roots().iter().cloned());
    assert_eq!((usable, unusable), (public_roots().len(), 0));
}

#[test]
fn an_unusable_extra_roots_file_is_an_error_not_a_panic() {
    let dir = TempDir::new("bad-roots");
    let missing = dir.path().join("missing.pem");
    let error = https_client(Some(&missing)).unwrap_err().to_string();
    assert!(
        error.contains("SSL_CERT_FILE") && error.contains("missing.pem"),
        "{error}"
    );

    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "no certificate here\n").unwrap();
    let error = https_client(Some(&empty)).unwrap_err().to_string();
    assert!(error.contains("holds no CERTIFICATE"), "{error}");

    let broken = dir.path().join("broken.pem");
    std::fs::write(
        &broken,
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let error = https_client(Some(&broken)).unwrap_err().to_string();
    assert!(error.contains("not a usable root certificate"), "{error}");
}
