//! Organizations, members and API keys: the bootstrap, the membership
//! commands and authentication.

use serde::Serialize;
use textbank_domain::org::{self, OrgCommand, OrgEvent, OrgState};
use textbank_domain::{Actor, ApiKeyId, EventMetadata, MemberId, OrgId, Permission, Role};
use textbank_projections::catch_up;
use textbank_projections::directory::{self, KeyView, MemberView};

use crate::caller::Caller;
use crate::command::execute;
use crate::error::AppError;
use crate::stage_times::Stage;
use crate::{App, keys};

/// The answer to `admin create-org`: the key is shown here and never again.
#[derive(Debug, Clone, Serialize)]
pub struct CreatedOrg {
    pub org_id: OrgId,
    pub owner_key: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IssuedKey {
    pub key_id: ApiKeyId,
    /// The secret, shown once.
    pub key: String,
    pub role: Role,
    pub member_id: Option<MemberId>,
    pub label: String,
    pub position: u64,
}

/// A texter as the audit and metrics pages name them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TexterName {
    pub member_id: MemberId,
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AddedMember {
    pub member_id: MemberId,
    pub position: u64,
}

impl App {
    /// Creates an organization with an owner key. The only way in: there is
    /// no unauthenticated HTTP route that creates organizations.
    pub async fn create_org(&self, name: &str) -> Result<CreatedOrg, AppError> {
        let org_id = OrgId::new();
        let owner_key = keys::generate();
        let metadata = EventMetadata::new(Some(org_id), Actor::Cli);
        let key_hash = keys::hash(&owner_key);
        execute(
            self,
            &org::stream_id(org_id),
            &metadata,
            |state: &OrgState| {
                let mut events = org::decide(
                    state,
                    OrgCommand::CreateOrg {
                        org_id,
                        name: name.to_owned(),
                    },
                )?;
                let created = events.iter().fold(state.clone(), org::evolve);
                events.extend(org::decide(
                    &created,
                    OrgCommand::IssueApiKey {
                        by: Role::Owner,
                        by_key: None,
                        by_member: None,
                        key_id: ApiKeyId::new(),
                        key_hash: key_hash.clone(),
                        role: Role::Owner,
                        member_id: None,
                        label: "owner (created with the organization)".into(),
                    },
                )?);
                Ok(events)
            },
        )
        .await?;
        self.refresh_directory().await?;
        Ok(CreatedOrg { org_id, owner_key })
    }

    /// The caller an API key authenticates, if any.
    pub async fn authenticate(
        &self,
        key: &str,
        ip: Option<String>,
        user_agent: Option<String>,
    ) -> Result<Caller, AppError> {
        let started = std::time::Instant::now();
        let caller = self.authenticate_key(key, ip, user_agent).await;
        self.stage_times().record(Stage::Auth, started.elapsed());
        caller
    }

    async fn authenticate_key(
        &self,
        key: &str,
        ip: Option<String>,
        user_agent: Option<String>,
    ) -> Result<Caller, AppError> {
        if !keys::looks_like_key(key) {
            return Err(AppError::Unauthenticated("the API key is malformed"));
        }
        let active = directory::active_key_by_hash(self.database(), &keys::hash(key))
            .await?
            .ok_or(AppError::Unauthenticated(
                "the API key is invalid or revoked",
            ))?;
        Ok(Caller {
            org_id: active.org_id,
            key_id: active.key_id,
            role: active.role,
            member_id: active.member_id,
            ip,
            user_agent,
        })
    }

    pub async fn add_member(
        &self,
        caller: &Caller,
        name: &str,
        email: &str,
        role: Role,
    ) -> Result<AddedMember, AppError> {
        caller.require(Permission::ManageMembers)?;
        let member_id = MemberId::new();
        let command = OrgCommand::AddMember {
            by: caller.role,
            member_id,
            name: name.to_owned(),
            email: email.to_owned(),
            role,
        };
        let position = self.org_command(caller, command).await?;
        Ok(AddedMember {
            member_id,
            position,
        })
    }

    pub async fn members(&self, caller: &Caller) -> Result<Vec<MemberView>, AppError> {
        caller.require(Permission::ManageMembers)?;
        Ok(directory::members(self.database(), caller.org_id).await?)
    }

    /// One member of the caller's org, as the directory shows them.
    pub async fn member(
        &self,
        caller: &Caller,
        member_id: MemberId,
    ) -> Result<Option<MemberView>, AppError> {
        Ok(directory::member(self.database(), caller.org_id, member_id).await?)
    }

    /// The name of the caller's org.
    pub async fn org_name(&self, caller: &Caller) -> Result<Option<String>, AppError> {
        Ok(directory::org_name(self.database(), caller.org_id).await?)
    }

    /// The org's texters by name, for anyone who reads about them (audit,
    /// metrics) or assigns them work; no emails.
    pub async fn texters(&self, caller: &Caller) -> Result<Vec<TexterName>, AppError> {
        let allowed = [
            Permission::ManageMembers,
            Permission::AssignContacts,
            Permission::ReadAudit,
            Permission::ReadMetrics,
        ];
        if !allowed
            .iter()
            .any(|permission| caller.require(*permission).is_ok())
        {
            return Err(AppError::Forbidden(format!(
                "the {} role may not list texters",
                caller.role
            )));
        }
        Ok(directory::members(self.database(), caller.org_id)
            .await?
            .into_iter()
            .filter(|member| member.role == Role::Texter)
            .map(|member| TexterName {
                member_id: member.member_id,
                name: member.name,
            })
            .collect())
    }

    pub async fn issue_key(
        &self,
        caller: &Caller,
        role: Role,
        member_id: Option<MemberId>,
        label: &str,
    ) -> Result<IssuedKey, AppError> {
        caller.require(Permission::ManageMembers)?;
        let key = keys::generate();
        let key_id = ApiKeyId::new();
        let command = OrgCommand::IssueApiKey {
            by: caller.role,
            by_key: Some(caller.key_id),
            by_member: caller.member_id,
            key_id,
            key_hash: keys::hash(&key),
            role,
            member_id,
            label: label.to_owned(),
        };
        let position = self.org_command(caller, command).await?;
        Ok(IssuedKey {
            key_id,
            key,
            role,
            member_id,
            label: label.trim().to_owned(),
            position,
        })
    }

    pub async fn keys(&self, caller: &Caller) -> Result<Vec<KeyView>, AppError> {
        caller.require(Permission::ManageMembers)?;
        Ok(directory::keys(self.database(), caller.org_id).await?)
    }

    /// Revokes a key of the caller's org; it stops authenticating before this
    /// returns. Revoking a revoked key is a no-op.
    pub async fn revoke_key(&self, caller: &Caller, key_id: ApiKeyId) -> Result<u64, AppError> {
        caller.require(Permission::ManageMembers)?;
        self.org_command(
            caller,
            OrgCommand::RevokeApiKey {
                by: caller.role,
                key_id,
            },
        )
        .await
    }

    /// Decides `command` on the caller's org stream, appends, and brings the
    /// directory up to date so the change is visible to the next request.
    async fn org_command(&self, caller: &Caller, command: OrgCommand) -> Result<u64, AppError> {
        let stream = org::stream_id(caller.org_id);
        let written = execute(self, &stream, &caller.metadata(), |state: &OrgState| {
            Ok::<Vec<OrgEvent>, AppError>(org::decide(state, command.clone())?)
        })
        .await?;
        let position = self.refresh_directory().await?;
        Ok(written.unwrap_or(position))
    }

    /// Applies pending events to the directory now rather than waiting for
    /// the background runner: keys issued or revoked must take effect before
    /// the response.
    pub(crate) async fn refresh_directory(&self) -> Result<u64, AppError> {
        Ok(catch_up(self.events(), &directory::Directory).await?)
    }
}
