//! Roles and the permission matrix: who may do what in an organization. The
//! API checks a permission before every action; this table is the only place
//! that answers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A member's (or an API key's) role in one organization.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Admin,
    Manager,
    Texter,
    Compliance,
    /// An API key of a system the campaign connects (a CRM, a data
    /// warehouse): reads events, lists, campaigns and metrics, and changes
    /// nothing. Never a person's role.
    Integration,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Owner,
        Role::Admin,
        Role::Manager,
        Role::Texter,
        Role::Compliance,
        Role::Integration,
    ];

    /// The roles a member (a person) may hold.
    pub const PEOPLE: [Role; 5] = [
        Role::Owner,
        Role::Admin,
        Role::Manager,
        Role::Texter,
        Role::Compliance,
    ];

    /// Whether a person may hold this role (an integration's is a key's).
    pub fn is_for_people(self) -> bool {
        self != Self::Integration
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Manager => "manager",
            Self::Texter => "texter",
            Self::Compliance => "compliance",
            Self::Integration => "integration",
        }
    }

    /// May a holder of this role grant `other` (to a member or an API key),
    /// or revoke a key of that role? Nobody grants a role above their own;
    /// only owners make owners; managers onboard volunteers (texters) and
    /// nobody else.
    pub fn may_grant(self, other: Role) -> bool {
        match self {
            Self::Owner => true,
            Self::Admin => other != Self::Owner,
            Self::Manager => other == Self::Texter,
            Self::Texter | Self::Compliance | Self::Integration => false,
        }
    }

    /// May a holder of this role act on another member's credentials: mint
    /// a key that acts as them, or reset their password? Owners and admins
    /// only; a manager who could would send as any texter.
    pub fn may_act_for_others(self) -> bool {
        matches!(self, Self::Owner | Self::Admin)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown role {0:?}; expected one of owner, admin, manager, texter, compliance, integration"
)]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// Something a caller may or may not do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Add members, issue and revoke API keys (of roles one may grant).
    ManageMembers,
    /// Upload contact lists and read their rejections.
    UploadLists,
    /// Read contact lists.
    ReadLists,
    /// Create, edit, launch, pause and archive campaigns.
    ManageCampaigns,
    /// Read campaigns (a texter reads the ones it works on).
    ReadCampaigns,
    /// Assign contacts to texters and release assignments.
    AssignContacts,
    /// Ask for a batch of contacts for oneself.
    RequestAssignment,
    /// Send messages (each with one human click).
    Send,
    /// Read campaign metrics.
    ReadMetrics,
    /// Read the compliance audit.
    ReadAudit,
    /// Set the carrier, its credentials and sending numbers.
    ConfigureCarrier,
    /// Import and export the organization's opt-out list.
    ManageOptOuts,
    /// Read the organization's event feed.
    ReadEvents,
    /// Subscribe outbound webhooks to the organization's events, read their
    /// deliveries, rotate their signing secrets.
    ManageWebhooks,
    /// Define conversation tags, review conversations, reassign and release
    /// them, handle escalations and reply in any conversation (each reply
    /// still one click, recorded with who clicked).
    ManageConversations,
}

impl Permission {
    pub const ALL: [Permission; 15] = [
        Permission::ManageMembers,
        Permission::UploadLists,
        Permission::ReadLists,
        Permission::ManageCampaigns,
        Permission::ReadCampaigns,
        Permission::AssignContacts,
        Permission::RequestAssignment,
        Permission::Send,
        Permission::ReadMetrics,
        Permission::ReadAudit,
        Permission::ConfigureCarrier,
        Permission::ManageOptOuts,
        Permission::ReadEvents,
        Permission::ManageWebhooks,
        Permission::ManageConversations,
    ];
}

/// The permission matrix (mirrored in the README).
///
/// Compliance reads the audit and nothing it could change; texters send and
/// ask for work but never see other texters' contacts; managers run
/// campaigns but do not manage people or read the audit; sending stays with
/// texters so every message is a volunteer's click.
pub fn allows(role: Role, permission: Permission) -> bool {
    use Permission::*;
    match role {
        Role::Owner | Role::Admin => !matches!(permission, Send | RequestAssignment),
        // Managers manage members too, but only texters (see `may_grant`).
        Role::Manager => matches!(
            permission,
            ManageMembers
                | UploadLists
                | ReadLists
                | ManageCampaigns
                | ReadCampaigns
                | AssignContacts
                | ReadMetrics
                | ManageConversations
        ),
        Role::Texter => matches!(permission, ReadCampaigns | RequestAssignment | Send),
        Role::Compliance => matches!(
            permission,
            ReadAudit | ReadLists | ReadCampaigns | ReadMetrics
        ),
        Role::Integration => matches!(
            permission,
            ReadEvents | ReadLists | ReadCampaigns | ReadMetrics
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compliance_can_read_the_audit_but_never_send_or_change_anything() {
        for permission in Permission::ALL {
            let changes = matches!(
                permission,
                Permission::ManageMembers
                    | Permission::UploadLists
                    | Permission::ManageCampaigns
                    | Permission::AssignContacts
                    | Permission::RequestAssignment
                    | Permission::Send
                    | Permission::ConfigureCarrier
                    | Permission::ManageOptOuts
                    | Permission::ManageWebhooks
                    | Permission::ManageConversations
            );
            // The event feed is for integrations (and owners and admins).
            let feed = permission == Permission::ReadEvents;
            assert_eq!(
                allows(Role::Compliance, permission),
                !changes && !feed,
                "{permission:?}"
            );
        }
    }

    #[test]
    fn integrations_read_events_lists_campaigns_and_metrics_and_change_nothing() {
        for permission in Permission::ALL {
            let reads = matches!(
                permission,
                Permission::ReadEvents
                    | Permission::ReadLists
                    | Permission::ReadCampaigns
                    | Permission::ReadMetrics
            );
            assert_eq!(
                allows(Role::Integration, permission),
                reads,
                "{permission:?}"
            );
        }
        assert!(!Role::Integration.is_for_people());
        assert!(Role::Admin.may_grant(Role::Integration));
        assert!(!Role::Manager.may_grant(Role::Integration));
    }

    #[test]
    fn only_owners_and_admins_and_integrations_read_events() {
        for role in Role::ALL {
            assert_eq!(
                allows(role, Permission::ReadEvents),
                matches!(role, Role::Owner | Role::Admin | Role::Integration),
                "{role}"
            );
        }
    }

    #[test]
    fn only_owners_and_admins_manage_webhooks() {
        for role in Role::ALL {
            assert_eq!(
                allows(role, Permission::ManageWebhooks),
                matches!(role, Role::Owner | Role::Admin),
                "{role}"
            );
        }
    }

    #[test]
    fn only_texters_send() {
        for role in Role::ALL {
            assert_eq!(
                allows(role, Permission::Send),
                role == Role::Texter,
                "{role}"
            );
        }
    }

    #[test]
    fn texters_cannot_manage_or_read_the_audit() {
        for permission in [
            Permission::ManageMembers,
            Permission::UploadLists,
            Permission::ManageCampaigns,
            Permission::AssignContacts,
            Permission::ReadAudit,
            Permission::ReadMetrics,
        ] {
            assert!(!allows(Role::Texter, permission), "{permission:?}");
        }
    }

    #[test]
    fn admins_cannot_mint_owners() {
        assert!(Role::Owner.may_grant(Role::Owner));
        assert!(!Role::Admin.may_grant(Role::Owner));
        assert!(Role::Admin.may_grant(Role::Admin));
        assert!(Role::Manager.may_grant(Role::Texter));
        assert!(!Role::Manager.may_grant(Role::Manager));
        assert!(!Role::Texter.may_grant(Role::Texter));
    }

    #[test]
    fn only_owners_and_admins_act_for_other_members() {
        for role in Role::ALL {
            assert_eq!(
                role.may_act_for_others(),
                matches!(role, Role::Owner | Role::Admin),
                "{role}"
            );
        }
    }

    #[test]
    fn roles_parse_from_their_names_only() {
        assert_eq!("texter".parse::<Role>().unwrap(), Role::Texter);
        assert!("Texter".parse::<Role>().is_err());
        assert!("root".parse::<Role>().is_err());
    }
}
