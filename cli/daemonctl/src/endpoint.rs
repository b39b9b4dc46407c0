//! Where the API is: the base URL (flag, environment or a stack's `ApiUrl` output), and the URLs of
//! its routes.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// RFC 3986 unreserved characters stay as they are; everything else is percent-encoded, so a
/// name or an ARN can never add a path segment or a query parameter.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

pub const ENV_ENDPOINT: &str = "DAEMONCTL_ENDPOINT";
pub const ENV_STACK: &str = "DAEMONCTL_STACK";

/// How the base URL is found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Url(String),
    /// A CloudFormation stack whose `ApiUrl` output is the base URL.
    Stack(String),
}

/// A flag beats an environment variable; for each, an endpoint beats a stack. Blank values count
/// as unset (an exported empty variable is common in scripts).
pub fn choose(
    flag_endpoint: Option<&str>,
    flag_stack: Option<&str>,
    env_endpoint: Option<&str>,
    env_stack: Option<&str>,
) -> Result<Source, String> {
    let given = |v: Option<&str>| {
        v.map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    if let Some(u) = given(flag_endpoint) {
        return Ok(Source::Url(u));
    }
    if let Some(s) = given(flag_stack) {
        return Ok(Source::Stack(s));
    }
    if let Some(u) = given(env_endpoint) {
        return Ok(Source::Url(u));
    }
    if let Some(s) = given(env_stack) {
        return Ok(Source::Stack(s));
    }
    Err(format!(
        "no API endpoint: pass --endpoint URL or --stack NAME (or set {ENV_ENDPOINT} / {ENV_STACK})"
    ))
}

/// The base URL as routes are appended to it: http(s), a host, no query, no trailing `/` and no
/// trailing `/v1` (a URL copied with `/v1` still works).
pub fn normalize_base(url: &str) -> Result<String, String> {
    let uri: http::Uri = url
        .trim()
        .parse()
        .map_err(|e| format!("invalid endpoint URL '{url}': {e}"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => {
            return Err(format!(
                "endpoint '{url}' must start with https:// or http://"
            ))
        }
    }
    let authority = uri
        .authority()
        .ok_or_else(|| format!("endpoint '{url}' has no host"))?;
    if uri.query().is_some() {
        return Err(format!("endpoint '{url}' must not have a query string"));
    }
    let mut path = uri.path().trim_end_matches('/');
    if let Some(p) = path.strip_suffix("/v1") {
        path = p;
    }
    Ok(format!(
        "{}://{}{}",
        uri.scheme_str().unwrap_or("https"),
        authority,
        path
    ))
}

/// `{base}/v1/{segments…}?{query}`, each segment and query value percent-encoded.
pub fn route_url(base: &str, segments: &[&str], query: &[(&str, String)]) -> String {
    let mut url = format!("{base}/v1");
    for s in segments {
        url.push('/');
        url.extend(utf8_percent_encode(s, COMPONENT));
    }
    let mut sep = '?';
    for (k, v) in query {
        url.push(sep);
        sep = '&';
        url.extend(utf8_percent_encode(k, COMPONENT));
        url.push('=');
        url.extend(utf8_percent_encode(v, COMPONENT));
    }
    url
}

/// The region of an API Gateway default endpoint (`{id}.execute-api.{region}.amazonaws.com`),
/// used when neither `--region` nor the credential chain names one.
pub fn region_of_host(base: &str) -> Option<String> {
    let uri: http::Uri = base.parse().ok()?;
    let labels: Vec<&str> = uri.host()?.split('.').collect();
    let i = labels.iter().position(|l| *l == "execute-api")?;
    let region = labels.get(i + 1)?;
    (labels.get(i + 2) == Some(&"amazonaws") && !region.is_empty()).then(|| region.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_environment_and_endpoints_beat_stacks() {
        let url = |u: &str| Ok(Source::Url(u.into()));
        let stack = |s: &str| Ok(Source::Stack(s.into()));
        assert_eq!(
            choose(Some("https://a"), None, Some("https://b"), Some("s")),
            url("https://a")
        );
        assert_eq!(
            choose(None, Some("prod"), Some("https://b"), None),
            stack("prod")
        );
        assert_eq!(
            choose(None, None, Some("https://b"), Some("s")),
            url("https://b")
        );
        assert_eq!(choose(None, None, None, Some("s")), stack("s"));
        assert_eq!(choose(Some(" "), None, Some(""), Some("s")), stack("s"));
        let err = choose(None, None, None, None).unwrap_err();
        assert!(
            err.contains("--endpoint") && err.contains(ENV_STACK),
            "{err}"
        );
    }

    #[test]
    fn base_urls_are_normalized() {
        let n = |u: &str| normalize_base(u);
        assert_eq!(
            n("https://abc.execute-api.eu-west-1.amazonaws.com/").unwrap(),
            "https://abc.execute-api.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            n("http://127.0.0.1:9000/v1/").unwrap(),
            "http://127.0.0.1:9000"
        );
        assert_eq!(
            n("https://api.example.com/scheduler/v1").unwrap(),
            "https://api.example.com/scheduler"
        );
        assert_eq!(
            n(" http://localhost:8080 ").unwrap(),
            "http://localhost:8080"
        );
        for bad in [
            "ftp://x",
            "127.0.0.1:9000/v1",
            "https://x/?a=1",
            "not a url",
        ] {
            assert!(n(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn route_urls_encode_segments_and_query_values() {
        let base = "https://api.example.com/stage";
        assert_eq!(
            route_url(base, &["ping"], &[]),
            "https://api.example.com/stage/v1/ping"
        );
        assert_eq!(
            route_url(
                base,
                &["environments", "web", "deployments", "01J/../x"],
                &[]
            ),
            "https://api.example.com/stage/v1/environments/web/deployments/01J%2F..%2Fx"
        );
        assert_eq!(
            route_url(
                base,
                &["environments"],
                &[
                    ("cluster", "arn:aws:ecs:us-east-1:1:cluster/a b".into()),
                    ("nextToken", "x+y=&z".into()),
                ]
            ),
            "https://api.example.com/stage/v1/environments?cluster=arn%3Aaws%3Aecs%3Aus-east-1%3A1%3Acluster%2Fa%20b&nextToken=x%2By%3D%26z"
        );
    }

    #[test]
    fn region_comes_from_default_api_hosts_only() {
        assert_eq!(
            region_of_host("https://abc123.execute-api.eu-central-1.amazonaws.com").as_deref(),
            Some("eu-central-1")
        );
        assert_eq!(
            region_of_host("https://abc.execute-api.cn-north-1.amazonaws.com.cn").as_deref(),
            Some("cn-north-1")
        );
        assert_eq!(region_of_host("http://127.0.0.1:9000"), None);
        assert_eq!(region_of_host("https://scheduler.example.com"), None);
    }
}
