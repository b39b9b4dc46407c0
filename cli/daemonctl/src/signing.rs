//! SigV4 for the HTTP API: API Gateway's IAM authorizer checks these headers (service
//! `execute-api`).

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings,
};
use aws_sigv4::sign::v4;
use bytes::Bytes;

pub const SERVICE: &str = "execute-api";

/// The `Host` header value SigV4 and hyper both derive from a URI: no default port.
pub fn host_header(uri: &http::Uri) -> Option<String> {
    let host = uri.host()?;
    let default_port = match uri.scheme_str() {
        Some("https") => Some(443),
        Some("http") => Some(80),
        _ => None,
    };
    Some(match uri.port_u16() {
        Some(p) if Some(p) != default_port => format!("{host}:{p}"),
        _ => host.to_owned(),
    })
}

/// Adds `host`, `x-amz-date`, `x-amz-content-sha256`, `x-amz-security-token` (temporary
/// credentials) and `authorization` to `req`, signing every header it already has.
pub fn sign_request(
    req: &mut http::Request<Bytes>,
    credentials: &Credentials,
    region: &str,
    service: &str,
    time: SystemTime,
) -> Result<(), String> {
    let host = host_header(req.uri()).ok_or("the request URL has no host")?;
    req.headers_mut().insert(
        http::header::HOST,
        http::HeaderValue::from_str(&host).map_err(|e| e.to_string())?,
    );
    let mut settings = SigningSettings::default();
    // The body hash travels as a header too: what was signed is visible when a proxy answers 403.
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let headers: Vec<(&str, &str)> = req
        .headers()
        .iter()
        .map(|(k, v)| Ok((k.as_str(), v.to_str().map_err(|e| e.to_string())?)))
        .collect::<Result<_, String>>()?;
    let uri = req.uri().to_string();
    let signable = SignableRequest::new(
        req.method().as_str(),
        uri,
        headers.into_iter(),
        SignableBody::Bytes(req.body()),
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    instructions.apply_to_request_http1x(req);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    // 2015-08-30T12:36:00Z, the date of AWS's SigV4 test suite.
    fn t() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_440_938_160)
    }

    fn creds(token: Option<&str>) -> Credentials {
        Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            token.map(str::to_owned),
            None,
            "test",
        )
    }

    fn request(method: &str, url: &str, body: &str) -> http::Request<Bytes> {
        let mut b = http::Request::builder().method(method).uri(url);
        if !body.is_empty() {
            b = b.header("content-type", "application/json");
        }
        b.body(Bytes::from(body.to_owned())).unwrap()
    }

    fn header<'a>(req: &'a http::Request<Bytes>, name: &str) -> &'a str {
        req.headers()
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
    }

    #[test]
    fn get_matches_an_independent_signature() {
        let mut req = request(
            "GET",
            "https://abc123.execute-api.us-east-1.amazonaws.com/v1/environments?limit=2&cluster=arn%3Aaws%3Aecs%3Aus-east-1%3A123456789012%3Acluster%2Fdefault",
            "",
        );
        sign_request(&mut req, &creds(None), "us-east-1", SERVICE, t()).unwrap();
        assert_eq!(header(&req, "x-amz-date"), "20150830T123600Z");
        assert_eq!(
            header(&req, "host"),
            "abc123.execute-api.us-east-1.amazonaws.com"
        );
        // The SHA-256 of an empty body.
        assert_eq!(
            header(&req, "x-amz-content-sha256"),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // Expected value computed with botocore's SigV4Auth (same request, headers and time).
        assert_eq!(
            header(&req, "authorization"),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/execute-api/aws4_request, \
             SignedHeaders=host;x-amz-content-sha256;x-amz-date, \
             Signature=9b952bb18e743ff106da357d132acd7fb91992ea743412ae3b4abf19fe643587"
        );
    }

    #[test]
    fn post_signs_the_body_hash_and_content_type() {
        let body =
            r#"{"name":"web","instanceGroup":{"cluster":"default"},"taskDefinition":"web:1"}"#;
        let mut req = request("POST", "http://127.0.0.1:9000/v1/environments", body);
        sign_request(&mut req, &creds(None), "us-east-1", SERVICE, t()).unwrap();
        assert_eq!(header(&req, "host"), "127.0.0.1:9000");
        // SHA-256 of the body and the signature, both from botocore for the same request.
        assert_eq!(
            header(&req, "x-amz-content-sha256"),
            "00ed544e4edefb2d50cb2af6eedb54aee7525c2455f830697f9142fff20b16d8"
        );
        assert_eq!(
            header(&req, "authorization"),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/execute-api/aws4_request, \
             SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date, \
             Signature=6a8f51cdd9cc1faa9e3ee8b2fc37bc67799e176b6e4a8ba40dfcc81483647c38"
        );

        // Another body, same everything else: another signature.
        let mut other = request("POST", "http://127.0.0.1:9000/v1/environments", "{}");
        sign_request(&mut other, &creds(None), "us-east-1", SERVICE, t()).unwrap();
        assert_ne!(
            header(&other, "authorization"),
            header(&req, "authorization")
        );
    }

    #[test]
    fn temporary_credentials_send_and_sign_the_session_token() {
        let mut req = request("GET", "https://api.example.com/v1/ping", "");
        sign_request(&mut req, &creds(Some("TOKEN")), "eu-west-1", SERVICE, t()).unwrap();
        assert_eq!(header(&req, "x-amz-security-token"), "TOKEN");
        let auth = header(&req, "authorization");
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/eu-west-1/execute-api/aws4_request, \
                 SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature="
            ),
            "{auth}"
        );
    }

    #[test]
    fn host_header_drops_default_ports_only() {
        let h = |u: &str| host_header(&u.parse().unwrap()).unwrap();
        assert_eq!(h("https://x.example.com:443/v1"), "x.example.com");
        assert_eq!(h("http://127.0.0.1:80/v1"), "127.0.0.1");
        assert_eq!(h("http://127.0.0.1:9000/v1"), "127.0.0.1:9000");
        assert_eq!(h("https://x.example.com:8443/"), "x.example.com:8443");
    }
}
