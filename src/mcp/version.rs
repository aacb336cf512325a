//! MCP protocol revisions the gateway speaks, and what each changes on the wire.

/// A protocol revision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// 2025-03-26: Streamable HTTP introduced; batches allowed.
    V2025_03_26,
    /// 2025-06-18: batches removed, `MCP-Protocol-Version` header required.
    V2025_06_18,
    /// 2025-11-25: SSE priming events, `scope` in challenges.
    V2025_11_25,
    /// 2026-07-28: stateless; `server/discover`, `Mcp-Method`/`Mcp-Name` headers, no sessions.
    V2026_07_28,
}

/// The two generations of the Streamable HTTP transport, the one vocabulary for them across the
/// gateway: the 2025 revisions open a session with `initialize` and carry `Mcp-Session-Id`;
/// 2026-07-28 is stateless (`server/discover`, every request carries its version and
/// capabilities in `_meta` and repeats method and name in `Mcp-*` headers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Generation {
    /// 2025-03-26, 2025-06-18, 2025-11-25.
    #[default]
    Sessions,
    /// 2026-07-28.
    Stateless,
}

/// Every revision, oldest first.
pub const ALL: [Version; 4] =
    [Version::V2025_03_26, Version::V2025_06_18, Version::V2025_11_25, Version::V2026_07_28];

/// The newest revision negotiated through `initialize` (2026-07-28 has no initialize).
pub const LATEST_HANDSHAKE: Version = Version::V2025_11_25;

impl Version {
    /// Parses a version string (header value or `protocolVersion` field).
    pub fn parse(s: &[u8]) -> Option<Version> {
        match s {
            b"2025-03-26" => Some(Version::V2025_03_26),
            b"2025-06-18" => Some(Version::V2025_06_18),
            b"2025-11-25" => Some(Version::V2025_11_25),
            b"2026-07-28" => Some(Version::V2026_07_28),
            _ => None,
        }
    }

    /// The version string.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V2025_03_26 => "2025-03-26",
            Version::V2025_06_18 => "2025-06-18",
            Version::V2025_11_25 => "2025-11-25",
            Version::V2026_07_28 => "2026-07-28",
        }
    }

    /// Whether JSON-RPC batches are allowed (only 2025-03-26).
    pub fn allows_batch(self) -> bool {
        self == Version::V2025_03_26
    }

    /// Whether the revision has sessions and the initialize handshake.
    pub fn is_stateless(self) -> bool {
        self.generation() == Generation::Stateless
    }

    /// The transport generation the revision belongs to.
    pub fn generation(self) -> Generation {
        if self >= Version::V2026_07_28 {
            Generation::Stateless
        } else {
            Generation::Sessions
        }
    }

    /// Compact tag stored in sealed session ids.
    pub fn tag(self) -> u8 {
        self as u8
    }

    /// Inverse of [`Version::tag`].
    pub fn from_tag(t: u8) -> Option<Version> {
        ALL.get(t as usize).copied()
    }
}
