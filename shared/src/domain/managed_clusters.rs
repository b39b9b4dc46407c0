//! The clusters a stack may manage: the template's `ManagedClusters` parameter, which also scopes
//! the functions' ECS permissions (`ecs:cluster` with ArnLike). Checking it at create time turns
//! what would later be an AccessDenied on every StartTask into a 400 the operator can act on.

/// Cluster ARNs or ArnLike patterns (`*`, `?`); empty means every cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManagedClusters(Vec<String>);

impl ManagedClusters {
    pub fn any() -> Self {
        Self::default()
    }

    /// The comma-separated list the template passes as `MANAGED_CLUSTERS` (`!Join [",", ...]`).
    pub fn parse(list: &str) -> Self {
        Self(
            list.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    }

    pub fn from_env() -> Self {
        Self::parse(&std::env::var("MANAGED_CLUSTERS").unwrap_or_default())
    }

    pub fn allows(&self, cluster_arn: &str) -> bool {
        self.0.is_empty() || self.0.iter().any(|p| arn_like(p, cluster_arn))
    }

    pub fn patterns(&self) -> &[String] {
        &self.0
    }
}

/// IAM's ArnLike: `*` matches any run of characters, `?` one character, the rest literally.
fn arn_like(pattern: &str, value: &str) -> bool {
    let (p, v): (Vec<char>, Vec<char>) = (pattern.chars().collect(), value.chars().collect());
    // Classic wildcard matching with one backtrack point for the last `*`.
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < v.len() {
        if i < p.len() && (p[i] == '?' || p[i] == v[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROD: &str = "arn:aws:ecs:eu-west-1:123456789012:cluster/prod";

    #[test]
    fn empty_list_allows_every_cluster() {
        assert!(ManagedClusters::parse("").allows(PROD));
        assert!(ManagedClusters::parse(" , ").allows(PROD));
    }

    #[test]
    fn exact_arns_and_patterns_match_as_arn_like_does() {
        let m = ManagedClusters::parse(&format!(
            "{PROD}, arn:aws:ecs:eu-west-1:123456789012:cluster/team-*"
        ));
        assert!(m.allows(PROD));
        assert!(m.allows("arn:aws:ecs:eu-west-1:123456789012:cluster/team-a"));
        assert!(!m.allows("arn:aws:ecs:eu-west-1:123456789012:cluster/prod2"));
        assert!(!m.allows("arn:aws:ecs:eu-west-1:123456789012:cluster/staging"));
        assert!(ManagedClusters::parse("arn:aws:ecs:*:*:cluster/prod?").allows(&format!("{PROD}1")));
        assert!(!ManagedClusters::parse("arn:aws:ecs:*:*:cluster/prod?").allows(PROD));
    }
}
