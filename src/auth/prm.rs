//! OAuth 2.0 Protected Resource Metadata (RFC 9728): the document that tells a client which
//! authorization server to ask for a token, and where it is served.

use super::{uri, AuthConfig};
use serde_json::{Map, Value};

/// The well-known path segment of RFC 9728 §3.
const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// The metadata document, as JSON.
///
/// MCP 2025-11-25: "MCP servers MUST implement OAuth 2.0 Protected Resource Metadata
/// (RFC9728)". RFC 9728 §2: "Parameters with zero values MUST be omitted from the
/// response."
pub fn metadata_document(config: &AuthConfig) -> Vec<u8> {
    let mut document = Map::new();
    // RFC 9728 §3.3: "The resource value returned MUST be identical to the protected
    // resource's resource identifier value into which the well-known URI path suffix was
    // inserted to create the URL used to retrieve the metadata."
    document.insert("resource".into(), config.resource.clone().into());
    if !config.authorization_servers.is_empty() {
        document.insert(
            "authorization_servers".into(),
            config.authorization_servers.clone().into(),
        );
    }
    let tool_scopes = config.tool_scopes.iter().flat_map(|(_, scopes)| scopes);
    let mut scopes: Vec<&str> = Vec::new();
    // MCP 2026-07-28: servers "SHOULD NOT include offline_access in WWW-Authenticate scope or
    // Protected Resource Metadata scopes_supported".
    for scope in config.scopes.iter().chain(tool_scopes) {
        if scope != "offline_access" && !scopes.contains(&scope.as_str()) {
            scopes.push(scope);
        }
    }
    if !scopes.is_empty() {
        document.insert("scopes_supported".into(), scopes.into());
    }
    // Only the header: MCP 2025-11-25, "Access tokens MUST NOT be included in the URI query
    // string", and a JSON-RPC body has no form-encoded parameters.
    document.insert("bearer_methods_supported".into(), vec!["header"].into());
    if let Some(name) = config.resource_name.as_deref().filter(|n| !n.is_empty()) {
        document.insert("resource_name".into(), name.into());
    }
    Value::Object(document).to_string().into_bytes()
}

/// The two paths the document is served at: the root form, and the form with the resource's
/// path appended (the same as the root form when the resource has no path).
///
/// RFC 9728 §3.1: "the well-known URI string ... is inserted into the protected resource's
/// resource identifier between the host component and the path and/or query components";
/// "any terminating slash (/) following the host component MUST be removed before inserting
/// /.well-known/ and the well-known URI path suffix". MCP 2025-11-25 has clients try the
/// path form first, then the root form.
pub fn metadata_paths(config: &AuthConfig) -> (&'static str, String) {
    let path = uri::split(&config.resource).map_or("", |parts| parts.path);
    let suffix = if path == "/" { "" } else { path };
    (WELL_KNOWN, format!("{WELL_KNOWN}{suffix}"))
}

/// The absolute URL of the document for the challenge's `resource_metadata` parameter: the
/// path form (which is the root form for a resource without a path).
pub fn metadata_url(config: &AuthConfig) -> String {
    let (_, path) = metadata_paths(config);
    match uri::split(&config.resource) {
        Some(parts) => format!("{}://{}{path}", parts.scheme, parts.authority),
        // Only an unvalidated configuration gets here.
        None => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(resource: &str) -> AuthConfig {
        AuthConfig::new("https://as.example", resource)
    }

    #[test]
    fn the_document_of_a_bare_configuration() {
        let document: Value =
            serde_json::from_slice(&metadata_document(&config("https://h:8443/mcp")))
                .expect("JSON");
        assert_eq!(
            document,
            json!({
                "resource": "https://h:8443/mcp",
                "authorization_servers": ["https://as.example"],
                "bearer_methods_supported": ["header"],
            })
        );
    }

    #[test]
    fn the_document_lists_every_scope_once_and_never_offline_access() {
        let mut c = config("https://h/mcp");
        c.scopes = vec!["mcp".into(), "offline_access".into()];
        c.tool_scopes = vec![
            ("a".into(), vec!["mcp:write".into(), "mcp".into()]),
            ("b".into(), vec!["mcp:admin".into(), "mcp:write".into()]),
        ];
        c.resource_name = Some("ringmcp".into());
        c.authorization_servers.push("https://as2.example".into());
        let document: Value = serde_json::from_slice(&metadata_document(&c)).expect("JSON");
        assert_eq!(
            document,
            json!({
                "resource": "https://h/mcp",
                "authorization_servers": ["https://as.example", "https://as2.example"],
                "scopes_supported": ["mcp", "mcp:write", "mcp:admin"],
                "bearer_methods_supported": ["header"],
                "resource_name": "ringmcp",
            })
        );
    }

    #[test]
    fn zero_valued_parameters_are_left_out() {
        let mut c = config("https://h/mcp");
        c.authorization_servers.clear();
        c.resource_name = Some(String::new());
        let document: Value = serde_json::from_slice(&metadata_document(&c)).expect("JSON");
        assert_eq!(
            document,
            json!({"resource": "https://h/mcp", "bearer_methods_supported": ["header"]})
        );
    }

    #[test]
    fn paths_and_url_for_a_resource_with_a_path() {
        let c = config("https://127.0.0.1:8443/mcp");
        assert_eq!(
            metadata_paths(&c),
            (
                "/.well-known/oauth-protected-resource",
                "/.well-known/oauth-protected-resource/mcp".to_owned()
            )
        );
        assert_eq!(
            metadata_url(&c),
            "https://127.0.0.1:8443/.well-known/oauth-protected-resource/mcp"
        );
        let nested = config("https://example.com/public/mcp");
        assert_eq!(
            metadata_url(&nested),
            "https://example.com/.well-known/oauth-protected-resource/public/mcp"
        );
    }

    #[test]
    fn paths_and_url_for_a_resource_without_one() {
        for resource in ["https://mcp.example.com", "https://mcp.example.com/"] {
            let c = config(resource);
            let (root, suffixed) = metadata_paths(&c);
            assert_eq!(root, "/.well-known/oauth-protected-resource");
            assert_eq!(suffixed, root, "{resource}");
            assert_eq!(
                metadata_url(&c),
                "https://mcp.example.com/.well-known/oauth-protected-resource"
            );
        }
    }
}
