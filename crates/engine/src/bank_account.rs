//! Merchants' bank accounts, sealed at rest with AES-256-GCM.
//!
//! The settlement account is the one card-shaped value the service keeps (small
//! merchants in China settle to a UnionPay debit card). It is encrypted before it is
//! stored, with the key id stored beside it so keys can rotate: new values are sealed
//! with the current key, older ones open with the key they name. The merchant id is
//! the associated data, so a sealed value copied to another merchant does not open.
//! Answers, events, audit records and export files show it masked; only a bank file
//! for operations (pain.001) carries it whole.

use std::collections::HashMap;
use std::fmt;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;

/// Bytes of an AES-256 key.
pub const KEY_BYTES: usize = 32;
/// Bytes of the GCM nonce stored in front of each ciphertext.
const NONCE_BYTES: usize = 12;
/// Longest key id: it is stored beside every value.
const MAX_KEY_ID_LEN: usize = 32;
/// Characters of an account shown unmasked.
pub const SHOWN_CHARS: usize = 4;

/// A bank account as stored: the key id, nonce and ciphertext, and the last four
/// characters (what answers show).
#[derive(Clone, PartialEq, Eq)]
pub struct SealedAccount {
    pub key_id: String,
    pub sealed: Vec<u8>,
    pub last4: String,
}

impl fmt::Debug for SealedAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedAccount")
            .field("key_id", &self.key_id)
            .field("last4", &self.last4)
            .finish_non_exhaustive()
    }
}

/// The keys that seal and open bank accounts, by id; one is current.
#[derive(Clone)]
pub struct BankAccountKeys {
    current: String,
    keys: HashMap<String, Key<Aes256Gcm>>,
}

impl fmt::Debug for BankAccountKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<&String> = self.keys.keys().collect();
        ids.sort();
        f.debug_struct("BankAccountKeys")
            .field("current", &self.current)
            .field("key_ids", &ids)
            .finish()
    }
}

/// Why a sealed account could not be opened or sealed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("bank account key {0:?} is not configured")]
    UnknownKey(String),
    #[error("a sealed bank account failed its integrity check")]
    Corrupt,
    #[error("the bank account could not be sealed")]
    Seal,
}

impl BankAccountKeys {
    /// Parses `id:base64key[,id:base64key...]`: the first is the current key, the
    /// others open values sealed before a rotation. Each key is 32 random bytes in
    /// standard base64; ids are 1 to 32 letters, digits, '-' or '_'.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut keys = HashMap::new();
        let mut current = None;
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (id, encoded) = entry
                .split_once(':')
                .ok_or("each key must be written id:base64key")?;
            let id_ok = (1..=MAX_KEY_ID_LEN).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !id_ok {
                return Err(format!(
                    "key ids are 1 to {MAX_KEY_ID_LEN} letters, digits, '-' or '_'"
                ));
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|_| format!("key {id} is not standard base64"))?;
            if bytes.len() != KEY_BYTES {
                return Err(format!(
                    "key {id} must be {KEY_BYTES} bytes (AES-256), not {}",
                    bytes.len()
                ));
            }
            if keys
                .insert(id.to_owned(), *Key::<Aes256Gcm>::from_slice(&bytes))
                .is_some()
            {
                return Err(format!("key id {id} appears twice"));
            }
            current.get_or_insert_with(|| id.to_owned());
        }
        let current = current.ok_or("at least one key is required")?;
        Ok(BankAccountKeys { current, keys })
    }

    /// A new random key under `id`, written as `parse` reads it (for local runs).
    pub fn generate_text(id: &str) -> String {
        let key = Aes256Gcm::generate_key(OsRng);
        format!(
            "{id}:{}",
            base64::engine::general_purpose::STANDARD.encode(key)
        )
    }

    /// The id of the key new values are sealed with.
    pub fn current_key_id(&self) -> &str {
        &self.current
    }

    /// Seals a merchant's account with the current key.
    pub fn seal(&self, merchant_id: &str, account: &str) -> Result<SealedAccount, SealError> {
        let key = self
            .keys
            .get(&self.current)
            .ok_or_else(|| SealError::UnknownKey(self.current.clone()))?;
        let cipher = Aes256Gcm::new(key);
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: account.as_bytes(),
                    aad: merchant_id.as_bytes(),
                },
            )
            .map_err(|_| SealError::Seal)?;
        let mut sealed = Vec::with_capacity(NONCE_BYTES + ciphertext.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(SealedAccount {
            key_id: self.current.clone(),
            sealed,
            last4: last_chars(account),
        })
    }

    /// Opens a merchant's sealed account with the key it names.
    pub fn open(&self, merchant_id: &str, account: &SealedAccount) -> Result<String, SealError> {
        let key = self
            .keys
            .get(&account.key_id)
            .ok_or_else(|| SealError::UnknownKey(account.key_id.clone()))?;
        if account.sealed.len() <= NONCE_BYTES {
            return Err(SealError::Corrupt);
        }
        let (nonce, ciphertext) = account.sealed.split_at(NONCE_BYTES);
        let plain = Aes256Gcm::new(key)
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: merchant_id.as_bytes(),
                },
            )
            .map_err(|_| SealError::Corrupt)?;
        String::from_utf8(plain).map_err(|_| SealError::Corrupt)
    }
}

/// The last four characters of an account (the whole of a shorter one).
fn last_chars(account: &str) -> String {
    let n = account.chars().count();
    account
        .chars()
        .skip(n.saturating_sub(SHOWN_CHARS))
        .collect()
}

/// How every answer, event, audit record and CSV file shows an account: its last
/// four characters behind a fixed mask, so neither digits nor length leak.
pub fn masked(last4: &str) -> String {
    format!("************{last4}")
}

/// Most merchants sealed per transaction at start-up.
const SEAL_BATCH: i64 = 500;

/// Seals every bank account still stored in plain (from before accounts were
/// sealed), a batch per transaction; returns how many.
pub async fn seal_plain_accounts(
    pool: &sqlx::PgPool,
    keys: &BankAccountKeys,
) -> anyhow::Result<u64> {
    let mut sealed_count = 0u64;
    loop {
        let mut tx = pool.begin().await?;
        let plain =
            settlement_store::merchants::find_plain_bank_accounts(&mut tx, SEAL_BATCH).await?;
        if plain.is_empty() {
            tx.rollback().await?;
            return Ok(sealed_count);
        }
        for p in &plain {
            let sealed = keys.seal(&p.merchant_id, &p.bank_account)?;
            settlement_store::merchants::seal_bank_account(
                &mut tx,
                &p.merchant_id,
                &sealed.key_id,
                &sealed.sealed,
                &sealed.last4,
            )
            .await?;
        }
        tx.commit().await?;
        sealed_count += u64::try_from(plain.len()).unwrap_or(u64::MAX);
    }
}

/// The sealed account of a stored merchant, if it has one.
pub fn of_merchant(m: &settlement_store::merchants::MerchantRow) -> Option<SealedAccount> {
    match (
        &m.bank_account_key_id,
        &m.bank_account_sealed,
        &m.bank_account_last4,
    ) {
        (Some(key_id), Some(sealed), Some(last4)) => Some(SealedAccount {
            key_id: key_id.clone(),
            sealed: sealed.clone(),
            last4: last4.clone(),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNIONPAY: &str = "6222020200112233446";

    #[test]
    fn a_sealed_account_opens_for_its_merchant_only_and_hides_the_number() {
        let keys = BankAccountKeys::parse(&BankAccountKeys::generate_text("k1")).unwrap();
        let sealed = keys.seal("m1", UNIONPAY).unwrap();
        assert_eq!(sealed.last4, "3446");
        assert_eq!(sealed.key_id, "k1");
        assert!(!sealed
            .sealed
            .windows(UNIONPAY.len())
            .any(|w| w == UNIONPAY.as_bytes()));
        assert_eq!(keys.open("m1", &sealed).unwrap(), UNIONPAY);
        assert!(matches!(keys.open("m2", &sealed), Err(SealError::Corrupt)));
        let mut flipped = sealed.clone();
        flipped.sealed[20] ^= 1;
        assert!(matches!(keys.open("m1", &flipped), Err(SealError::Corrupt)));
        // Two seals of one account differ (a fresh nonce each time).
        assert_ne!(keys.seal("m1", UNIONPAY).unwrap().sealed, sealed.sealed);
        assert!(!format!("{sealed:?}").contains("6222"));
    }

    #[test]
    fn keys_rotate_old_values_open_with_the_key_they_name() {
        let old = BankAccountKeys::generate_text("2026a");
        let before = BankAccountKeys::parse(&old).unwrap();
        let sealed = before.seal("m1", "DE89370400440532013000").unwrap();
        let new = BankAccountKeys::generate_text("2026b");
        let after = BankAccountKeys::parse(&format!("{new},{old}")).unwrap();
        assert_eq!(after.current_key_id(), "2026b");
        assert_eq!(after.open("m1", &sealed).unwrap(), "DE89370400440532013000");
        assert_eq!(after.seal("m1", "x1234").unwrap().key_id, "2026b");
        let without = BankAccountKeys::parse(&new).unwrap();
        assert!(matches!(
            without.open("m1", &sealed),
            Err(SealError::UnknownKey(id)) if id == "2026a"
        ));
    }

    #[test]
    fn bad_key_settings_are_refused() {
        for text in [
            "",
            "k1",
            "k1:not-base64!",
            "k1:AAAA",
            "bad id:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ] {
            assert!(BankAccountKeys::parse(text).is_err(), "{text}");
        }
        let k = BankAccountKeys::generate_text("k1");
        assert!(BankAccountKeys::parse(&format!("{k},{k}")).is_err());
        assert!(!format!("{:?}", BankAccountKeys::parse(&k).unwrap()).contains(&k[3..]));
    }
}
