//! Tokens minted here with the fixed test keys in `testdata/`, checked at a fixed `NOW`.

use super::*;
use crate::proto::base64;
use crate::proto::http1::{Limits, RequestHead};
use crate::proto::Status;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::rc::Rc;
use std::sync::OnceLock;

const RSA_KEY: &[u8] = include_bytes!("testdata/rsa2048-pkcs1.der");
const P256_KEY: &[u8] = include_bytes!("testdata/p256-pkcs8.der");
const ED25519_KEY: &[u8] = include_bytes!("testdata/ed25519-pkcs8.der");

const ISSUER: &str = "https://as.example";
const RESOURCE: &str = "https://127.0.0.1:8443/mcp";
const NOW: u64 = 1_800_000_000;

/// The private key for `alg`.
///
/// Installs ring's verifier first: jsonwebtoken fixes its process-wide provider on first use,
/// and every test mints or derives its keys through here before it verifies anything.
pub(crate) fn encoding_key(alg: Algorithm) -> EncodingKey {
    install_crypto_provider();
    match alg {
        Algorithm::ES256 => EncodingKey::from_ec_der(P256_KEY),
        Algorithm::EdDSA => EncodingKey::from_ed_der(ED25519_KEY),
        _ => EncodingKey::from_rsa_der(RSA_KEY),
    }
}

/// The public JWK of the test key for `alg`, under `kid`, with `use: sig` and `alg` set.
pub(crate) fn jwk(alg: Algorithm, kid: &str) -> Value {
    let mut jwk = Jwk::from_encoding_key(&encoding_key(alg), alg).expect("public half");
    jwk.common.key_id = Some(kid.into());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    serde_json::to_value(jwk).expect("JWK as JSON")
}

pub(crate) fn jwks(keys: &[Value]) -> Vec<u8> {
    json!({ "keys": keys }).to_string().into_bytes()
}

/// One RSA, one P-256 and one Ed25519 key, with `kid`s `rsa`, `ec` and `ed`.
fn keys() -> &'static KeySet {
    static KEYS: OnceLock<KeySet> = OnceLock::new();
    KEYS.get_or_init(|| {
        let document = jwks(&[
            jwk(Algorithm::RS256, "rsa"),
            jwk(Algorithm::ES256, "ec"),
            jwk(Algorithm::EdDSA, "ed"),
        ]);
        KeySet::from_jwks(&document).expect("test JWKS")
    })
}

fn config() -> AuthConfig {
    AuthConfig::new(ISSUER, RESOURCE)
}

/// Claims that pass with [`config`] at [`NOW`].
fn claims() -> Value {
    json!({
        "iss": ISSUER,
        "sub": "alice",
        "aud": RESOURCE,
        "exp": NOW + 300,
        "iat": NOW,
        "client_id": "app",
        "scope": "mcp mcp:read",
    })
}

/// `claims()` with `changes` applied (a `null` removes the claim).
fn claims_with(changes: Value) -> Value {
    let mut claims = claims();
    for (name, value) in changes.as_object().expect("object") {
        match value {
            Value::Null => claims.as_object_mut().expect("object").remove(name),
            value => claims
                .as_object_mut()
                .expect("object")
                .insert(name.clone(), value.clone()),
        };
    }
    claims
}

fn header(alg: Algorithm, kid: Option<&str>, typ: Option<&str>) -> Header {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    header.typ = typ.map(str::to_owned);
    header
}

/// A token signed with the test key for `alg`, `typ: at+jwt`.
pub(crate) fn mint(alg: Algorithm, kid: &str, claims: &Value) -> String {
    mint_with(
        &header(alg, Some(kid), Some("at+jwt")),
        claims,
        &encoding_key(alg),
    )
}

fn mint_with(header: &Header, claims: &Value, key: &EncodingKey) -> String {
    jsonwebtoken::encode(header, claims, key).expect("signed")
}

fn es256(claims: &Value) -> String {
    mint(Algorithm::ES256, "ec", claims)
}

fn check(token: &str) -> Result<Principal, TokenError> {
    validate_jwt(token, keys(), &config(), NOW)
}

fn check_with(token: &str, config: &AuthConfig) -> Result<Principal, TokenError> {
    validate_jwt(token, keys(), config, NOW)
}

fn base64url(bytes: &[u8]) -> String {
    base64::encode(bytes)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

fn scopes(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------- JWT: valid tokens

#[test]
fn a_valid_token_of_each_key_type_gives_its_principal() {
    for (alg, kid) in [
        (Algorithm::ES256, "ec"),
        (Algorithm::RS256, "rsa"),
        (Algorithm::EdDSA, "ed"),
    ] {
        let principal = check(&mint(alg, kid, &claims())).expect("valid");
        let expected = Principal::new(
            ISSUER.into(),
            "alice".into(),
            Some("app".into()),
            scopes(&["mcp", "mcp:read"]),
            NOW + 300,
        )
        .expect("principal");
        assert_eq!(principal, expected, "{alg:?}");
    }
}

#[test]
fn the_typ_header_must_say_access_token_unless_any_is_accepted() {
    let typed = |typ: Option<&str>| {
        mint_with(
            &header(Algorithm::ES256, Some("ec"), typ),
            &claims(),
            &encoding_key(Algorithm::ES256),
        )
    };
    for good in [
        "at+jwt",
        "application/at+jwt",
        "AT+JWT",
        "Application/AT+JWT",
    ] {
        assert!(check(&typed(Some(good))).is_ok(), "{good}");
    }
    for bad in [Some("JWT"), Some("jwt"), Some("at+jwt2"), None] {
        assert_eq!(check(&typed(bad)), Err(TokenError::WrongType), "{bad:?}");
    }
    let mut lenient = config();
    lenient.accept_any_typ = true;
    assert!(check_with(&typed(Some("JWT")), &lenient).is_ok());
    assert!(check_with(&typed(None), &lenient).is_ok());
}

// ---------------------------------------------------------------- JWT: time

#[test]
fn expiry_is_checked_against_now_with_the_leeway() {
    // Valid while now < exp + leeway (30 s).
    for (exp, expected) in [
        (NOW + 1, Ok(())),
        (NOW, Ok(())),
        (NOW - 29, Ok(())),
        (NOW - 30, Err(TokenError::Expired)),
        (NOW - 3600, Err(TokenError::Expired)),
    ] {
        let outcome = check(&es256(&claims_with(json!({ "exp": exp })))).map(|_| ());
        assert_eq!(outcome, expected, "exp = NOW - {}", NOW as i64 - exp as i64);
    }
    let mut strict = config();
    strict.leeway_secs = 0;
    let at_now = es256(&claims_with(json!({ "exp": NOW })));
    assert_eq!(check_with(&at_now, &strict), Err(TokenError::Expired));
    // Fractional NumericDates are read in whole seconds.
    let fractional = es256(&claims_with(json!({ "exp": NOW as f64 + 0.5 })));
    assert_eq!(check_with(&fractional, &strict), Err(TokenError::Expired));
}

#[test]
fn not_before_is_checked_against_now_with_the_leeway() {
    for (nbf, expected) in [
        (NOW - 10, Ok(())),
        (NOW + 30, Ok(())),
        (NOW + 31, Err(TokenError::NotYetValid)),
    ] {
        let outcome = check(&es256(&claims_with(json!({ "nbf": nbf })))).map(|_| ());
        assert_eq!(outcome, expected, "nbf = NOW + {}", nbf - NOW);
    }
}

#[test]
fn expiry_is_required() {
    let no_exp = es256(&claims_with(json!({ "exp": null })));
    assert_eq!(check(&no_exp), Err(TokenError::MissingClaim("exp")));
}

// ---------------------------------------------------------------- JWT: issuer and audience

#[test]
fn the_issuer_must_match_exactly() {
    for iss in [
        json!("https://evil.example"),
        json!("https://as.example/"),
        json!("HTTPS://as.example"),
        Value::Null,
    ] {
        let token = es256(&claims_with(json!({ "iss": iss })));
        assert_eq!(check(&token), Err(TokenError::WrongIssuer), "{iss}");
    }
}

#[test]
fn the_audience_must_name_this_resource() {
    for aud in [
        json!("https://127.0.0.1:8443/other"),
        json!("https://127.0.0.1:8444/mcp"),
        json!("https://127.0.0.1:8443/mcp/"),
        json!(["https://a", "https://b"]),
        json!([]),
        Value::Null,
    ] {
        let token = es256(&claims_with(json!({ "aud": aud })));
        assert_eq!(check(&token), Err(TokenError::WrongAudience), "{aud}");
    }
}

#[test]
fn an_audience_array_needs_to_contain_it() {
    let token = es256(&claims_with(json!({ "aud": ["https://other", RESOURCE] })));
    assert!(check(&token).is_ok());
}

#[test]
fn audiences_compare_in_normal_form() {
    for aud in ["HTTPS://127.0.0.1:8443/mcp", "https://127.0.0.1:8443/mcp"] {
        assert!(
            check(&es256(&claims_with(json!({ "aud": aud })))).is_ok(),
            "{aud}"
        );
    }
    let mut named = AuthConfig::new(ISSUER, "https://mcp.example.com/mcp");
    named.audience = "https://mcp.example.com/mcp".into();
    for aud in [
        "https://MCP.Example.com/mcp",
        "https://mcp.example.com:443/mcp",
        "HTTPS://MCP.EXAMPLE.COM:443/mcp",
    ] {
        let token = es256(&claims_with(json!({ "aud": aud })));
        assert!(check_with(&token, &named).is_ok(), "{aud}");
    }
    let mut root = AuthConfig::new(ISSUER, "https://mcp.example.com");
    root.audience = "https://mcp.example.com".into();
    let token = es256(&claims_with(json!({ "aud": "https://mcp.example.com/" })));
    assert!(check_with(&token, &root).is_ok());
}

#[test]
fn a_configured_audience_replaces_the_resource() {
    let mut mapped = config();
    mapped.audience = "api://ringmcp".into();
    let token = es256(&claims_with(json!({ "aud": "api://ringmcp" })));
    assert!(check_with(&token, &mapped).is_ok());
    assert_eq!(
        check_with(&es256(&claims()), &mapped),
        Err(TokenError::WrongAudience)
    );
}

// ---------------------------------------------------------------- JWT: signature and keys

#[test]
fn a_changed_byte_breaks_the_signature() {
    let token = es256(&claims());
    let signature_at = token.rfind('.').expect("three parts") + 1;
    let payload_at = token.find('.').expect("three parts") + 1;
    for at in [signature_at + 5, payload_at + 5] {
        let mut bytes = token.clone().into_bytes();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        let changed = String::from_utf8(bytes).expect("ASCII");
        assert_eq!(check(&changed), Err(TokenError::BadSignature), "byte {at}");
    }
    // The same claims signed by another key under the `ec` kid.
    let forged = mint_with(
        &header(Algorithm::EdDSA, Some("ec"), Some("at+jwt")),
        &claims(),
        &encoding_key(Algorithm::EdDSA),
    );
    assert_eq!(check(&forged), Err(TokenError::KeyMismatch));
}

#[test]
fn alg_none_is_refused() {
    let header = base64url(br#"{"alg":"none","typ":"at+jwt","kid":"ec"}"#);
    let payload = base64url(claims().to_string().as_bytes());
    for token in [
        format!("{header}.{payload}."),
        format!("{header}.{payload}"),
    ] {
        assert_eq!(check(&token), Err(TokenError::Malformed), "{token}");
    }
}

#[test]
fn hs256_keyed_with_the_public_key_is_refused() {
    // The key-confusion forgery: HMAC keyed with what the attacker knows of the RSA key.
    let public = serde_json::to_vec(&jwk(Algorithm::RS256, "rsa")).expect("JSON");
    let forged = mint_with(
        &header(Algorithm::HS256, Some("rsa"), Some("at+jwt")),
        &claims(),
        &EncodingKey::from_secret(&public).expect("HMAC key"),
    );
    assert_eq!(check(&forged), Err(TokenError::AlgorithmNotAllowed));
    // Even with HS256 wrongly allowed (validate() refuses that), no key set holds an HMAC key.
    let mut careless = config();
    careless.algorithms.push(Algorithm::HS256);
    assert_eq!(check_with(&forged, &careless), Err(TokenError::KeyMismatch));
}

#[test]
fn only_allowed_algorithms_pass() {
    let mut es_only = config();
    es_only.algorithms = vec![Algorithm::ES256];
    assert!(check_with(&es256(&claims()), &es_only).is_ok());
    let rs = mint(Algorithm::RS256, "rsa", &claims());
    assert_eq!(
        check_with(&rs, &es_only),
        Err(TokenError::AlgorithmNotAllowed)
    );
}

#[test]
fn an_unknown_kid_is_its_own_error() {
    let token = mint(Algorithm::ES256, "rotated", &claims());
    assert_eq!(check(&token), Err(TokenError::UnknownKey));
}

#[test]
fn the_key_must_fit_the_tokens_algorithm() {
    // The `ec` key is P-256; the `rsa` JWK says `alg: RS256`.
    let on_wrong_key = mint_with(
        &header(Algorithm::ES256, Some("rsa"), Some("at+jwt")),
        &claims(),
        &encoding_key(Algorithm::ES256),
    );
    assert_eq!(check(&on_wrong_key), Err(TokenError::KeyMismatch));
    let pss = mint(Algorithm::PS256, "rsa", &claims());
    assert_eq!(check(&pss), Err(TokenError::KeyMismatch));
    // Without `alg` in the JWK, the RSA key verifies every RSA algorithm.
    let mut any_rsa = jwk(Algorithm::RS256, "rsa");
    any_rsa.as_object_mut().expect("object").remove("alg");
    let keys = KeySet::from_jwks(&jwks(&[any_rsa])).expect("JWKS");
    for alg in [Algorithm::PS256, Algorithm::RS512] {
        let token = mint(alg, "rsa", &claims());
        assert!(
            validate_jwt(&token, &keys, &config(), NOW).is_ok(),
            "{alg:?}"
        );
    }
}

#[test]
fn a_token_without_kid_needs_exactly_one_fitting_key() {
    let no_kid = |alg: Algorithm| {
        mint_with(
            &header(alg, None, Some("at+jwt")),
            &claims(),
            &encoding_key(alg),
        )
    };
    // One key of each type: each algorithm has exactly one candidate.
    assert!(check(&no_kid(Algorithm::ES256)).is_ok());
    assert!(check(&no_kid(Algorithm::RS256)).is_ok());
    let two_rsa = KeySet::from_jwks(&jwks(&[
        jwk(Algorithm::RS256, "a"),
        jwk(Algorithm::RS256, "b"),
    ]))
    .expect("JWKS");
    assert_eq!(
        validate_jwt(&no_kid(Algorithm::RS256), &two_rsa, &config(), NOW),
        Err(TokenError::UnknownKey)
    );
}

#[test]
fn what_is_not_a_jwt_is_malformed() {
    let long = "a".repeat(crate::proto::auth::MAX_TOKEN_BYTES + 1);
    for token in ["", "abc", "a.b", "a.b.c.d", "!!.!!.!!", long.as_str()] {
        assert_eq!(check(token), Err(TokenError::Malformed), "{token:.20}");
    }
    for bad in [
        json!({ "exp": "soon" }),
        json!({ "aud": 5 }),
        json!({ "sub": ["a"] }),
    ] {
        let token = es256(&claims_with(bad.clone()));
        assert_eq!(check(&token), Err(TokenError::Malformed), "{bad}");
    }
}

// ---------------------------------------------------------------- JWT: subject and scopes

#[test]
fn scopes_come_from_scope_or_scp() {
    for (changes, expected) in [
        (json!({}), scopes(&["mcp", "mcp:read"])),
        (json!({ "scope": "  a   b a " }), scopes(&["a", "b"])),
        (
            json!({ "scope": null, "scp": ["a", "b"] }),
            scopes(&["a", "b"]),
        ),
        (json!({ "scope": null, "scp": "a b" }), scopes(&["a", "b"])),
        (json!({ "scope": "a", "scp": ["b"] }), scopes(&["a"])),
        (json!({ "scope": null }), scopes(&[])),
    ] {
        let principal = check(&es256(&claims_with(changes.clone()))).expect("valid");
        assert_eq!(principal.scopes, expected, "{changes}");
    }
}

#[test]
fn the_subject_is_required_or_the_client_stands_in() {
    let client_only = check(&es256(&claims_with(json!({ "sub": null })))).expect("valid");
    assert_eq!(client_only.subject, "app");
    let azp = check(&es256(&claims_with(
        json!({ "client_id": null, "azp": "spa" }),
    )))
    .expect("valid");
    assert_eq!(azp.client_id.as_deref(), Some("spa"));
    let nobody = es256(&claims_with(json!({ "sub": null, "client_id": null })));
    assert_eq!(check(&nobody), Err(TokenError::MissingClaim("sub")));
    let nul = es256(&claims_with(json!({ "sub": "a\u{0}b" })));
    assert_eq!(check(&nul), Err(TokenError::Malformed));
}

#[test]
fn step_up_compares_the_granted_scopes_with_the_required_ones() {
    let mut c = config();
    c.scopes = vec!["mcp".into()];
    c.tool_scopes = vec![("deploy".into(), vec!["mcp:deploy".into()])];
    let principal = check(&es256(&claims())).expect("valid");
    assert!(c
        .missing_scopes(&principal, &c.required_scopes("tools/list", None))
        .is_empty());
    let required = c.required_scopes("tools/call", Some("deploy"));
    assert_eq!(c.missing_scopes(&principal, &required), ["mcp:deploy"]);
    // A broader scope granted implies the narrower ones, transitively (MCP 2026-07-28).
    let mut broad = c.clone();
    broad.implied_scopes = vec![
        ("mcp:read".into(), vec!["mcp:deploy".into()]),
        ("mcp:deploy".into(), vec!["mcp:deploy:staging".into()]),
    ];
    let c = broad;
    assert!(c.missing_scopes(&principal, &["mcp:deploy"]).is_empty());
    assert!(c
        .missing_scopes(&principal, &["mcp:deploy:staging"])
        .is_empty());
    assert_eq!(c.missing_scopes(&principal, &["mcp:admin"]), ["mcp:admin"]);
    let answer = TokenError::InsufficientScope.answer(&metadata_url(&c), &required);
    assert_eq!(answer.status, 403);
    assert_eq!(
        answer.www_authenticate.as_deref(),
        Some(
            "Bearer error=\"insufficient_scope\", error_description=\"insufficient scope\", \
             resource_metadata=\"https://127.0.0.1:8443/.well-known/oauth-protected-resource/mcp\", \
             scope=\"mcp mcp:deploy\""
        )
    );
}

// ---------------------------------------------------------------- JWKS

#[test]
fn symmetric_and_unusable_keys_are_left_out() {
    let oct = json!({"kty": "oct", "kid": "hmac", "k": "c2VjcmV0c2VjcmV0c2VjcmV0", "alg": "HS256"});
    let mut enc = jwk(Algorithm::RS256, "enc");
    enc["use"] = json!("enc");
    let mut sign_only = jwk(Algorithm::ES256, "sign-only");
    sign_only["key_ops"] = json!(["sign"]);
    let mut oaep = jwk(Algorithm::RS256, "oaep");
    oaep["alg"] = json!("RSA-OAEP");
    let mut ec_claiming_rs = jwk(Algorithm::ES256, "ec-rs");
    ec_claiming_rs["alg"] = json!("RS256");
    let small_rsa =
        json!({"kty": "RSA", "kid": "small", "n": base64url(&[0xC1; 128]), "e": "AQAB"});
    let bad_point = json!({"kty": "EC", "kid": "bad", "crv": "P-256",
                           "x": base64url(&[1; 32]), "y": base64url(&[2; 32])});
    let p521 = json!({"kty": "EC", "kid": "p521", "crv": "P-521",
                      "x": base64url(&[1; 66]), "y": base64url(&[2; 66])});
    let unknown = json!({"kty": "PQC", "kid": "future"});
    let not_an_object = json!("key");
    let document = jwks(&[
        oct.clone(),
        enc,
        sign_only,
        oaep,
        ec_claiming_rs,
        small_rsa,
        bad_point,
        p521,
        unknown,
        not_an_object,
        jwk(Algorithm::ES256, "ec"),
    ]);
    let keys = KeySet::from_jwks(&document).expect("one usable key");
    assert_eq!((keys.len(), keys.ignored()), (1, 10));
    assert!(!keys.is_empty());
    assert_eq!(
        keys.find(Some("hmac"), Algorithm::HS256).map(|_| ()),
        Err(TokenError::UnknownKey)
    );
    assert!(keys.find(Some("ec"), Algorithm::ES256).is_ok());
    assert_eq!(
        KeySet::from_jwks(&jwks(&[oct])).map(|_| ()),
        Err(KeysError::NoUsableKey)
    );
}

#[test]
fn jwks_documents_are_bounded() {
    let key = jwk(Algorithm::ES256, "ec");
    assert!(KeySet::from_jwks(&jwks(&vec![key.clone(); MAX_KEYS])).is_ok());
    assert_eq!(
        KeySet::from_jwks(&jwks(&vec![key; MAX_KEYS + 1])).map(|_| ()),
        Err(KeysError::TooManyKeys)
    );
    let mut padded = jwks(&[jwk(Algorithm::ES256, "ec")]);
    padded.resize(MAX_JWKS_BYTES, b' ');
    assert!(KeySet::from_jwks(&padded).is_ok());
    padded.push(b' ');
    assert_eq!(
        KeySet::from_jwks(&padded).map(|_| ()),
        Err(KeysError::TooLarge)
    );
}

#[test]
fn what_is_not_a_jwks_is_refused() {
    for document in [&b""[..], b"[]", b"{}", b"{\"keys\": {}}", b"not json"] {
        assert_eq!(
            KeySet::from_jwks(document).map(|_| ()),
            Err(KeysError::NotAJwks),
            "{}",
            String::from_utf8_lossy(document)
        );
    }
    assert_eq!(
        KeySet::from_jwks(b"{\"keys\": []}").map(|_| ()),
        Err(KeysError::NoUsableKey)
    );
}

// ---------------------------------------------------------------- introspection

fn endpoint() -> Introspection {
    Introspection::new(
        "https://as.example/oauth/introspect",
        "rs client",
        "s3:cr&t",
    )
    .expect("URL")
}

fn introspected(response: Value) -> Result<(Principal, u64), TokenError> {
    endpoint().principal(response.to_string().as_bytes(), &config(), NOW)
}

fn active() -> Value {
    json!({
        "active": true,
        "iss": ISSUER,
        "sub": "alice",
        "aud": [RESOURCE],
        "client_id": "app",
        "scope": "mcp",
        "exp": NOW + 3600,
        "token_type": "Bearer",
    })
}

#[test]
fn the_introspection_request_is_a_whole_http_request() {
    let endpoint = endpoint();
    assert!(endpoint.url.tls);
    assert_eq!(endpoint.url.authority, "as.example");
    assert_eq!(endpoint.url.target, "/oauth/introspect");
    let request = endpoint.request("mF_9.B5f+4/1=");
    let body = "token=mF_9.B5f%2B4%2F1%3D&token_type_hint=access_token";
    let basic = base64::encode(b"rs%20client:s3%3Acr%26t");
    let expected = format!(
        "POST /oauth/introspect HTTP/1.1\r\nhost: as.example\r\n\
         content-type: application/x-www-form-urlencoded\r\naccept: application/json\r\n\
         authorization: Basic {basic}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(String::from_utf8_lossy(&request), expected);
    let Ok(Status::Complete(head, used)) = RequestHead::parse(&request, &Limits::default()) else {
        panic!("not a request head")
    };
    assert_eq!(
        head.header_str("authorization"),
        Some(format!("Basic {basic}").as_str())
    );
    assert_eq!(&request[used..], body.as_bytes());
}

#[test]
fn introspection_endpoints_are_absolute_urls() {
    let plain = Introspection::new("http://127.0.0.1:9000?x=1", "id", "secret").expect("URL");
    assert!(!plain.url.tls);
    assert_eq!(
        (plain.url.authority.as_str(), plain.url.target.as_str()),
        ("127.0.0.1:9000", "/?x=1")
    );
    for bad in [
        "/introspect",
        "ftp://as/introspect",
        "https://as/introspect#f",
        "https://as/in trospect",
    ] {
        assert_eq!(
            Introspection::new(bad, "id", "secret").map(|_| ()),
            Err(ConfigError::NotAbsoluteUri(bad.into())),
            "{bad}"
        );
    }
    assert!(
        !format!("{:?}", endpoint()).contains("s3:cr&t"),
        "secret in Debug"
    );
}

#[test]
fn an_active_token_is_cached_until_exp_or_cache_secs() {
    let (principal, until) = introspected(active()).expect("active");
    assert_eq!(principal.subject, "alice");
    assert_eq!(principal.client_id.as_deref(), Some("app"));
    assert_eq!(principal.scopes, scopes(&["mcp"]));
    assert_eq!(principal.expires_at, NOW + 3600);
    assert_eq!(until, NOW + DEFAULT_CACHE_SECS);
    let mut expiring = active();
    expiring["exp"] = json!(NOW + 10);
    let (_, until) = introspected(expiring).expect("active");
    assert_eq!(until, NOW + 10);
    // No `exp`: the token never says it ends; the cache still does.
    let mut no_exp = active();
    no_exp.as_object_mut().expect("object").remove("exp");
    let (principal, until) = introspected(no_exp).expect("active");
    assert_eq!(
        (principal.expires_at, until),
        (u64::MAX, NOW + DEFAULT_CACHE_SECS)
    );
}

#[test]
fn introspection_refusals() {
    let with = |name: &str, value: Value| {
        let mut response = active();
        match value {
            Value::Null => {
                response.as_object_mut().expect("object").remove(name);
            }
            value => response[name] = value,
        }
        introspected(response).map(|_| ())
    };
    assert_eq!(
        introspected(json!({ "active": false })).map(|_| ()),
        Err(TokenError::Inactive)
    );
    assert_eq!(with("active", json!(false)), Err(TokenError::Inactive));
    assert_eq!(with("active", Value::Null), Err(TokenError::Unavailable));
    assert_eq!(with("active", json!("true")), Err(TokenError::Unavailable));
    assert_eq!(
        with("aud", json!("https://other/mcp")),
        Err(TokenError::WrongAudience)
    );
    assert_eq!(with("aud", Value::Null), Err(TokenError::WrongAudience));
    assert_eq!(
        with("iss", json!("https://evil")),
        Err(TokenError::WrongIssuer)
    );
    assert_eq!(with("exp", json!(NOW - 60)), Err(TokenError::Expired));
    assert_eq!(with("nbf", json!(NOW + 60)), Err(TokenError::NotYetValid));
    for garbage in [
        &b"not json"[..],
        b"[]",
        b"{\"active\": true, \"exp\": \"x\"}",
    ] {
        assert_eq!(
            endpoint().principal(garbage, &config(), NOW).map(|_| ()),
            Err(TokenError::Unavailable)
        );
    }
    let huge = format!(
        "{{\"active\": true, \"pad\": \"{}\"}}",
        "x".repeat(64 * 1024)
    );
    assert_eq!(
        endpoint()
            .principal(huge.as_bytes(), &config(), NOW)
            .map(|_| ()),
        Err(TokenError::Unavailable)
    );
}

#[test]
fn an_introspection_without_iss_or_sub_trusts_the_endpoint_and_the_client() {
    let mut response = active();
    let object = response.as_object_mut().expect("object");
    object.remove("iss");
    object.remove("sub");
    let (principal, _) = introspected(response).expect("active");
    assert_eq!(principal.issuer, ISSUER);
    assert_eq!(principal.subject, "app");
}

#[test]
fn an_introspected_principal_lives_in_the_cache_until_cache_until() {
    let (principal, until) = introspected(active()).expect("active");
    let mut cache = TokenCache::new(16);
    let key = TokenKey::of("opaque-token");
    cache.insert(key, Ok(Rc::new(principal)), until, NOW);
    assert!(matches!(cache.get(&key, until - 1), Some(Ok(_))));
    assert_eq!(cache.get(&key, until), None);
}
