//! Reading keys from requests: Segment's HTTP Basic (write key as user, empty password) and
//! `Authorization: Bearer KEY`. Never logs what it reads.

use axum::http::HeaderMap;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// The key presented in the `Authorization` header, if any.
pub fn presented_key(headers: &HeaderMap) -> Option<String> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    let (scheme, rest) = value.split_once(' ')?;
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => {
            let decoded = STANDARD.decode(rest.trim()).ok()?;
            let text = String::from_utf8(decoded).ok()?;
            let user = text.split_once(':').map_or(text.as_str(), |(u, _)| u);
            (!user.is_empty()).then(|| user.to_string())
        }
        "bearer" => Some(rest.trim().to_string()).filter(|k| !k.is_empty()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_and_bearer() {
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            format!("Basic {}", STANDARD.encode("wk123:"))
                .parse()
                .unwrap(),
        );
        assert_eq!(presented_key(&h).as_deref(), Some("wk123"));
        h.insert(
            "authorization",
            format!("Basic {}", STANDARD.encode("wk123"))
                .parse()
                .unwrap(),
        );
        assert_eq!(presented_key(&h).as_deref(), Some("wk123"));
        h.insert("authorization", "Bearer abc".parse().unwrap());
        assert_eq!(presented_key(&h).as_deref(), Some("abc"));
        h.insert("authorization", "Basic !!!".parse().unwrap());
        assert_eq!(presented_key(&h), None);
        h.insert(
            "authorization",
            format!("Basic {}", STANDARD.encode(":pw")).parse().unwrap(),
        );
        assert_eq!(presented_key(&h), None);
    }
}
