//! The application layer's one error type: what went wrong, in terms the API
//! maps to a status code (domain rejections kept apart from infrastructure
//! failures).

use chrono::{DateTime, Utc};
use textbank_domain::campaign::CampaignError;
use textbank_domain::list::ListError;
use textbank_domain::message::BlockReason;
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
    /// Allowed the action in general, but not on this target; `code` names
    /// the rule (e.g. a manager minting a key that acts as a texter).
    #[error("{message}")]
    ForbiddenBy { code: &'static str, message: String },
    /// Absent — or belonging to another organization, which looks the same.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request is well-formed but its content is unacceptable.
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// A change that would hand a stored secret to a new place (another
    /// carrier API address) without the secret being given again.
    #[error("{message}")]
    SecretRequired {
        field: &'static str,
        message: String,
    },
    /// An outbound address (a carrier API base) the server's configuration
    /// does not allow.
    #[error("{message}")]
    AddressNotAllowed {
        field: &'static str,
        message: String,
    },
    /// The request clashes with the current state (a duplicate, a race).
    #[error("{0}")]
    Conflict(String),
    /// The request clashes with the current state in a way a client acts
    /// on by itself, named by `code` (e.g. `no_carrier`: configure one).
    #[error("{message}")]
    ConflictBy { code: &'static str, message: String },
    /// The upload exceeds a size limit; nothing was stored.
    #[error("{0}")]
    TooLarge(String),
    /// The upload breaks a configured limit on its shape (columns, header
    /// or field size), named by `code`; nothing was stored.
    #[error("{message}")]
    OverLimit {
        code: &'static str,
        limit: u64,
        message: String,
    },
    /// A send attempt a compliance rule refused; recorded as evidence.
    #[error("{message}")]
    Blocked {
        reason: BlockReason,
        message: String,
        /// For quiet hours: when the recipient's window opens again.
        next_open: Option<DateTime<Utc>>,
    },
    /// The answer depends on something that is not ready yet (a lagging
    /// projection); asking again shortly will work.
    #[error("{message}")]
    Unavailable { code: &'static str, message: String },
    /// Too many attempts (failed sign-ins); try again after the wait.
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after_secs: u64,
    },
    /// One caller holds too many of something at once (live streams);
    /// closing one makes room.
    #[error("{message}")]
    TooMany { code: &'static str, message: String },
    /// A webhook whose signature is missing or does not verify.
    #[error("{0}")]
    BadSignature(String),
    /// The application found its own data in a state it cannot use: a
    /// stream or read-model row that does not decode. Never the caller's
    /// fault; answered as an internal error.
    #[error("inconsistent data: {0}")]
    Inconsistent(String),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Projection(#[from] textbank_projections::ProjectionError),
}

impl AppError {
    /// A value of the request that cannot be accepted, and which field.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }

    pub fn blocked(reason: BlockReason, message: impl Into<String>) -> Self {
        Self::Blocked {
            reason,
            message: message.into(),
            next_open: None,
        }
    }

    /// The code of a failure reported inside a successful answer (one
    /// conversation of a bulk action), as the API names it; a failure of
    /// ours is `internal`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "not_found",
            Self::Forbidden(_) => "forbidden",
            Self::ForbiddenBy { code, .. } | Self::ConflictBy { code, .. } => code,
            Self::Invalid { .. } => "invalid_request",
            Self::Conflict(_) => "conflict",
            Self::Blocked { reason, .. } => reason.code(),
            _ => "internal",
        }
    }

    /// What such an answer may say of the failure: never the detail of a
    /// failure of ours (that is logged).
    pub fn public_message(&self) -> String {
        if self.code() == "internal" {
            tracing::error!(error = %self, "one conversation of a bulk action failed");
            "a failure of ours; logged, not explained".into()
        } else {
            self.to_string()
        }
    }

    pub fn forbidden(role: Role, permission: Permission) -> Self {
        Self::Forbidden(format!("the {role} role may not {}", describe(permission)))
    }
}

fn describe(permission: Permission) -> &'static str {
    match permission {
        Permission::ManageMembers => "manage members and API keys",
        Permission::UploadLists => "upload contact lists",
        Permission::ReadLists => "read contact lists",
        Permission::ReadEvents => "read the event feed",
        Permission::ManageCampaigns => "manage campaigns",
        Permission::ReadCampaigns => "read campaigns",
        Permission::AssignContacts => "assign contacts",
        Permission::RequestAssignment => "request assignments",
        Permission::Send => "send messages",
        Permission::ReadMetrics => "read metrics",
        Permission::ReadAudit => "read the compliance audit",
        Permission::ConfigureCarrier => "configure the carrier",
        Permission::ManageOptOuts => "import or export the opt-out list",
        Permission::ManageWebhooks => "manage webhooks",
        Permission::ManageConversations => "manage conversations (tags, reassignment, escalations)",
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
            OrgError::NoSuchTag => Self::NotFound("tag"),
            OrgError::Invalid { field, .. } => Self::Invalid {
                field,
                message: err.to_string(),
            },
            OrgError::RoleDiffersFromMember(_) => Self::Invalid {
                field: "role",
                message: err.to_string(),
            },
            OrgError::RoleNotGrantable(_) => Self::Forbidden(err.to_string()),
            OrgError::MemberKeyNotYours(_) => Self::ForbiddenBy {
                code: "member_key_not_yours",
                message: err.to_string(),
            },
            OrgError::EmailTaken(_) | OrgError::AlreadyExists | OrgError::TagNameTaken(_) => {
                Self::Conflict(err.to_string())
            }
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
            | CampaignError::SettingsLocked
            | CampaignError::NotActive(_) => Self::Conflict(message),
            CampaignError::NoCarrier(_) => Self::ConflictBy {
                code: BlockReason::NoCarrier.code(),
                message,
            },
            CampaignError::HoldingLimit { .. } => Self::ConflictBy {
                code: "contact_limit_reached",
                message,
            },
            CampaignError::RepliesWaiting { .. } => Self::ConflictBy {
                code: "replies_waiting",
                message,
            },
            CampaignError::ContactsCopying => Self::ConflictBy {
                code: "contacts_copying",
                message,
            },
        }
    }
}
