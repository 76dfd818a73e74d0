//! MCP protocol revisions this server speaks, and version negotiation.

/// Supported protocol revisions, newest first.
pub const SUPPORTED: [&str; 4] = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// The newest supported revision, offered when the client asks for an unknown one.
pub const LATEST: &str = SUPPORTED[0];

/// The revision served statelessly: every request carries its version, the client's
/// capabilities and identity in `_meta`, and no `initialize` comes first.
///
/// Spec (2026-07-28, changelog): "remove the `initialize`/`notifications/initialized`
/// handshake. Every request now carries its protocol version and client capabilities in
/// `_meta`".
pub const STATELESS: &str = "2026-07-28";

/// Every revision this server speaks, newest first (`server/discover`'s `supportedVersions`).
pub const ALL: [&str; 5] = [
    STATELESS,
    SUPPORTED[0],
    SUPPORTED[1],
    SUPPORTED[2],
    SUPPORTED[3],
];

/// One of [`ALL`], by its place there: how a session keeps its version (one byte where a
/// `&'static str` takes sixteen, in every session's state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revision(u8);

impl Revision {
    /// The revision `version` names, if this server speaks it.
    pub fn of(version: &str) -> Option<Revision> {
        let at = ALL.iter().position(|v| *v == version)?;
        u8::try_from(at).ok().map(Revision)
    }

    /// Its name, as the protocol writes it.
    pub fn as_str(self) -> &'static str {
        ALL[usize::from(self.0)]
    }
}

/// Whether `version` is one of the revisions served through `initialize` and sessions.
pub fn is_session_era(version: &str) -> bool {
    SUPPORTED.contains(&version)
}

/// Picks the version to answer `initialize` with.
///
/// Spec (lifecycle): "If the server supports the requested protocol version,
/// it MUST respond with the same version. Otherwise, the server MUST respond
/// with another protocol version it supports. This SHOULD be the latest
/// version supported by the server."
pub fn negotiate(requested: &str) -> &'static str {
    SUPPORTED
        .iter()
        .copied()
        .find(|v| *v == requested)
        .unwrap_or(LATEST)
}

/// Whether JSON-RPC batches are allowed under `version`.
///
/// Batching was added in 2025-03-26 and removed again in 2025-06-18.
pub fn allows_batches(version: &str) -> bool {
    version == "2025-03-26"
}

/// Whether tool arguments that fail the tool's input validation are answered as a tool
/// execution error (a result with `isError: true`) rather than a -32602 protocol error.
///
/// Spec (2025-11-25 and 2026-07-28, tools, Error Handling): Tool Execution Errors include
/// "Input validation errors (e.g., date in wrong format, value out of range)", which
/// "contain actionable feedback that language models can use to self-correct". Until
/// 2025-06-18 the protocol errors listed "Invalid arguments".
pub fn reports_invalid_arguments_in_result(version: &str) -> bool {
    matches!(version, STATELESS | "2025-11-25")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revision_names_what_it_was_made_from() {
        for v in ALL {
            assert_eq!(Revision::of(v).map(Revision::as_str), Some(v));
        }
        assert_eq!(Revision::of("2024-10-07"), None);
    }

    #[test]
    fn each_supported_version_is_echoed() {
        for v in SUPPORTED {
            assert_eq!(negotiate(v), v);
        }
    }

    #[test]
    fn unknown_versions_get_latest() {
        for v in ["", "1.0.0", "2099-01-01", "2025-11-25 "] {
            assert_eq!(negotiate(v), LATEST);
        }
        assert_eq!(LATEST, "2025-11-25");
    }

    #[test]
    fn only_2025_03_26_allows_batches() {
        let allowed: Vec<_> = SUPPORTED
            .into_iter()
            .filter(|v| allows_batches(v))
            .collect();
        assert_eq!(allowed, ["2025-03-26"]);
    }
}
