//! The organization aggregate (`org-{id}` stream): the org itself, its
//! members and their roles, and its API keys (hashes only). It decides who may
//! be added or granted what.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::DomainEvent;
use crate::ids::{ApiKeyId, MemberId, OrgId};
use crate::role::Role;
use crate::stream::StreamId;

pub const MAX_NAME_LEN: usize = 200;
pub const MAX_EMAIL_LEN: usize = 254;
pub const MAX_LABEL_LEN: usize = 100;

pub fn stream_id(org: OrgId) -> StreamId {
    StreamId::of("org", &[&org])
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", content = "data")]
pub enum OrgEvent {
    OrgCreated {
        org_id: OrgId,
        name: String,
    },
    MemberAdded {
        member_id: MemberId,
        name: String,
        email: String,
        role: Role,
    },
    /// `key_hash` is the hex SHA-256 of the key; the key itself is shown once
    /// to its creator and stored nowhere.
    ApiKeyIssued {
        key_id: ApiKeyId,
        key_hash: String,
        role: Role,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        member_id: Option<MemberId>,
        label: String,
        /// Who minted it: the key (or web session) and member of the
        /// request; both absent for keys made at the command line and for
        /// keys issued before this was recorded.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        issued_by_key: Option<ApiKeyId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        issued_by_member: Option<MemberId>,
    },
    ApiKeyRevoked {
        key_id: ApiKeyId,
    },
    /// The org's carrier settings changed. The credentials are sealed
    /// outside the log and never part of this event.
    CarrierConfigured {
        carrier: String,
        sending_numbers: Vec<String>,
    },
    /// The org's carrier settings changed (written instead of
    /// `CarrierConfigured` since it says more): where the carrier API is
    /// called and which sealed credentials were replaced, by name only. Who
    /// changed them is the event's actor.
    CarrierSettingsChanged {
        carrier: String,
        #[serde(default)]
        api_base: Option<String>,
        sending_numbers: Vec<String>,
        /// e.g. `["auth_token"]`; empty when the stored secret was kept.
        secrets_replaced: Vec<String>,
    },
    /// The org's carrier settings and sealed credentials were removed: from
    /// now on nothing can be sent until a carrier is configured again.
    CarrierRemoved {
        carrier: String,
        sending_numbers: Vec<String>,
    },
    /// An outbound webhook subscription was made. `url_origin` is the
    /// receiver's `scheme://host[:port]` only: a path or query may hold the
    /// receiver's own token. The signing secret is sealed outside the log.
    WebhookSubscribed {
        webhook_id: uuid::Uuid,
        url_origin: String,
        event_types: Vec<String>,
        description: String,
        enabled: bool,
    },
    /// A subscription's settings changed (by the actor, or by the system
    /// when its retry window ran out: `failing`).
    WebhookChanged {
        webhook_id: uuid::Uuid,
        url_origin: String,
        event_types: Vec<String>,
        description: String,
        enabled: bool,
        #[serde(default)]
        failing: bool,
    },
    /// A subscription's signing secret was replaced (never recorded).
    WebhookSecretRotated {
        webhook_id: uuid::Uuid,
    },
    WebhookRemoved {
        webhook_id: uuid::Uuid,
    },
    /// A member who already has a password was sent a link that sets a new
    /// one (a password reset); accepting it ends their sessions.
    PasswordResetIssued {
        member_id: MemberId,
    },
    /// A conversation tag the org's texters and staff may apply; applying
    /// one that `escalates` sends the conversation to staff.
    TagDefined {
        tag_id: uuid::Uuid,
        name: String,
        description: String,
        escalates: bool,
    },
    TagChanged {
        tag_id: uuid::Uuid,
        name: String,
        description: String,
        escalates: bool,
    },
    /// The tag can no longer be applied; conversations that have it keep it
    /// in their history.
    TagDeleted {
        tag_id: uuid::Uuid,
    },
}

impl DomainEvent for OrgEvent {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub email: String,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyState {
    pub role: Role,
    pub member_id: Option<MemberId>,
    pub revoked: bool,
}

/// What the org's events say, folded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrgState {
    pub org_id: Option<OrgId>,
    pub name: String,
    pub members: BTreeMap<MemberId, Member>,
    pub keys: BTreeMap<ApiKeyId, KeyState>,
    /// The conversation tags that may be applied.
    pub tags: BTreeMap<uuid::Uuid, Tag>,
    /// Tags deleted: deleting one again changes nothing.
    pub deleted_tags: std::collections::BTreeSet<uuid::Uuid>,
}

/// A conversation tag as the org defines it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Tag {
    pub tag_id: uuid::Uuid,
    pub name: String,
    pub description: String,
    pub escalates: bool,
}

pub fn evolve(mut state: OrgState, event: &OrgEvent) -> OrgState {
    match event {
        OrgEvent::OrgCreated { org_id, name } => {
            state.org_id = Some(*org_id);
            state.name = name.clone();
        }
        OrgEvent::MemberAdded {
            member_id,
            name,
            email,
            role,
        } => {
            state.members.insert(
                *member_id,
                Member {
                    name: name.clone(),
                    email: email.clone(),
                    role: *role,
                },
            );
        }
        OrgEvent::ApiKeyIssued {
            key_id,
            role,
            member_id,
            ..
        } => {
            state.keys.insert(
                *key_id,
                KeyState {
                    role: *role,
                    member_id: *member_id,
                    revoked: false,
                },
            );
        }
        OrgEvent::ApiKeyRevoked { key_id } => {
            if let Some(key) = state.keys.get_mut(key_id) {
                key.revoked = true;
            }
        }
        OrgEvent::TagDefined {
            tag_id,
            name,
            description,
            escalates,
        }
        | OrgEvent::TagChanged {
            tag_id,
            name,
            description,
            escalates,
        } => {
            state.tags.insert(
                *tag_id,
                Tag {
                    tag_id: *tag_id,
                    name: name.clone(),
                    description: description.clone(),
                    escalates: *escalates,
                },
            );
        }
        OrgEvent::TagDeleted { tag_id } => {
            state.tags.remove(tag_id);
            state.deleted_tags.insert(*tag_id);
        }
        OrgEvent::CarrierConfigured { .. }
        | OrgEvent::CarrierSettingsChanged { .. }
        | OrgEvent::CarrierRemoved { .. }
        | OrgEvent::WebhookSubscribed { .. }
        | OrgEvent::WebhookChanged { .. }
        | OrgEvent::WebhookSecretRotated { .. }
        | OrgEvent::WebhookRemoved { .. }
        | OrgEvent::PasswordResetIssued { .. } => {}
    }
    state
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrgCommand {
    CreateOrg {
        org_id: OrgId,
        name: String,
    },
    AddMember {
        by: Role,
        member_id: MemberId,
        name: String,
        email: String,
        role: Role,
    },
    IssueApiKey {
        by: Role,
        /// The issuing request's key (or session) and member.
        by_key: Option<ApiKeyId>,
        by_member: Option<MemberId>,
        key_id: ApiKeyId,
        key_hash: String,
        role: Role,
        member_id: Option<MemberId>,
        label: String,
    },
    RevokeApiKey {
        by: Role,
        key_id: ApiKeyId,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrgError {
    #[error("the organization already exists")]
    AlreadyExists,
    #[error("no such organization")]
    NoSuchOrg,
    #[error("{field} {problem}")]
    Invalid {
        field: &'static str,
        problem: String,
    },
    #[error("a member with email {0} already exists")]
    EmailTaken(String),
    #[error("no such tag")]
    NoSuchTag,
    #[error("a tag named {0:?} already exists")]
    TagNameTaken(String),
    #[error("your role may not grant the role {0}")]
    RoleNotGrantable(Role),
    #[error("no such member")]
    NoSuchMember,
    #[error("a key bound to a member must have that member's role ({0})")]
    RoleDiffersFromMember(Role),
    #[error("no such API key")]
    NoSuchKey,
    /// A key that acts as a member is minted by that member or by an
    /// owner or admin: a manager could otherwise send as any texter.
    #[error(
        "only the member themself or an owner or admin may issue a key bound to a member; the {0} role may not"
    )]
    MemberKeyNotYours(Role),
}

/// Decides a command against the org's state: the events to append, or why not.
pub fn decide(state: &OrgState, command: OrgCommand) -> Result<Vec<OrgEvent>, OrgError> {
    if let OrgCommand::CreateOrg { org_id, name } = command {
        if state.org_id.is_some() {
            return Err(OrgError::AlreadyExists);
        }
        let name = clean_text("name", &name, MAX_NAME_LEN)?;
        return Ok(vec![OrgEvent::OrgCreated { org_id, name }]);
    }
    if state.org_id.is_none() {
        return Err(OrgError::NoSuchOrg);
    }
    match command {
        OrgCommand::CreateOrg { .. } => unreachable!("handled above"),
        OrgCommand::AddMember {
            by,
            member_id,
            name,
            email,
            role,
        } => {
            if !by.may_grant(role) {
                return Err(OrgError::RoleNotGrantable(role));
            }
            if !role.is_for_people() {
                return Err(OrgError::Invalid {
                    field: "role",
                    problem: format!("{role} is a role for API keys, not for members"),
                });
            }
            let name = clean_text("name", &name, MAX_NAME_LEN)?;
            let email = normalize_email(&email)?;
            if state.members.values().any(|member| member.email == email) {
                return Err(OrgError::EmailTaken(email));
            }
            Ok(vec![OrgEvent::MemberAdded {
                member_id,
                name,
                email,
                role,
            }])
        }
        OrgCommand::IssueApiKey {
            by,
            by_key,
            by_member,
            key_id,
            key_hash,
            role,
            member_id,
            label,
        } => {
            if !by.may_grant(role) {
                return Err(OrgError::RoleNotGrantable(role));
            }
            if let Some(member_id) = member_id {
                if by_member != Some(member_id) && !by.may_act_for_others() {
                    return Err(OrgError::MemberKeyNotYours(by));
                }
                let member = state
                    .members
                    .get(&member_id)
                    .ok_or(OrgError::NoSuchMember)?;
                if member.role != role {
                    return Err(OrgError::RoleDiffersFromMember(member.role));
                }
            }
            let label = if label.trim().is_empty() {
                String::new()
            } else {
                clean_text("label", &label, MAX_LABEL_LEN)?
            };
            Ok(vec![OrgEvent::ApiKeyIssued {
                key_id,
                key_hash,
                role,
                member_id,
                label,
                issued_by_key: by_key,
                issued_by_member: by_member,
            }])
        }
        OrgCommand::RevokeApiKey { by, key_id } => match state.keys.get(&key_id) {
            None => Err(OrgError::NoSuchKey),
            Some(key) if !by.may_grant(key.role) => Err(OrgError::RoleNotGrantable(key.role)),
            // Revoking twice changes nothing and is not an error.
            Some(key) if key.revoked => Ok(vec![]),
            Some(_) => Ok(vec![OrgEvent::ApiKeyRevoked { key_id }]),
        },
    }
}

/// Longest tag name and description.
pub const MAX_TAG_NAME: usize = 50;
pub const MAX_TAG_DESCRIPTION: usize = 500;

/// Defines a tag (`tag_id` not yet known) or changes one; names are unique
/// in the org, whatever their case.
pub fn decide_tag(state: &OrgState, tag: Tag) -> Result<Vec<OrgEvent>, OrgError> {
    if state.org_id.is_none() {
        return Err(OrgError::NoSuchOrg);
    }
    let name = clean_text("name", &tag.name, MAX_TAG_NAME)?;
    let description = if tag.description.trim().is_empty() {
        String::new()
    } else {
        clean_text("description", &tag.description, MAX_TAG_DESCRIPTION)?
    };
    let taken = state.tags.values().any(|other| {
        other.tag_id != tag.tag_id && other.name.to_lowercase() == name.to_lowercase()
    });
    if taken {
        return Err(OrgError::TagNameTaken(name));
    }
    let (tag_id, escalates) = (tag.tag_id, tag.escalates);
    Ok(match state.tags.get(&tag_id) {
        None => vec![OrgEvent::TagDefined {
            tag_id,
            name,
            description,
            escalates,
        }],
        Some(old)
            if old.name == name && old.description == description && old.escalates == escalates =>
        {
            Vec::new()
        }
        Some(_) => vec![OrgEvent::TagChanged {
            tag_id,
            name,
            description,
            escalates,
        }],
    })
}

/// Deletes a tag; deleting it again changes nothing.
pub fn decide_delete_tag(state: &OrgState, tag_id: uuid::Uuid) -> Result<Vec<OrgEvent>, OrgError> {
    if state.deleted_tags.contains(&tag_id) {
        return Ok(Vec::new());
    }
    if !state.tags.contains_key(&tag_id) {
        return Err(OrgError::NoSuchTag);
    }
    Ok(vec![OrgEvent::TagDeleted { tag_id }])
}

/// Trimmed, non-empty, bounded, without control characters.
fn clean_text(field: &'static str, raw: &str, max: usize) -> Result<String, OrgError> {
    let text = raw.trim();
    let invalid = |problem: &str| OrgError::Invalid {
        field,
        problem: problem.to_owned(),
    };
    if text.is_empty() {
        return Err(invalid("must not be empty"));
    }
    if text.chars().count() > max {
        return Err(invalid(&format!("must be at most {max} characters")));
    }
    if text.chars().any(char::is_control) {
        return Err(invalid("must not contain control characters"));
    }
    Ok(text.to_owned())
}

/// Lower-cased, trimmed, and shaped like `local@domain.tld`.
fn normalize_email(raw: &str) -> Result<String, OrgError> {
    let email = raw.trim().to_lowercase();
    let invalid = || OrgError::Invalid {
        field: "email",
        problem: format!("{:?} is not an email address", raw.trim()),
    };
    if email.len() > MAX_EMAIL_LEN || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid());
    }
    let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
    let domain_ok = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !domain.contains("..");
    if local.is_empty() || !domain_ok {
        return Err(invalid());
    }
    Ok(email)
}

#[cfg(test)]
mod tag_tests {
    use super::*;

    #[test]
    fn tags_are_defined_changed_and_deleted_with_unique_names() {
        let org = evolve(
            OrgState::default(),
            &OrgEvent::OrgCreated {
                org_id: OrgId::new(),
                name: "Org".into(),
            },
        );
        let tag = Tag {
            tag_id: uuid::Uuid::now_v7(),
            name: " Press ".into(),
            description: String::new(),
            escalates: true,
        };
        let defined = decide_tag(&org, tag.clone()).unwrap();
        assert!(matches!(&defined[..], [OrgEvent::TagDefined { name, .. }] if name == "Press"));
        let org = defined.iter().fold(org, evolve);
        let clash = Tag {
            tag_id: uuid::Uuid::now_v7(),
            name: "press".into(),
            ..tag.clone()
        };
        assert_eq!(
            decide_tag(&org, clash),
            Err(OrgError::TagNameTaken("press".into()))
        );
        let same = Tag {
            name: "Press".into(),
            ..tag.clone()
        };
        assert_eq!(decide_tag(&org, same.clone()), Ok(vec![]));
        let changed = decide_tag(
            &org,
            Tag {
                escalates: false,
                ..same
            },
        )
        .unwrap();
        assert!(matches!(
            &changed[..],
            [OrgEvent::TagChanged {
                escalates: false,
                ..
            }]
        ));
        let deleted = decide_delete_tag(&org, tag.tag_id).unwrap();
        let org = deleted.iter().fold(org, evolve);
        assert!(org.tags.is_empty());
        assert_eq!(decide_delete_tag(&org, tag.tag_id), Ok(vec![]));
        assert_eq!(
            decide_delete_tag(&org, uuid::Uuid::now_v7()),
            Err(OrgError::NoSuchTag)
        );
        assert!(
            decide_tag(
                &org,
                Tag {
                    name: " ".into(),
                    ..tag
                }
            )
            .is_err()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// given(events).when(command) → the events or the error.
    fn given(events: &[OrgEvent]) -> OrgState {
        events.iter().fold(OrgState::default(), evolve)
    }

    fn created() -> Vec<OrgEvent> {
        vec![OrgEvent::OrgCreated {
            org_id: OrgId::new(),
            name: "Rivera for Council".into(),
        }]
    }

    fn add(by: Role, email: &str, role: Role) -> OrgCommand {
        OrgCommand::AddMember {
            by,
            member_id: MemberId::new(),
            name: "Sam Lee".into(),
            email: email.into(),
            role,
        }
    }

    #[test]
    fn an_org_is_created_once() {
        let org_id = OrgId::new();
        let events = decide(
            &OrgState::default(),
            OrgCommand::CreateOrg {
                org_id,
                name: "  Rivera  ".into(),
            },
        )
        .unwrap();
        assert_eq!(
            events,
            vec![OrgEvent::OrgCreated {
                org_id,
                name: "Rivera".into()
            }]
        );
        let again = decide(
            &given(&events),
            OrgCommand::CreateOrg {
                org_id,
                name: "x".into(),
            },
        );
        assert_eq!(again, Err(OrgError::AlreadyExists));
    }

    #[test]
    fn members_get_normalized_emails_that_must_be_unique() {
        let state = given(&created());
        let events = decide(&state, add(Role::Admin, " Sam@Example.ORG ", Role::Texter)).unwrap();
        let OrgEvent::MemberAdded { email, .. } = &events[0] else {
            panic!()
        };
        assert_eq!(email, "sam@example.org");
        let mut history = created();
        history.extend(events);
        let duplicate = decide(
            &given(&history),
            add(Role::Admin, "sam@example.org", Role::Manager),
        );
        assert_eq!(
            duplicate,
            Err(OrgError::EmailTaken("sam@example.org".into()))
        );
    }

    #[test]
    fn bad_names_and_emails_are_refused_with_the_field_named() {
        let state = given(&created());
        for email in [
            "",
            "sam",
            "sam@",
            "@example.org",
            "sam@example",
            "sam @example.org",
            "sam@example..org",
        ] {
            let err = decide(&state, add(Role::Owner, email, Role::Texter)).unwrap_err();
            assert!(
                matches!(err, OrgError::Invalid { field: "email", .. }),
                "{email:?}: {err}"
            );
        }
        let blank = OrgCommand::AddMember {
            by: Role::Owner,
            member_id: MemberId::new(),
            name: "   ".into(),
            email: "a@b.org".into(),
            role: Role::Texter,
        };
        assert!(matches!(
            decide(&state, blank),
            Err(OrgError::Invalid { field: "name", .. })
        ));
    }

    #[test]
    fn admins_cannot_add_owners_and_texters_cannot_add_anyone() {
        let state = given(&created());
        assert_eq!(
            decide(&state, add(Role::Admin, "a@b.org", Role::Owner)),
            Err(OrgError::RoleNotGrantable(Role::Owner))
        );
        assert_eq!(
            decide(&state, add(Role::Texter, "a@b.org", Role::Texter)),
            Err(OrgError::RoleNotGrantable(Role::Texter))
        );
    }

    #[test]
    fn a_member_bound_key_carries_the_members_role() {
        let member_id = MemberId::new();
        let mut history = created();
        history.push(OrgEvent::MemberAdded {
            member_id,
            name: "Sam".into(),
            email: "sam@example.org".into(),
            role: Role::Texter,
        });
        let state = given(&history);
        let issue = |role| OrgCommand::IssueApiKey {
            by: Role::Admin,
            by_key: None,
            by_member: None,
            key_id: ApiKeyId::new(),
            key_hash: "ab".repeat(32),
            role,
            member_id: Some(member_id),
            label: "phone".into(),
        };
        assert!(decide(&state, issue(Role::Texter)).is_ok());
        assert_eq!(
            decide(&state, issue(Role::Manager)),
            Err(OrgError::RoleDiffersFromMember(Role::Texter))
        );
        let stranger = OrgCommand::IssueApiKey {
            by: Role::Admin,
            by_key: None,
            by_member: None,
            key_id: ApiKeyId::new(),
            key_hash: "ab".repeat(32),
            role: Role::Texter,
            member_id: Some(MemberId::new()),
            label: String::new(),
        };
        assert_eq!(decide(&state, stranger), Err(OrgError::NoSuchMember));
    }

    #[test]
    fn a_manager_cannot_mint_a_key_that_acts_as_another_member() {
        let (texter, manager) = (MemberId::new(), MemberId::new());
        let mut history = created();
        for (member_id, email, role) in [
            (texter, "t@b.org", Role::Texter),
            (manager, "m@b.org", Role::Manager),
        ] {
            history.push(OrgEvent::MemberAdded {
                member_id,
                name: "Sam".into(),
                email: email.into(),
                role,
            });
        }
        let state = given(&history);
        let by_key = ApiKeyId::new();
        let issue = |by, by_member, member_id, role| OrgCommand::IssueApiKey {
            by,
            by_key: Some(by_key),
            by_member,
            key_id: ApiKeyId::new(),
            key_hash: "ab".repeat(32),
            role,
            member_id,
            label: String::new(),
        };
        assert_eq!(
            decide(
                &state,
                issue(Role::Manager, Some(manager), Some(texter), Role::Texter)
            ),
            Err(OrgError::MemberKeyNotYours(Role::Manager))
        );
        // Unbound texter keys stay a manager's to issue, and one's own key too.
        assert!(
            decide(
                &state,
                issue(Role::Manager, Some(manager), None, Role::Texter)
            )
            .is_ok()
        );
        let own = decide(
            &state,
            issue(Role::Manager, Some(manager), Some(manager), Role::Manager),
        );
        assert!(own.is_err(), "managers grant texter keys only");
        let events = decide(&state, issue(Role::Admin, None, Some(texter), Role::Texter)).unwrap();
        let OrgEvent::ApiKeyIssued {
            issued_by_key,
            issued_by_member,
            ..
        } = &events[0]
        else {
            panic!()
        };
        assert_eq!((*issued_by_key, *issued_by_member), (Some(by_key), None));
    }

    #[test]
    fn keys_issued_before_issuers_were_recorded_still_read() {
        let old = serde_json::json!({
            "key_id": ApiKeyId::new(), "key_hash": "ab", "role": "texter", "label": ""
        });
        let event = OrgEvent::from_parts("ApiKeyIssued", &old).unwrap().unwrap();
        assert!(matches!(
            event,
            OrgEvent::ApiKeyIssued {
                issued_by_key: None,
                issued_by_member: None,
                ..
            }
        ));
    }

    #[test]
    fn revoking_is_idempotent_and_unknown_keys_are_refused() {
        let key_id = ApiKeyId::new();
        let mut history = created();
        history.push(OrgEvent::ApiKeyIssued {
            key_id,
            key_hash: "cd".repeat(32),
            role: Role::Manager,
            member_id: None,
            label: String::new(),
            issued_by_key: None,
            issued_by_member: None,
        });
        let events = decide(
            &given(&history),
            OrgCommand::RevokeApiKey {
                by: Role::Owner,
                key_id,
            },
        )
        .unwrap();
        assert_eq!(events, vec![OrgEvent::ApiKeyRevoked { key_id }]);
        history.extend(events);
        assert_eq!(
            decide(
                &given(&history),
                OrgCommand::RevokeApiKey {
                    by: Role::Owner,
                    key_id
                }
            ),
            Ok(vec![])
        );
        assert_eq!(
            decide(
                &given(&history),
                OrgCommand::RevokeApiKey {
                    by: Role::Owner,
                    key_id: ApiKeyId::new()
                }
            ),
            Err(OrgError::NoSuchKey)
        );
    }

    #[test]
    fn commands_on_a_missing_org_are_refused() {
        assert_eq!(
            decide(
                &OrgState::default(),
                add(Role::Owner, "a@b.org", Role::Texter)
            ),
            Err(OrgError::NoSuchOrg)
        );
    }

    #[test]
    fn managers_add_texters_and_revoke_only_texter_keys() {
        let state = given(&created());
        assert!(decide(&state, add(Role::Manager, "t@b.org", Role::Texter)).is_ok());
        assert_eq!(
            decide(&state, add(Role::Manager, "m@b.org", Role::Manager)),
            Err(OrgError::RoleNotGrantable(Role::Manager))
        );
        let admin_key = ApiKeyId::new();
        let mut history = created();
        history.push(OrgEvent::ApiKeyIssued {
            key_id: admin_key,
            key_hash: "ef".repeat(32),
            role: Role::Admin,
            member_id: None,
            label: String::new(),
            issued_by_key: None,
            issued_by_member: None,
        });
        let revoke = OrgCommand::RevokeApiKey {
            by: Role::Manager,
            key_id: admin_key,
        };
        assert_eq!(
            decide(&given(&history), revoke),
            Err(OrgError::RoleNotGrantable(Role::Admin))
        );
    }
}
