//! Click tokens: the server's signed statement that it presented this exact
//! message to this texter for this phone at this time. A click must bring
//! one back; the signature proves the server — not a script — chose what was
//! sent, and its id makes each presentation good for one message.
//!
//! Format: `base64url(json) "." base64url(HMAC-SHA256(json))`. The body
//! travels inside, so a click needs no second lookup of the contact.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use ring::hmac;
use serde::{Deserialize, Serialize};
use textbank_domain::message::body_hash;
use textbank_domain::phone::PhoneNumber;
use textbank_domain::timezone::ContactZone;
use textbank_domain::{CampaignId, ListId, MemberId, OrgId};
use uuid::Uuid;

/// Longest token accepted; a real one is well under 2 KB (a 1,600-character
/// body is the most a script can render to).
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClickToken {
    pub token_id: Uuid,
    pub org_id: OrgId,
    pub campaign_id: CampaignId,
    pub texter_id: MemberId,
    pub phone: PhoneNumber,
    pub list_id: Option<ListId>,
    pub body: String,
    pub body_sha256: String,
    pub script_version: u32,
    pub zone: ContactZone,
    pub presented_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the click token is malformed")]
    Malformed,
    #[error("the click token's signature does not verify")]
    BadSignature,
    #[error("the click token's body does not match its hash")]
    BodyMismatch,
}

impl ClickToken {
    pub fn sign(&self, key: &hmac::Key) -> String {
        // Serializing a struct of strings, numbers and uuids cannot fail.
        let json = serde_json::to_vec(self).unwrap_or_default();
        let payload = URL_SAFE_NO_PAD.encode(json);
        let tag = hmac::sign(key, payload.as_bytes());
        format!("{payload}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// Checks the signature (in constant time) before reading anything.
    pub fn verify(token: &str, key: &hmac::Key) -> Result<ClickToken, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let (payload, tag) = token.split_once('.').ok_or(TokenError::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| TokenError::Malformed)?;
        hmac::verify(key, payload.as_bytes(), &tag).map_err(|_| TokenError::BadSignature)?;
        let json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenError::Malformed)?;
        let token: ClickToken = serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
        if body_hash(&token.body) != token.body_sha256 {
            return Err(TokenError::BodyMismatch);
        }
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::ServerKey;
    use textbank_domain::phone::Region;

    fn token() -> ClickToken {
        let now = Utc::now();
        ClickToken {
            token_id: Uuid::now_v7(),
            org_id: OrgId::new(),
            campaign_id: CampaignId::new(),
            texter_id: MemberId::new(),
            phone: PhoneNumber::parse("5552010001", Region::US).unwrap(),
            list_id: Some(ListId::new()),
            body: "Hi Ana, it's Sam. Reply STOP to opt out".into(),
            body_sha256: body_hash("Hi Ana, it's Sam. Reply STOP to opt out"),
            script_version: 1,
            zone: ContactZone::UNKNOWN,
            presented_at: now,
            expires_at: now + chrono::Duration::minutes(10),
        }
    }

    #[test]
    fn a_signed_token_verifies_and_round_trips() {
        let key = ServerKey::generate().click_token_key();
        let token = token();
        assert_eq!(ClickToken::verify(&token.sign(&key), &key), Ok(token));
    }

    #[test]
    fn a_tampered_or_foreign_token_is_refused() {
        let key = ServerKey::generate().click_token_key();
        let signed = token().sign(&key);
        let other_key = ServerKey::generate().click_token_key();
        assert_eq!(
            ClickToken::verify(&signed, &other_key),
            Err(TokenError::BadSignature)
        );
        // Swap the payload for another token's: the signature no longer fits.
        let (_, tag) = signed.split_once('.').unwrap();
        let mut forged = token();
        forged.body = "Vote for the other side".into();
        forged.body_sha256 = body_hash(&forged.body);
        let (payload, _) = forged
            .sign(&other_key)
            .split_once('.')
            .map(|(p, t)| (p.to_owned(), t.to_owned()))
            .unwrap();
        assert_eq!(
            ClickToken::verify(&format!("{payload}.{tag}"), &key),
            Err(TokenError::BadSignature)
        );
        for garbage in ["", "abc", "a.b", "..", &"x".repeat(MAX_TOKEN_LEN + 1)] {
            assert!(ClickToken::verify(garbage, &key).is_err(), "{garbage:?}");
        }
    }

    #[test]
    fn a_body_that_does_not_match_its_hash_is_refused() {
        let key = ServerKey::generate().click_token_key();
        let mut token = token();
        token.body.push('!');
        assert_eq!(
            ClickToken::verify(&token.sign(&key), &key),
            Err(TokenError::BodyMismatch)
        );
    }
}
