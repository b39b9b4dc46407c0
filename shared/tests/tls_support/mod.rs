//! A TLS server on 127.0.0.1 with a certificate from a CA made here, answering every HTTP request
//! as DynamoDB's ListTables would: for the tests of `shared::runtime::https_client`.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The table name the server answers with: a client that sees it got past TLS.
pub const TABLE: &str = "tls-ok";

pub struct TlsServer {
    /// `https://127.0.0.1:<port>`
    pub endpoint: String,
    /// The test CA's certificate, PEM, in a file of its own directory.
    pub ca_file: PathBuf,
    _dir: TempDir,
}

/// Starts the server on the current tokio runtime; it serves until the runtime ends.
pub async fn start(name: &str) -> TlsServer {
    let dir = TempDir::new(name);
    let (ca_pem, chain, key) = certificates();
    let ca_file = dir.0.join("test-ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A refused certificate ends here: the client aborts the handshake.
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    answer(&mut tls).await;
                }
            });
        }
    });
    TlsServer {
        endpoint: format!("https://{addr}"),
        ca_file,
        _dir: dir,
    }
}

/// Reads one request (headers, then Content-Length bytes) and answers ListTables.
async fn answer<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(stream: &mut S) {
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    let body_len = loop {
        let Ok(n) = stream.read(&mut buf).await else {
            return;
        };
        if n == 0 {
            return;
        }
        request.extend_from_slice(&buf[..n]);
        if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&request[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break end + 4 + length;
        }
    };
    while request.len() < body_len {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let body = format!(r#"{{"TableNames":["{TABLE}"]}}"#);
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// The CA's PEM, and the server's chain (its certificate for 127.0.0.1, then the CA) and key.
fn certificates() -> (String, Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "daemon-scheduler test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);

    let server_key = KeyPair::generate().unwrap();
    let mut server = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    server
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    let server_cert = server.signed_by(&server_key, &issuer).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
    (
        ca_cert.pem(),
        vec![server_cert.der().clone(), ca_cert.der().clone()],
        key,
    )
}

/// A DynamoDB client on `config` (or a bare one over `http`) sent to `endpoint`, one attempt.
pub fn dynamodb(
    config: Option<&SdkConfig>,
    http: Option<SharedHttpClient>,
    endpoint: &str,
) -> aws_sdk_dynamodb::Client {
    let mut builder = match config {
        Some(config) => aws_sdk_dynamodb::config::Builder::from(config),
        None => aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("x", "x", None, None, "test")),
    };
    if let Some(http) = http {
        builder = builder.http_client(http);
    }
    aws_sdk_dynamodb::Client::from_conf(
        builder
            .endpoint_url(endpoint)
            .retry_config(RetryConfig::disabled())
            .build(),
    )
}

/// ListTables: `Ok(names)` when the request got an HTTP answer, else the error with its sources.
pub async fn list_tables(client: &aws_sdk_dynamodb::Client) -> Result<Vec<String>, String> {
    client
        .list_tables()
        .send()
        .await
        .map(|out| out.table_names().to_vec())
        .map_err(|e| {
            format!(
                "{:?}",
                aws_smithy_types::error::display::DisplayErrorContext(e)
            )
        })
}

/// A directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("shared-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
