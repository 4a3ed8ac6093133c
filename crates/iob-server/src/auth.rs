//! Who is calling: reading keys from requests (Segment's HTTP Basic, with the write key as user
//! and an empty password, or `Authorization: Bearer KEY`) and [`require`], the one line every
//! non-collector route starts with to state what it needs. Which scope grants which need is
//! decided in `iob-govern` (`Need::scopes`), not here. Never logs what it reads.

use axum::http::HeaderMap;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use iob_engine::{ApiKey, EngineError, Need};

use crate::AppState;
use crate::problem::{self, Problem};

/// The `Authorization` header was sent but is not `Bearer KEY` or `Basic base64(KEY:)`.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed;

/// The key presented in the `Authorization` header: `Ok(None)` when there is no header.
pub fn read_key(headers: &HeaderMap) -> Result<Option<String>, Malformed> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| Malformed)?.trim();
    let (scheme, rest) = value.split_once(' ').ok_or(Malformed)?;
    let key = match scheme.to_ascii_lowercase().as_str() {
        "basic" => {
            let decoded = STANDARD.decode(rest.trim()).map_err(|_| Malformed)?;
            let text = String::from_utf8(decoded).map_err(|_| Malformed)?;
            let user = text.split_once(':').map_or(text.as_str(), |(u, _)| u);
            user.to_string()
        }
        "bearer" => rest.trim().to_string(),
        _ => return Err(Malformed),
    };
    if key.is_empty() {
        return Err(Malformed);
    }
    Ok(Some(key))
}

/// The key presented in the `Authorization` header, if one can be read (collector routes fall
/// back to the body's `writeKey`).
pub fn presented_key(headers: &HeaderMap) -> Option<String> {
    read_key(headers).ok().flatten()
}

/// The calling key, if it is valid, unexpired, under its rate limit and its scope grants
/// `need`; else the 401, 403 or 429 answer, naming the scopes that would do.
pub fn require(st: &AppState, headers: &HeaderMap, need: Need) -> Result<ApiKey, Problem> {
    let secret = match read_key(headers) {
        Ok(Some(k)) => k,
        Ok(None) => return Err(problem::denied(EngineError::MissingKey, need)),
        Err(Malformed) => return Err(problem::malformed_authorization(need)),
    };
    let key = st
        .engine
        .api_key(&secret)
        .map_err(|e| problem::denied(e, need))?;
    if key.scope.allows(need) {
        Ok(key)
    } else {
        Err(problem::denied(
            EngineError::NeedsScope {
                need,
                have: key.scope.name(),
            },
            need,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("authorization", v.parse().unwrap());
        h
    }

    #[test]
    fn basic_and_bearer() {
        let b = |s: &str| format!("Basic {}", STANDARD.encode(s));
        assert_eq!(read_key(&with(&b("wk123:"))), Ok(Some("wk123".into())));
        assert_eq!(read_key(&with(&b("wk123"))), Ok(Some("wk123".into())));
        assert_eq!(read_key(&with("Bearer abc")), Ok(Some("abc".into())));
        assert_eq!(read_key(&with("bearer  abc ")), Ok(Some("abc".into())));
        assert_eq!(read_key(&HeaderMap::new()), Ok(None));
        for bad in [
            "Basic !!!",
            &b(":pw"),
            "Bearer ",
            "Token abc",
            "abc",
            "Digest x=1",
        ] {
            assert_eq!(read_key(&with(bad)), Err(Malformed), "{bad}");
            assert_eq!(presented_key(&with(bad)), None, "{bad}");
        }
    }
}
