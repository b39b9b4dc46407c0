//! The API client: one SigV4-signed HTTP request per call, the answer's JSON or its error body.

use std::fmt;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::endpoint::route_url;
use crate::signing::{sign_request, SERVICE};
use crate::Error;

/// An error answer of the API (`{"code","message","field"?}`), or of API Gateway itself
/// (`{"message"}`, e.g. 403 for a bad signature).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: Option<String>,
    pub message: String,
    pub field: Option<String>,
}

impl ApiError {
    pub fn from_body(status: u16, body: &[u8]) -> Self {
        let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let text = |k: &str| json.get(k).and_then(Value::as_str).map(str::to_owned);
        let message = text("message")
            .or_else(|| text("Message"))
            .unwrap_or_else(|| {
                let raw = String::from_utf8_lossy(body).trim().to_owned();
                if raw.is_empty() {
                    format!("HTTP {status} with an empty body")
                } else {
                    raw
                }
            });
        Self {
            status,
            code: text("code"),
            message,
            field: text("field"),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.code {
            Some(code) => write!(f, "{code} (HTTP {}): {}", self.status, self.message)?,
            None => write!(f, "HTTP {}: {}", self.status, self.message)?,
        }
        if let Some(field) = &self.field {
            write!(f, " [field: {field}]")?;
        }
        Ok(())
    }
}

/// A successful answer: the body as received (for `--output json`) and parsed.
#[derive(Debug, Clone)]
pub struct Answer {
    pub raw: String,
    pub json: Value,
}

pub struct ApiClient {
    base: String,
    region: String,
    credentials: SharedCredentialsProvider,
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl ApiClient {
    pub fn new(
        base: String,
        region: String,
        credentials: SharedCredentialsProvider,
        timeout: Duration,
    ) -> Result<Self, Error> {
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        let builder = if base.starts_with("https://") {
            builder
                .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
                .map_err(|e| Error::Other(format!("no TLS root certificates: {e}")))?
        } else {
            // Plain HTTP (the local stack): no certificate store is needed.
            builder.with_tls_config(
                rustls::ClientConfig::builder_with_provider(
                    rustls::crypto::aws_lc_rs::default_provider().into(),
                )
                .with_safe_default_protocol_versions()
                .map_err(|e| Error::Other(e.to_string()))?
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
            )
        };
        let connector = builder.https_or_http().enable_http1().build();
        Ok(Self {
            base,
            region,
            credentials,
            http: Client::builder(TokioExecutor::new()).build(connector),
            timeout,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub async fn get(&self, segments: &[&str], query: &[(&str, String)]) -> Result<Answer, Error> {
        self.call(http::Method::GET, segments, query, None).await
    }

    pub async fn call(
        &self,
        method: http::Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Answer, Error> {
        let url = route_url(&self.base, segments, query);
        let mut builder = http::Request::builder()
            .method(method.clone())
            .uri(&url)
            .header(http::header::ACCEPT, "application/json")
            .header(
                http::header::USER_AGENT,
                concat!("daemonctl/", env!("CARGO_PKG_VERSION")),
            );
        let bytes = match body {
            Some(b) => {
                builder = builder.header(http::header::CONTENT_TYPE, "application/json");
                Bytes::from(b.to_string())
            }
            None => Bytes::new(),
        };
        let mut req = builder
            .body(bytes)
            .map_err(|e| Error::Other(format!("bad request {url}: {e}")))?;
        let credentials = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|e| Error::Other(format!("no AWS credentials: {e}")))?;
        sign_request(
            &mut req,
            &credentials,
            &self.region,
            SERVICE,
            SystemTime::now(),
        )
        .map_err(|e| Error::Other(format!("signing {url}: {e}")))?;
        let req = req.map(Full::new);

        let what = format!("{method} {url}");
        let exchange = async {
            let resp = self
                .http
                .request(req)
                .await
                .map_err(|e| Error::Other(format!("{what}: {}", error_chain(&e))))?;
            let status = resp.status().as_u16();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| Error::Other(format!("{what}: reading the answer: {e}")))?
                .to_bytes();
            Ok::<_, Error>((status, body))
        };
        let (status, body) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| Error::Other(format!("{what}: no answer within {:?}", self.timeout)))??;
        if !(200..300).contains(&status) {
            return Err(Error::Api(ApiError::from_body(status, &body)));
        }
        let raw = String::from_utf8_lossy(&body).into_owned();
        let json = if raw.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&raw)
                .map_err(|e| Error::Other(format!("{what}: the answer is not JSON ({e}): {raw}")))?
        };
        Ok(Answer { raw, json })
    }
}

/// An error and its causes on one line: hyper's and the SDK's top-level errors ("client error
/// (Connect)", "service error") name the cause (connection refused, the service's message) only
/// below.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_of_the_api_and_of_api_gateway() {
        let e = ApiError::from_body(
            404,
            br#"{"code":"NotFound","message":"environment 'x' not found"}"#,
        );
        assert_eq!(e.code.as_deref(), Some("NotFound"));
        assert_eq!(
            e.to_string(),
            "NotFound (HTTP 404): environment 'x' not found"
        );

        let e = ApiError::from_body(
            400,
            br#"{"code":"InvalidParameter","message":"name is required","field":"name"}"#,
        );
        assert_eq!(
            e.to_string(),
            "InvalidParameter (HTTP 400): name is required [field: name]"
        );

        // API Gateway's IAM authorizer.
        let e = ApiError::from_body(403, br#"{"message":"Forbidden"}"#);
        assert_eq!(e.to_string(), "HTTP 403: Forbidden");

        let e = ApiError::from_body(502, b"Bad Gateway\n");
        assert_eq!(e.to_string(), "HTTP 502: Bad Gateway");
        assert_eq!(
            ApiError::from_body(500, b"").to_string(),
            "HTTP 500: HTTP 500 with an empty body"
        );
    }
}
