//! The application layer's one error type: what went wrong, in terms the API
//! maps to a status code (domain rejections kept apart from infrastructure
//! failures).

use textbank_domain::campaign::CampaignError;
use textbank_domain::list::ListError;
use textbank_domain::org::OrgError;
use textbank_domain::{Permission, Role};
use textbank_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No credentials, or credentials that do not authenticate.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// Authenticated, but not allowed to do this.
    #[error("{0}")]
    Forbidden(String),
    /// Absent — or belonging to another organization, which looks the same.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request is well-formed but its content is unacceptable.
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// The request clashes with the current state (a duplicate, a race).
    #[error("{0}")]
    Conflict(String),
    /// The upload exceeds a size limit; nothing was stored.
    #[error("{0}")]
    TooLarge(String),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Projection(#[from] textbank_projections::ProjectionError),
}

impl AppError {
    pub fn forbidden(role: Role, permission: Permission) -> Self {
        Self::Forbidden(format!("the {role} role may not {}", describe(permission)))
    }
}

fn describe(permission: Permission) -> &'static str {
    match permission {
        Permission::ManageMembers => "manage members and API keys",
        Permission::UploadLists => "upload contact lists",
        Permission::ReadLists => "read contact lists",
        Permission::ManageCampaigns => "manage campaigns",
        Permission::ReadCampaigns => "read campaigns",
        Permission::AssignContacts => "assign contacts",
        Permission::RequestAssignment => "request assignments",
        Permission::Send => "send messages",
        Permission::ReadMetrics => "read metrics",
        Permission::ReadAudit => "read the compliance audit",
    }
}

impl From<ListError> for AppError {
    fn from(err: ListError) -> Self {
        let field = match &err {
            ListError::Invalid { field, .. } => field,
            ListError::NoPhoneColumn | ListError::DuplicateColumn(_) => "file",
        };
        Self::Invalid {
            field,
            message: err.to_string(),
        }
    }
}

impl From<OrgError> for AppError {
    fn from(err: OrgError) -> Self {
        match err {
            OrgError::NoSuchOrg => Self::NotFound("organization"),
            OrgError::NoSuchMember => Self::NotFound("member"),
            OrgError::NoSuchKey => Self::NotFound("API key"),
            OrgError::Invalid { field, .. } => Self::Invalid {
                field,
                message: err.to_string(),
            },
            OrgError::RoleDiffersFromMember(_) => Self::Invalid {
                field: "role",
                message: err.to_string(),
            },
            OrgError::RoleNotGrantable(_) => Self::Forbidden(err.to_string()),
            OrgError::EmailTaken(_) | OrgError::AlreadyExists => Self::Conflict(err.to_string()),
        }
    }
}

impl From<CampaignError> for AppError {
    fn from(err: CampaignError) -> Self {
        let message = err.to_string();
        match err {
            CampaignError::NoSuchCampaign => Self::NotFound("campaign"),
            CampaignError::Invalid { field, .. } | CampaignError::Template { field, .. } => {
                Self::Invalid { field, message }
            }
            CampaignError::AlreadyExists
            | CampaignError::IllegalTransition { .. }
            | CampaignError::NoLists
            | CampaignError::ScriptLocked(_)
            | CampaignError::AssignmentsClosed(_)
            | CampaignError::NotActive(_) => Self::Conflict(message),
        }
    }
}
