//! Standard Webhooks signatures: `webhook-signature: v1,<base64 HMAC-SHA256>`
//! over `<webhook-id>.<webhook-timestamp>.<body>`, keyed with the
//! base64-decoded part of a `whsec_` secret.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Random bytes in a generated secret (the contract allows 24–64).
pub const SECRET_BYTES: usize = 32;
const PREFIX: &str = "whsec_";

/// An endpoint's signing secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    key: Vec<u8>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl Secret {
    /// A fresh secret from the operating system's random source.
    pub fn generate() -> Secret {
        let mut key = vec![0u8; SECRET_BYTES];
        rand::fill(&mut key[..]);
        Secret { key }
    }

    /// `whsec_<base64>` with 24–64 bytes behind it.
    pub fn parse(s: &str) -> Option<Secret> {
        let key = B64.decode(s.strip_prefix(PREFIX)?).ok()?;
        (24..=64).contains(&key.len()).then_some(Secret { key })
    }

    /// The form shown once at registration and stored.
    pub fn encode(&self) -> String {
        format!("{PREFIX}{}", B64.encode(&self.key))
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The `webhook-signature` header value.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        format!(
            "v1,{}",
            B64.encode(self.mac(id, timestamp, body).finalize().into_bytes())
        )
    }

    /// True when one of the space-separated `v1,…` signatures in `header`
    /// is this secret's (compared in constant time). The receiver's side:
    /// used by the tests and by anyone embedding this crate.
    pub fn verify(&self, id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
        header.split(' ').any(|sig| {
            sig.strip_prefix("v1,")
                .and_then(|b| B64.decode(b).ok())
                .is_some_and(|raw| self.mac(id, timestamp, body).verify_slice(&raw).is_ok())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Standard Webhooks reference libraries' own test vector.
    #[test]
    fn the_published_test_vector() {
        let s = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let (id, ts, body) = (
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        let sig = s.sign(id, ts, body);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(s.verify(id, ts, body, &sig));
        assert!(s.verify(id, ts, body, &format!("v1,bm9wZQ== {sig}")));
        assert!(!s.verify(id, ts + 1, body, &sig));
        assert!(!s.verify(id, ts, br#"{"test": 2432232315}"#, &sig));
        assert!(!s.verify(
            id,
            ts,
            body,
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="
        ));
        assert!(!s.verify(
            id,
            ts,
            body,
            "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        ));
    }

    #[test]
    fn generated_secrets_round_trip_and_differ() {
        let a = Secret::generate();
        let b = Secret::generate();
        assert_ne!(a, b);
        let enc = a.encode();
        assert!(enc.starts_with("whsec_"));
        assert_eq!(Secret::parse(&enc), Some(a));
        assert_eq!(Secret::parse("whsec_"), None);
        assert_eq!(Secret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), None);
        assert_eq!(Secret::parse("whsec_c2hvcnQ="), None); // 5 bytes
        assert_eq!(Secret::parse("whsec_%%%"), None);
    }
}
