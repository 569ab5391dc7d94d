//! SCRAM-SHA-256 / SCRAM-SHA-512 client (RFC 5802, RFC 7677), as Kafka speaks
//! it: no channel binding (`n,,`), the password's UTF-8 bytes as is.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

/// Iteration counts outside this range are refused (Kafka allows 4096..=16384).
const ITERATIONS: std::ops::RangeInclusive<u32> = 4096..=65536;

#[derive(Debug, Clone, Copy)]
pub(super) enum Hash {
    Sha256,
    Sha512,
}

impl Hash {
    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => mac::<Hmac<Sha256>>(key, data),
            Hash::Sha512 => mac::<Hmac<Sha512>>(key, data),
        }
    }

    fn h(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => Sha256::digest(data).to_vec(),
            Hash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            Hash::Sha256 => {
                let mut out = vec![0; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
                out
            }
            Hash::Sha512 => {
                let mut out = vec![0; 64];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
                out
            }
        }
    }
}

fn mac<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length.
    let mut m = <M as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// One SCRAM exchange.
pub(super) struct Scram {
    hash: Hash,
    password: Vec<u8>,
    nonce: String,
    first_bare: String,
    server_signature: Option<Vec<u8>>,
}

impl std::fmt::Debug for Scram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scram")
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

impl Scram {
    pub(super) fn new(hash: Hash, username: &str, password: &str, nonce: String) -> Self {
        // RFC 5802 saslname: `=` and `,` are escaped.
        let name = username.replace('=', "=3D").replace(',', "=2C");
        Scram {
            hash,
            password: password.as_bytes().to_vec(),
            first_bare: format!("n={name},r={nonce}"),
            nonce,
            server_signature: None,
        }
    }

    /// Whether the client-final message was sent (the next message is the server's last).
    pub(super) fn has_final(&self) -> bool {
        self.server_signature.is_some()
    }

    /// A fresh random client nonce.
    pub(super) fn random_nonce() -> Result<String, String> {
        let mut b = [0u8; 24];
        getrandom::getrandom(&mut b).map_err(|e| format!("no randomness for the nonce: {e}"))?;
        Ok(B64.encode(b))
    }

    pub(super) fn client_first(&self) -> Vec<u8> {
        format!("n,,{}", self.first_bare).into_bytes()
    }

    /// Answers the server-first message with the client-final message.
    pub(super) fn client_final(&mut self, server_first: &[u8]) -> Result<Vec<u8>, String> {
        let sf =
            std::str::from_utf8(server_first).map_err(|_| "server-first message is not UTF-8")?;
        let (mut nonce, mut salt, mut iterations) = (None, None, None);
        for attr in sf.split(',') {
            match attr.split_once('=') {
                Some(("r", v)) => nonce = Some(v),
                Some(("s", v)) => salt = Some(B64.decode(v).map_err(|_| "salt is not base64")?),
                Some(("i", v)) => {
                    iterations = Some(v.parse::<u32>().map_err(|_| "bad iteration count")?)
                }
                Some(("e", v)) => return Err(format!("server error: {v}")),
                Some(("m", _)) => return Err("server requires an unsupported extension".into()),
                _ => {}
            }
        }
        let nonce = nonce.ok_or("server-first message has no nonce")?;
        if !nonce.starts_with(&self.nonce) || nonce.len() <= self.nonce.len() {
            return Err("server nonce does not extend the client nonce".into());
        }
        let salt = salt.ok_or("server-first message has no salt")?;
        let iterations = iterations.ok_or("server-first message has no iteration count")?;
        if !ITERATIONS.contains(&iterations) {
            return Err(format!(
                "iteration count {iterations} is outside {}..={}",
                ITERATIONS.start(),
                ITERATIONS.end()
            ));
        }
        let h = self.hash;
        let salted = h.salted_password(&self.password, &salt, iterations);
        let client_key = h.hmac(&salted, b"Client Key");
        let stored_key = h.h(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{sf},{without_proof}", self.first_bare);
        let signature = h.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = h.hmac(&salted, b"Server Key");
        self.server_signature = Some(h.hmac(&server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Checks the server-final message: the server proves it knows the password too.
    pub(super) fn verify_server(&self, server_final: &[u8]) -> Result<(), String> {
        let sf =
            std::str::from_utf8(server_final).map_err(|_| "server-final message is not UTF-8")?;
        let expected = self
            .server_signature
            .as_ref()
            .ok_or("server-final before server-first")?;
        for attr in sf.split(',') {
            match attr.split_once('=') {
                Some(("e", v)) => return Err(format!("server error: {v}")),
                Some(("v", v)) => {
                    let got = B64
                        .decode(v)
                        .map_err(|_| "server signature is not base64")?;
                    return if &got == expected {
                        Ok(())
                    } else {
                        Err("the server's signature is wrong: it does not know this user's credentials".into())
                    };
                }
                _ => {}
            }
        }
        Err("server-final message has no signature".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 §3.
    #[test]
    fn rfc7677_example() {
        let mut s = Scram::new(
            Hash::Sha256,
            "user",
            "pencil",
            "rOprNGfwEbeRWgbNEkqO".into(),
        );
        assert_eq!(s.client_first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let fin = s
            .client_final(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
            .unwrap();
        assert_eq!(
            String::from_utf8(fin).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        s.verify_server(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        assert!(s
            .verify_server(b"v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .is_err());
    }

    #[test]
    fn hostile_server_first_is_refused() {
        let mut s = Scram::new(Hash::Sha512, "a,b=c", "pw", "abc".into());
        assert_eq!(s.client_first(), b"n,,n=a=2Cb=3Dc,r=abc");
        assert!(s
            .client_final(b"r=xyz123,s=AAAA,i=4096")
            .unwrap_err()
            .contains("nonce"));
        assert!(s
            .client_final(b"r=abcdef,s=AAAA,i=4000000000")
            .unwrap_err()
            .contains("iteration"));
        assert!(s
            .client_final(b"e=unknown-user")
            .unwrap_err()
            .contains("unknown-user"));
        assert!(s.verify_server(b"v=AAAA").is_err(), "no server-first yet");
    }
}
