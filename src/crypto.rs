//! The crypto provider: ring, passed explicitly to everything that needs one, never installed
//! as a process-wide default (a library must not choose for the whole program).
//!
//! Path building (the signature algorithms webpki may use), the private-key check of every
//! loaded key and the TLS configurations all take their algorithms from [`provider`], and
//! SHA-256 comes from [`sha256`], so the provider is named in this file alone. ring is the only
//! provider: `aws-lc-rs` would replace the two functions here, and x509-parser's signature
//! checks and the issuer's key generation still use ring.

use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;

/// The provider every verification, key check and TLS configuration uses; built once.
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// The RSA modulus sizes ring signs with: 2048 to 4096 bits, each prime a multiple of 512
/// bits long (ring 0.17, `rsa::keypair`), so 2048, 3072 and 4096. Keys of other sizes are
/// refused when loaded ("TooLarge", "PrivateModulusLenNotMultipleOf512Bits").
pub const RSA_SIGNING_BITS: [usize; 3] = [2048, 3072, 4096];

/// [`RSA_SIGNING_BITS`] as messages say it: "2048, 3072 or 4096 bits".
pub fn rsa_signing_sizes() -> String {
    let [a, b, c] = RSA_SIGNING_BITS;
    format!("{a}, {b} or {c} bits")
}

/// SHA-256 of `data`: the hash of fingerprints and key identifiers.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, data);
    let mut bytes = [0u8; 32];
    bytes.copy_from_slice(digest.as_ref());
    bytes
}

/// Fills `buf` from the system's random generator (serial numbers, unique names).
pub fn fill_random(buf: &mut [u8]) -> crate::error::Result<()> {
    use ring::rand::SecureRandom;
    ring::rand::SystemRandom::new().fill(buf).map_err(|_| {
        crate::error::Error::new(
            crate::error::ErrorKind::Internal,
            "reading random bytes: the system's generator failed",
        )
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn sha256_is_the_standard_one() {
        // FIPS 180-2, appendix B.1.
        let abc = super::sha256(b"abc");
        assert_eq!(abc[..4], [0xba, 0x78, 0x16, 0xbf]);
        assert_eq!(abc[28..], [0xf2, 0x00, 0x15, 0xad]);
    }

    #[test]
    fn random_bytes_differ() {
        let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
        super::fill_random(&mut a).unwrap();
        super::fill_random(&mut b).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn the_provider_is_built_once() {
        assert!(std::sync::Arc::ptr_eq(
            &super::provider(),
            &super::provider()
        ));
    }
}
