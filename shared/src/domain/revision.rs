//! A revision: one immutable version of an environment's desired state.

use serde::{Deserialize, Serialize};

use super::spec::DaemonSpec;

/// One immutable version of an environment's desired state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Revision {
    pub environment_name: String,
    /// 1, 2, 3 … in creation order.
    pub number: u32,
    pub spec: DaemonSpec,
    pub created_at: String,
}
