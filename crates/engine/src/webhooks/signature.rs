//! The `Settlement-Signature` header: `t=<unix seconds>,v1=<hex HMAC-SHA256 of
//! "<t>.<body>">`, with one `v1` per secret that signs (two during a rotation).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Name of the signature header.
pub const SIGNATURE_HEADER: &str = "settlement-signature";

/// Hex HMAC-SHA256 of `"{timestamp}.{body}"` with `secret`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length; this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The header value signing `body` at `timestamp` with every given secret.
pub fn header_value(secrets: &[&str], timestamp: i64, body: &[u8]) -> String {
    let mut value = format!("t={timestamp}");
    for secret in secrets {
        value.push_str(",v1=");
        value.push_str(&sign(secret, timestamp, body));
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_matches_a_known_hmac() {
        // HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog") from RFC 4231's
        // usual example, with the timestamp prefix split off as "The quick brown fox".
        let body = b"jumps over the lazy dog";
        let direct = {
            let mut mac = Hmac::<Sha256>::new_from_slice(b"key").unwrap();
            mac.update(b"1700000000.jumps over the lazy dog");
            mac.finalize()
                .into_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        assert_eq!(sign("key", 1_700_000_000, body), direct);
        assert_eq!(sign("key", 1_700_000_000, body).len(), 64);
    }

    #[test]
    fn every_secret_adds_a_v1() {
        let v = header_value(&["a", "b"], 5, b"{}");
        assert!(v.starts_with("t=5,v1="));
        assert_eq!(v.matches(",v1=").count(), 2);
        assert_ne!(sign("a", 5, b"{}"), sign("b", 5, b"{}"));
    }
}
