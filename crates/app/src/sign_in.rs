//! People signing in to the web app: passwords (argon2id), invite links that
//! set them, browser sessions with their CSRF tokens, and the login rate
//! limit. Credentials and sessions are mutable secrets, so they live in their
//! own tables, never in the event log (ADR 0016). A session authenticates as
//! its member, with the member's role: the browser can do exactly what an
//! API key bound to that member can.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use chrono::{DateTime, Duration, Utc};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;
use textbank_domain::org::{self, OrgEvent};
use textbank_domain::{ApiKeyId, MemberId, OrgId, Permission, Role};
use textbank_projections::directory;
use textbank_store::invites::{self, NewInvite};
use textbank_store::passwords::{self, StoredPassword};
use textbank_store::sessions::{self, NewSession};
use uuid::Uuid;

use crate::caller::Caller;
use crate::error::AppError;
use crate::{App, keys};

/// How long a browser session lasts from sign-in.
pub const SESSION_TTL_HOURS: i64 = 12;
/// How long an invite link stays usable.
pub const INVITE_TTL_HOURS: i64 = 72;
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Bounds the work one sign-in attempt can cause.
pub const MAX_PASSWORD_BYTES: usize = 256;

const SESSION_PREFIX: &str = "tbs_";
const INVITE_PREFIX: &str = "tbi_";

/// A new session: the secret goes into an HttpOnly cookie and nowhere else.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SignedIn {
    #[serde(skip)]
    pub session_secret: String,
    pub session_id: Uuid,
    pub member_id: MemberId,
    pub name: String,
    pub email: String,
    pub org_id: OrgId,
    pub org_name: String,
    pub role: Role,
    pub expires_at: DateTime<Utc>,
    pub csrf_token: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Invite {
    pub member_id: MemberId,
    pub invite_token: String,
    pub invite_url: String,
    pub expires_at: DateTime<Utc>,
    /// The member already has a password: this link replaces it and ends
    /// their sessions.
    pub password_reset: bool,
}

/// What the set-password page shows about an invite.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InviteView {
    pub name: String,
    pub email: String,
    pub org_name: String,
    pub role: Role,
    pub expires_at: DateTime<Utc>,
    /// Setting the password replaces the member's current one and signs
    /// them out everywhere.
    pub password_reset: bool,
}

/// The signed-in member behind a session, for rendering pages.
#[derive(Debug, Clone)]
pub struct SessionMember {
    pub caller: Caller,
    pub name: String,
    pub org_name: String,
    pub csrf_token: String,
}

impl App {
    /// Checks an email and password; on success opens a session.
    pub async fn sign_in(
        &self,
        email: &str,
        password: &str,
        ip: Option<String>,
        user_agent: Option<String>,
    ) -> Result<SignedIn, AppError> {
        let email = email.trim().to_lowercase();
        if let Some(wait) = self.login_limiter.retry_after(&email, ip.as_deref()) {
            return Err(AppError::RateLimited {
                message: "too many failed sign-ins; try again later".into(),
                retry_after_secs: wait.as_secs(),
            });
        }
        let stored = self.password_of(&email).await?;
        let candidate = password.to_owned();
        let hash = stored.as_ref().map(|(_, _, hash)| hash.clone());
        // Verify against a real hash even for unknown emails, so the answer
        // takes as long either way and does not reveal who has an account.
        let verified = tokio::task::spawn_blocking(move || match hash {
            Some(hash) => verify_password(&candidate, &hash),
            None => {
                let _ = verify_password(&candidate, dummy_hash());
                false
            }
        })
        .await
        .map_err(|err| AppError::Io(std::io::Error::other(err)))?;
        let Some((member_id, org_id, _)) = stored.filter(|_| verified) else {
            self.login_limiter.record_failure(&email, ip.as_deref());
            return Err(AppError::Unauthenticated(
                "the email or password is not right",
            ));
        };
        self.login_limiter.record_success(&email);
        self.open_session(org_id, member_id, ip, user_agent).await
    }

    /// The caller a session cookie authenticates.
    pub async fn authenticate_session(
        &self,
        secret: &str,
        ip: Option<String>,
        user_agent: Option<String>,
    ) -> Result<Caller, AppError> {
        Ok(self.session_member(secret, ip, user_agent).await?.caller)
    }

    /// The session's member with what a page shows about them.
    pub async fn session_member(
        &self,
        secret: &str,
        ip: Option<String>,
        user_agent: Option<String>,
    ) -> Result<SessionMember, AppError> {
        if !keys::well_formed(secret, SESSION_PREFIX) {
            return Err(AppError::Unauthenticated("the session is malformed"));
        }
        let session = sessions::member_of(self.database(), &keys::hash(secret))
            .await?
            .filter(|session| session.expires_at > self.clock().now())
            .ok_or(AppError::Unauthenticated(
                "the session has expired or was signed out",
            ))?;
        Ok(SessionMember {
            caller: Caller {
                org_id: session.org_id,
                key_id: ApiKeyId::from_uuid(session.session_id),
                role: session.role,
                member_id: Some(session.member_id),
                ip,
                user_agent,
            },
            name: session.name,
            org_name: session.org_name,
            csrf_token: self.csrf_token(secret),
        })
    }

    /// Ends a session; its cookie stops working before this returns.
    pub async fn sign_out(&self, secret: &str) -> Result<(), AppError> {
        let now = self.clock().now();
        let mut tx = self.events().begin().await?;
        sessions::end(&mut tx, &keys::hash(secret), now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The token a session's state-changing requests must carry in
    /// `X-CSRF-Token`: an HMAC of the session secret, so it needs no storage
    /// and a page from another site cannot know it.
    pub fn csrf_token(&self, session_secret: &str) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.server_key().csrf_key());
        hex::encode(&hmac::sign(&key, session_secret.as_bytes()).as_ref()[..16])
    }

    /// Constant-time check of a presented CSRF token.
    pub fn csrf_matches(&self, session_secret: &str, presented: &str) -> bool {
        let expected = self.csrf_token(session_secret);
        expected.len() == presented.len()
            && expected
                .bytes()
                .zip(presented.bytes())
                .fold(0u8, |diff, (a, b)| diff | (a ^ b))
                == 0
    }

    /// An invite link for a member to set their password. Only those who may
    /// manage the member's role may invite them. For a member who already
    /// has a password it is a password reset, which only an owner or admin
    /// (or the member) may start: a manager who could would take over a
    /// texter's account. A reset is recorded on the org's log.
    pub async fn create_invite(
        &self,
        caller: &Caller,
        member_id: MemberId,
    ) -> Result<Invite, AppError> {
        // A member with a password may reset their own; a first invite is
        // always someone else's doing.
        let own = caller.member_id == Some(member_id);
        let own_reset = own && self.has_password(member_id).await?;
        if !own_reset {
            caller.require(Permission::ManageMembers)?;
        }
        let member = directory::member(self.database(), caller.org_id, member_id)
            .await?
            .ok_or(AppError::NotFound("member"))?;
        if !own_reset && !caller.role.may_grant(member.role) {
            return Err(AppError::Forbidden(format!(
                "the {} role may not invite a member with the {} role",
                caller.role, member.role
            )));
        }
        let password_reset = own_reset || self.has_password(member_id).await?;
        if password_reset && !own && !caller.role.may_act_for_others() {
            return Err(AppError::ForbiddenBy {
                code: "password_reset_forbidden",
                message: format!(
                    "{} already has a password: only an owner or admin (or the member) may reset it",
                    member.name
                ),
            });
        }
        let token = keys::generate_with(INVITE_PREFIX);
        let now = self.clock().now();
        let expires_at = now + Duration::hours(INVITE_TTL_HOURS);
        let mut tx = self.events().begin().await?;
        invites::insert(
            &mut tx,
            &NewInvite {
                token_hash: &keys::hash(&token),
                member_id,
                org_id: caller.org_id,
                created_by: caller.key_id,
                created_at: now,
                expires_at,
                password_reset,
            },
        )
        .await?;
        tx.commit().await?;
        if password_reset {
            // Who reset whose password is audit evidence; the link is not.
            self.append_any(
                &org::stream_id(caller.org_id),
                &[OrgEvent::PasswordResetIssued { member_id }],
                &caller.metadata(),
            )
            .await?;
            // The member listing shows the reset from the next request on.
            self.refresh_directory().await?;
        }
        let base = self.public_url().unwrap_or_default();
        Ok(Invite {
            member_id,
            invite_url: format!("{base}/invite/{token}"),
            invite_token: token,
            expires_at,
            password_reset,
        })
    }

    /// The member an unused, unexpired invite is for.
    pub async fn invite(&self, token: &str) -> Result<InviteView, AppError> {
        let (_, org_id, member_id, expires_at, password_reset) = self.open_invite(token).await?;
        let member = directory::member(self.database(), org_id, member_id)
            .await?
            .ok_or(AppError::NotFound("invite"))?;
        let org_name = directory::org_name(self.database(), org_id)
            .await?
            .unwrap_or_default();
        Ok(InviteView {
            name: member.name,
            email: member.email,
            org_name,
            role: member.role,
            expires_at,
            password_reset,
        })
    }

    /// Sets the invited member's password, uses up the invite, ends the
    /// member's other sessions and signs in.
    pub async fn accept_invite(
        &self,
        token: &str,
        password: &str,
        ip: Option<String>,
        user_agent: Option<String>,
    ) -> Result<SignedIn, AppError> {
        let (token_hash, org_id, member_id, _, _) = self.open_invite(token).await?;
        let member = directory::member(self.database(), org_id, member_id)
            .await?
            .ok_or(AppError::NotFound("invite"))?;
        let hash = hash_password(password, &member.email).await?;
        let now = self.clock().now();
        let mut tx = self.events().begin().await?;
        let used = invites::use_up(&mut tx, &token_hash, now).await?;
        if !used {
            tx.rollback().await?;
            return Err(AppError::NotFound("invite"));
        }
        store_password(&mut tx, org_id, member_id, &member.email, &hash, now).await?;
        tx.commit().await?;
        self.open_session(org_id, member_id, ip, user_agent).await
    }

    /// Sets a member's password by email (the `admin set-password` command).
    /// An email that belongs to members of several organizations needs `org`.
    pub async fn set_password(
        &self,
        email: &str,
        org: Option<OrgId>,
        password: &str,
    ) -> Result<MemberId, AppError> {
        let email = email.trim().to_lowercase();
        let candidates = directory::members_with_email(self.database(), &email).await?;
        let matching: Vec<_> = candidates
            .into_iter()
            .filter(|(_, org_id)| org.is_none_or(|org| org == *org_id))
            .collect();
        let (member_id, org_id) = match matching.as_slice() {
            [one] => *one,
            [] => return Err(AppError::NotFound("member with that email")),
            _ => {
                return Err(AppError::Invalid {
                    field: "org",
                    message:
                        "members of several organizations have that email; name the organization"
                            .into(),
                });
            }
        };
        let hash = hash_password(password, &email).await?;
        let mut tx = self.events().begin().await?;
        store_password(
            &mut tx,
            org_id,
            member_id,
            &email,
            &hash,
            self.clock().now(),
        )
        .await?;
        tx.commit().await?;
        Ok(member_id)
    }

    async fn open_invite(
        &self,
        token: &str,
    ) -> Result<(String, OrgId, MemberId, DateTime<Utc>, bool), AppError> {
        if !keys::well_formed(token, INVITE_PREFIX) {
            return Err(AppError::NotFound("invite"));
        }
        let token_hash = keys::hash(token);
        // Used, expired and unknown invites look the same.
        let invite = invites::unused(self.database(), &token_hash)
            .await?
            .filter(|invite| invite.expires_at > self.clock().now())
            .ok_or(AppError::NotFound("invite"))?;
        Ok((
            token_hash,
            invite.org_id,
            invite.member_id,
            invite.expires_at,
            invite.password_reset,
        ))
    }

    async fn has_password(&self, member_id: MemberId) -> Result<bool, AppError> {
        Ok(passwords::is_set(self.database(), member_id).await?)
    }

    /// (member, org, argon2 hash) of the password set for an email.
    async fn password_of(
        &self,
        email: &str,
    ) -> Result<Option<(MemberId, OrgId, String)>, AppError> {
        Ok(passwords::by_email(self.database(), email)
            .await?
            .map(|stored| (stored.member_id, stored.org_id, stored.password_hash)))
    }

    async fn open_session(
        &self,
        org_id: OrgId,
        member_id: MemberId,
        ip: Option<String>,
        user_agent: Option<String>,
    ) -> Result<SignedIn, AppError> {
        let member = directory::member(self.database(), org_id, member_id)
            .await?
            .ok_or(AppError::Unauthenticated("the member no longer exists"))?;
        let org_name = directory::org_name(self.database(), org_id)
            .await?
            .unwrap_or_default();
        let secret = keys::generate_with(SESSION_PREFIX);
        let session_id = Uuid::from(ApiKeyId::new());
        let now = self.clock().now();
        let expires_at = now + Duration::hours(SESSION_TTL_HOURS);
        let mut tx = self.events().begin().await?;
        sessions::insert(
            &mut tx,
            &NewSession {
                session_hash: &keys::hash(&secret),
                session_id,
                org_id,
                member_id,
                created_at: now,
                expires_at,
                ip: ip.as_deref(),
                user_agent: user_agent.as_deref(),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(SignedIn {
            csrf_token: self.csrf_token(&secret),
            session_secret: secret,
            session_id,
            member_id,
            name: member.name,
            email: member.email,
            org_id,
            org_name,
            role: member.role,
            expires_at,
        })
    }
}

async fn store_password(
    tx: &mut textbank_store::StoreTx,
    org_id: OrgId,
    member_id: MemberId,
    email: &str,
    hash: &str,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    let email = email.trim().to_lowercase();
    let holder = passwords::holder(tx, &email).await?;
    if holder.is_some_and(|holder| holder != member_id) {
        // Said without naming why: an invite for an email one chose must not
        // tell who holds an account elsewhere.
        return Err(AppError::Conflict(
            "a password cannot be set for this email; ask an administrator to add you \
             with a different email"
                .into(),
        ));
    }
    let password = StoredPassword {
        member_id,
        org_id,
        password_hash: hash.to_owned(),
    };
    passwords::upsert(tx, &password, &email, now).await?;
    // A new password signs the member out everywhere: whoever held a
    // session under the old one (or stole it) loses it.
    sessions::end_all_of(tx, member_id, now).await?;
    Ok(())
}

/// Checks the password policy, then hashes with argon2id off the runtime.
pub async fn hash_password(password: &str, email: &str) -> Result<String, AppError> {
    check_password(password, email)?;
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        SystemRandom::new()
            .fill(&mut salt)
            .map_err(|_| AppError::Io(std::io::Error::other("no randomness for a salt")))?;
        let salt = SaltString::encode_b64(&salt)
            .map_err(|err| AppError::Io(std::io::Error::other(err.to_string())))?;
        hasher()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|err| AppError::Io(std::io::Error::other(err.to_string())))
    })
    .await
    .map_err(|err| AppError::Io(std::io::Error::other(err)))?
}

fn check_password(password: &str, email: &str) -> Result<(), AppError> {
    let invalid = |message: String| AppError::Invalid {
        field: "password",
        message,
    };
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(invalid(format!(
            "the password must have at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(invalid(format!(
            "the password must have at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    if password.trim().eq_ignore_ascii_case(email.trim()) {
        return Err(invalid("the password must not be the email".into()));
    }
    Ok(())
}

/// argon2id with OWASP's recommended minimum (19 MiB, 2 passes).
fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None)
        .unwrap_or_else(|_| unreachable!("OWASP's argon2id parameters are valid"));
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn verify_password(password: &str, hash: &str) -> bool {
    password.len() <= MAX_PASSWORD_BYTES
        && PasswordHash::new(hash).is_ok_and(|parsed| {
            hasher()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
}

/// A hash of a random password, verified against when an email is unknown.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::encode_b64(b"textbank-dummy!!")
            .unwrap_or_else(|_| unreachable!("16 bytes encode"));
        hasher()
            .hash_password(keys::generate_with("x").as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .unwrap_or_default()
    })
}

/// 16 letters and digits without look-alikes (about 92 bits): typed by hand
/// from a terminal.
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .unwrap_or_else(|_| panic!("the system random number generator failed"));
    // 256 is not a multiple of 54: the bias is under 1% per character.
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passwords_hash_with_argon2id_and_verify_only_themselves() {
        let hash = hash_password("correct horse battery", "ana@example.org")
            .await
            .unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterY", &hash));
        assert!(!verify_password("correct horse battery", dummy_hash()));
    }

    #[tokio::test]
    async fn weak_passwords_are_refused_naming_the_rule() {
        for (password, rule) in [
            ("short", "at least 10"),
            (&"x".repeat(300) as &str, "at most 256"),
            ("Ana@Example.org", "not be the email"),
        ] {
            let err = hash_password(password, "ana@example.org")
                .await
                .unwrap_err();
            assert!(err.to_string().contains(rule), "{err}");
        }
    }

    #[test]
    fn secrets_are_random_and_shape_checked() {
        let (a, b) = (
            keys::generate_with(SESSION_PREFIX),
            keys::generate_with(SESSION_PREFIX),
        );
        assert_ne!(a, b);
        assert!(keys::well_formed(&a, SESSION_PREFIX));
        assert!(!keys::well_formed(&a, INVITE_PREFIX));
        assert!(!keys::well_formed("tbs_zz", SESSION_PREFIX));
    }
}
