//! The cluster query language of ECS placement constraints (`memberOf` expressions), parsed once
//! and evaluated locally against a host's facts. (Stub: being written.)

use serde::{Deserialize, Serialize};

use super::host::HostFacts;

/// A parsed expression. Stored and shown as the text it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    text: String,
}

/// Where and why an expression does not parse (or uses a construct we do not support).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    /// 0-based character offset of the problem in the expression.
    pub offset: usize,
    pub message: String,
}

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "at character {}: {}", self.offset + 1, self.message)
    }
}

impl Query {
    pub fn parse(text: &str) -> Result<Self, QueryError> {
        Ok(Self {
            text: text.to_owned(),
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn matches(&self, _host: &dyn HostFacts) -> bool {
        true
    }
}

impl Serialize for Query {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Query {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Query::parse(&text).map_err(serde::de::Error::custom)
    }
}
