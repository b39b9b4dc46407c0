//! HTTP at the edge: the request as the API functions see it, and the one place where results and
//! errors become status codes and JSON bodies.

use std::collections::HashMap;

use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use serde_json::json;

use crate::error::{Error, Result};

/// What a handler needs of a request, independent of API Gateway's payload version.
#[derive(Debug, Clone, Default)]
pub struct ApiRequest {
    pub method: String,
    /// Path segments after `/v1` (stage prefixes and the `/v1` itself removed).
    pub segments: Vec<String>,
    pub query: HashMap<String, String>,
    pub body: Option<Vec<u8>>,
}

impl ApiRequest {
    pub fn from_lambda(req: &Request) -> Self {
        let path = req.raw_http_path();
        let path = if path.is_empty() {
            req.uri().path().to_owned()
        } else {
            path.to_owned()
        };
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let segments = match parts.iter().position(|p| *p == "v1") {
            // Decoded as API Gateway decodes pathParameters (`%2D` is `-`); split first, so an
            // encoded `/` stays inside its segment.
            Some(i) => parts[i + 1..].iter().map(|s| percent_decode(s)).collect(),
            None => parts.iter().map(|s| format!("!{s}")).collect(), // not under /v1: never matches a route
        };
        let query = req
            .query_string_parameters()
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let body = match req.body() {
            Body::Empty => None,
            Body::Text(t) => Some(t.as_bytes().to_vec()),
            Body::Binary(b) => Some(b.clone()),
            _ => None,
        };
        Self {
            method: req.method().as_str().to_owned(),
            segments,
            query,
            body,
        }
    }

    pub fn seg(&self) -> Vec<&str> {
        self.segments.iter().map(String::as_str).collect()
    }

    /// The JSON body as `T`; a missing or malformed body is a 400 naming the field at fault.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        let bytes = self
            .body
            .as_deref()
            .filter(|b| !b.iter().all(u8::is_ascii_whitespace))
            .ok_or_else(|| Error::invalid("body", "a JSON body is required"))?;
        // serde reads a struct from an array too (`[1]` as `{"revision": 1}`); every body of
        // this API is an object.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(Error::invalid("body", "the body must be a JSON object"));
        }
        let mut de = serde_json::Deserializer::from_slice(bytes);
        serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            // A body that is not an object at all has no field to blame.
            let field = if path == "." || path.is_empty() || path.starts_with('[') {
                "body".to_owned()
            } else {
                path
            };
            Error::invalid(&field, format!("invalid request body: {}", e.inner()))
        })
    }

    /// `?limit=` in 1..=100, default 50.
    pub fn limit(&self) -> Result<usize> {
        match self.query.get("limit") {
            None => Ok(50),
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=100).contains(n))
                .ok_or_else(|| {
                    Error::invalid("limit", "limit must be a whole number from 1 to 100")
                }),
        }
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .get(name)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }
}

/// `%XX` escapes of a path segment decoded; bytes that are not UTF-8 become U+FFFD.
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let hex = |i: usize| bytes.get(i).and_then(|b| (*b as char).to_digit(16));
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if let (b'%', Some(h), Some(l)) = (bytes[i], hex(i + 1), hex(i + 2)) {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A successful answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiResponse {
    pub status: u16,
    pub body: serde_json::Value,
}

impl ApiResponse {
    pub fn ok<T: Serialize>(value: &T) -> Result<Self> {
        Ok(Self {
            status: 200,
            body: serde_json::to_value(value).map_err(|e| Error::Internal(e.to_string()))?,
        })
    }
}

pub fn not_found_route(req: &ApiRequest) -> Error {
    Error::not_found(format!(
        "no route for {} /v1/{}",
        req.method,
        req.segments.join("/")
    ))
}

/// The JSON error body: `{"code", "message", "field"?}`.
pub fn error_body(e: &Error) -> (u16, serde_json::Value) {
    let (status, code) = e.status_and_code();
    let mut body = json!({ "code": code, "message": e.to_string() });
    if let Some(field) = e.field() {
        body["field"] = json!(field);
    }
    if status >= 500 {
        tracing::error!(error = %e, "request failed");
    }
    (status, body)
}

pub fn to_lambda(result: Result<ApiResponse>) -> Response<Body> {
    let (status, body) = match result {
        Ok(r) => (r.status, r.body),
        Err(e) => error_body(&e),
    };
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::Text(body.to_string()))
        .expect("static response parts are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments(path: &str) -> Vec<String> {
        let req: Request = lambda_http::http::Request::builder()
            .uri(format!("https://api.example.com{path}"))
            .body(Body::Empty)
            .unwrap();
        ApiRequest::from_lambda(&req).segments
    }

    #[test]
    fn a_body_must_be_a_json_object() {
        #[derive(serde::Deserialize, Debug)]
        struct Body {
            revision: Option<u32>,
        }
        let req = |body: &str| ApiRequest {
            body: Some(body.as_bytes().to_vec()),
            ..Default::default()
        };
        assert_eq!(
            req(" {\"revision\": 2}").json::<Body>().unwrap().revision,
            Some(2)
        );
        for bad in ["[2]", "2", "\"x\"", "null"] {
            let err = req(bad).json::<Body>().unwrap_err();
            assert_eq!(err.field(), Some("body"), "{bad}");
        }
    }

    #[test]
    fn path_segments_are_percent_decoded_after_splitting() {
        assert_eq!(
            segments("/v1/environments/log%2Dshipper"),
            ["environments", "log-shipper"]
        );
        assert_eq!(
            segments("/v1/environments/a%2Fb/status"),
            ["environments", "a/b", "status"]
        );
        // Not UTF-8, or not an escape: kept visible, so such a name never matches a valid one.
        assert_eq!(
            segments("/v1/environments/%FF%zz%4"),
            ["environments", "\u{fffd}%zz%4"]
        );
        assert_eq!(segments("/prod/v1/ping"), ["ping"]);
    }
}
