//! The one error type. Mapping to HTTP happens once, in `http::error_response`.

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// Bad input: 400, naming the field.
    #[error("{message}")]
    InvalidInput { field: String, message: String },
    /// The request is valid but conflicts with the current state (Blox answered 400): 400.
    #[error("{message}")]
    Conflict {
        field: Option<String>,
        message: String,
    },
    /// 404.
    #[error("{message}")]
    NotFound { message: String },
    /// A conditional write lost a race; callers re-read and retry.
    #[error("concurrent update of {what}")]
    ConcurrentUpdate { what: String },
    /// AWS said slow down: 503, and retried by the Lambda's trigger.
    #[error("{service} is throttling requests: {message}")]
    Throttled { service: String, message: String },
    /// Any other AWS failure: 500. `code` is AWS's error code (empty when the call got no
    /// answer: a timeout, a dropped connection); `message` starts with it.
    #[error("{service} call failed: {message}")]
    Aws {
        service: String,
        code: String,
        message: String,
    },
    /// Part of the work failed for a reason that may pass (each part's error is logged where it
    /// happened): 503, and retried by the Lambda's trigger.
    #[error("{0}")]
    Unfinished(String),
    /// A bug or corrupt data: 500.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::InvalidInput {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    pub fn conflict(field: Option<&str>, message: impl Into<String>) -> Self {
        Self::Conflict {
            field: field.map(str::to_owned),
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound {
            message: message.into(),
        }
    }

    pub fn field(&self) -> Option<&str> {
        match self {
            Self::InvalidInput { field, .. } => Some(field),
            Self::Conflict { field, .. } => field.as_deref(),
            _ => None,
        }
    }

    /// HTTP status and the stable `code` of the JSON error body.
    pub fn status_and_code(&self) -> (u16, &'static str) {
        match self {
            Self::InvalidInput { .. } => (400, "InvalidParameter"),
            Self::Conflict { .. } => (400, "Conflict"),
            Self::NotFound { .. } => (404, "NotFound"),
            Self::ConcurrentUpdate { .. } => (409, "ConcurrentUpdate"),
            Self::Throttled { .. } => (503, "Throttled"),
            Self::Unfinished(_) => (503, "Unfinished"),
            Self::Aws { .. } | Self::Internal(_) => (500, "InternalError"),
        }
    }
}

/// AWS error codes that say the call will fail the same way until someone changes something (a
/// deleted cluster, a denied permission, a bad parameter): retrying now is pointless.
const LASTING_CODES: [&str; 7] = [
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "ClusterNotFoundException",
    "ResourceNotFoundException",
    "InvalidParameterException",
    "ClientException",
];

impl Error {
    /// The failure will not go away by retrying soon (see `LASTING_CODES`); throttling, AWS's own
    /// faults, timeouts and lost races will.
    pub fn is_lasting(&self) -> bool {
        match self {
            Self::Aws { code, .. } => LASTING_CODES.contains(&code.as_str()),
            Self::InvalidInput { .. } | Self::NotFound { .. } => true,
            _ => false,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn aws(code: &str) -> Error {
        Error::Aws {
            service: "ECS".into(),
            code: code.into(),
            message: format!("{code}: something"),
        }
    }

    #[test]
    fn a_deleted_cluster_or_a_denied_call_is_lasting_a_throttle_or_fault_is_not() {
        assert!(aws("ClusterNotFoundException").is_lasting());
        assert!(aws("AccessDeniedException").is_lasting());
        assert!(!aws("ServerException").is_lasting());
        assert!(!aws("").is_lasting(), "no answer at all: try again");
        let throttled = Error::Throttled {
            service: "ECS".into(),
            message: "Rate exceeded".into(),
        };
        assert!(!throttled.is_lasting());
    }
}
