//! The I/O authorization needs: each shard fetches the issuer's key set itself (at start,
//! every `--auth-jwks-refresh-secs`, and soon after a token names a key the set lacks) and
//! asks the introspection endpoint about opaque tokens, on its own executor; the decisions
//! are the transport's ([`Authorizer`]).

use super::fetch::{self, Endpoint};
use super::Shard;
use crate::auth::{HttpUrl, KeySet, MAX_JWKS_BYTES};
use crate::config::AuthSettings;
use crate::proto::http1;
use crate::transport::auth::Authorizer;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long one fetch or introspection may take.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(5);

/// The soonest a key set is fetched again for an unknown key (a flood of tokens with made-up
/// key ids must not become a flood of fetches).
const UNKNOWN_KEY_REFETCH: Duration = Duration::from_secs(30);

/// After a failed fetch, the wait before the next try.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);

/// Authorization as every shard uses it: the settings and the endpoints resolved at start.
pub(crate) struct AuthPlan {
    settings: AuthSettings,
    jwks: Option<(Endpoint, Vec<u8>)>,
    introspection: Option<Endpoint>,
}

impl AuthPlan {
    /// Resolves the endpoints of `settings` (off the shards: a lookup would block one).
    pub fn new(settings: AuthSettings) -> Result<AuthPlan, String> {
        let roots = if settings.roots.is_empty() {
            None
        } else {
            Some(client_config(&settings.roots)?)
        };
        let endpoint = |url: &HttpUrl| {
            let tls = if url.tls { roots.clone() } else { None };
            Endpoint::resolve(&url.authority, tls)
        };
        let jwks = match &settings.jwks_url {
            None => None,
            Some(url) => {
                let mut request = Vec::new();
                let headers = [("accept", "application/json"), ("connection", "close")];
                http1::write_request_head(
                    &mut request,
                    "GET",
                    &url.target,
                    &url.authority,
                    &headers,
                    None,
                );
                Some((
                    endpoint(url).map_err(|e| format!("--auth-jwks-url: {e}"))?,
                    request,
                ))
            }
        };
        let introspection = match &settings.introspection {
            None => None,
            Some(i) => {
                Some(endpoint(&i.url).map_err(|e| format!("--auth-introspection-url: {e}"))?)
            }
        };
        Ok(AuthPlan {
            settings,
            jwks,
            introspection,
        })
    }

    /// A shard's authorizer.
    pub fn authorizer(&self) -> Authorizer {
        Authorizer::from_settings(&self.settings)
    }
}

/// The TLS client settings for https:// endpoints, trusting the PEM `roots`.
fn client_config(roots: &[u8]) -> Result<Arc<rustls::ClientConfig>, String> {
    let versions = [&rustls::version::TLS13, &rustls::version::TLS12];
    crate::transport::tls::client_config(roots, &versions).map(Arc::new)
}

/// Keeps this shard's key set fresh, for as long as the shard runs.
pub(super) async fn keep_keys_fresh(shard: Rc<Shard>, plan: Arc<AuthPlan>) {
    let (Some((endpoint, request)), Some(auth)) = (&plan.jwks, shard.auth.as_ref()) else {
        return;
    };
    loop {
        let fetched_at = Instant::now();
        let next = match fetch::exchange(
            endpoint,
            request.clone(),
            EXCHANGE_TIMEOUT,
            MAX_JWKS_BYTES,
        )
        .await
        {
            Ok((200, body)) => match KeySet::from_jwks(&body) {
                Ok(keys) => {
                    auth.set_keys(keys);
                    fetched_at + plan.settings.jwks_refresh
                }
                Err(e) => {
                    log::warn!("shard {}: the key set is not usable: {e}", shard.index);
                    fetched_at + RETRY_AFTER_FAILURE
                }
            },
            Ok((status, _)) => {
                log::warn!("shard {}: the key set URL answered {status}", shard.index);
                fetched_at + RETRY_AFTER_FAILURE
            }
            Err(e) => {
                log::warn!("shard {}: cannot fetch the key set: {e}", shard.index);
                fetched_at + RETRY_AFTER_FAILURE
            }
        };
        // Until the refresh is due, or sooner once a token names a key the set lacks.
        loop {
            if shard.stopping() {
                return;
            }
            let now = Instant::now();
            if now >= next || (auth.wants_fresh_keys() && now >= fetched_at + UNKNOWN_KEY_REFETCH) {
                break;
            }
            glommio::timer::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// Asks the introspection endpoint about `token`: its status and body, or `None` if it did
/// not answer.
pub(super) async fn introspect(shard: &Shard, token: &str) -> Option<(u16, Vec<u8>)> {
    let plan = shard.auth_plan.as_ref()?;
    let endpoint = plan.introspection.as_ref()?;
    let request = plan.settings.introspection.as_ref()?.request(token);
    match fetch::exchange(endpoint, request, EXCHANGE_TIMEOUT, MAX_JWKS_BYTES).await {
        Ok(answer) => Some(answer),
        Err(e) => {
            log::warn!("shard {}: introspection failed: {e}", shard.index);
            None
        }
    }
}
