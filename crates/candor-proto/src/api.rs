//! JSON messages of the agent-facing API (enrollment, heartbeat, ingest acks).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnrollRequest {
    /// The token's secret (hex).
    pub secret: String,
    pub hostname: String,
    pub os: String,
    pub agent_version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnrollResponse {
    pub agent_id: u64,
    /// Per-agent secret; the agent authenticates as `Bearer <agent_id>.<secret>`.
    pub secret: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Heartbeat {
    pub hostname: String,
    pub os: String,
    pub agent_version: String,
    /// Login names with a session on the desktop.
    pub users: Vec<String>,
    pub addresses: Vec<String>,
    /// Etag of the policy the agent has applied.
    pub applied_policy: Option<String>,
    /// Events waiting in the spool, for the agents page.
    pub spool_events: u64,
    /// Notices from collectors ("no display: activity collector idle").
    #[serde(default)]
    pub notices: Vec<String>,
}

/// Answer to an ingest POST.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct IngestAck {
    /// Highest seq such that every seq up to it is durably stored (or was
    /// refused, or declared dropped): the agent may delete up to here.
    pub acked: u64,
    pub stored: u64,
    pub duplicates: u64,
    /// Events of a category this agent may not send (policy × consent).
    pub refused: u64,
}

/// Error body of every API error.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
}
