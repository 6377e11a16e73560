//! Who is calling: the organization, role and (optionally) member an API key
//! is bound to, plus where the request came from. The org always comes from
//! here, never from a request body.

use textbank_domain::{Actor, ApiKeyId, EventMetadata, MemberId, OrgId, Permission, Role, allows};

use crate::error::AppError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub org_id: OrgId,
    pub key_id: ApiKeyId,
    pub role: Role,
    pub member_id: Option<MemberId>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl Caller {
    /// Ok if the caller's role has the permission, else `Forbidden`.
    pub fn require(&self, permission: Permission) -> Result<(), AppError> {
        if allows(self.role, permission) {
            Ok(())
        } else {
            Err(AppError::forbidden(self.role, permission))
        }
    }

    /// Whose live streams this caller's count against: its member's, or an
    /// unbound key's own.
    pub fn stream_holder(&self) -> uuid::Uuid {
        self.member_id
            .map_or_else(|| self.key_id.into(), uuid::Uuid::from)
    }

    /// Metadata for the events this caller's request causes.
    pub fn metadata(&self) -> EventMetadata {
        EventMetadata {
            ip: self.ip.clone(),
            user_agent: self.user_agent.clone(),
            ..EventMetadata::new(
                Some(self.org_id),
                Actor::ApiKey {
                    key_id: self.key_id,
                    member_id: self.member_id,
                },
            )
        }
    }
}
