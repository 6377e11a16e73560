//! The campaign aggregate (`campaign-{id}` stream): its name, survey
//! questions, texting hours, attached lists, versioned script and lifecycle
//! (draft → active ⇄ paused → archived; see docs/adr/0005). It decides which
//! scripts are acceptable and which transitions are legal, and when contacts
//! may be assigned to texters, released or reassigned.

use std::fmt;

use chrono::NaiveTime;
use serde::{Deserialize, Serialize};

use crate::event::DomainEvent;
use crate::ids::{CampaignId, ListId, MemberId, OrgId};
use crate::phone::PhoneNumber;
use crate::stream::StreamId;
use crate::template::{Template, TemplateError};
use crate::texting_hours::TextingWindow;

pub const MAX_CAMPAIGN_NAME_LEN: usize = 200;
/// Carriers refuse concatenated messages beyond about 1,600 characters.
pub const MAX_MESSAGE_LEN: usize = 1_600;
pub const MAX_TITLE_LEN: usize = 100;
pub const MAX_CANNED_RESPONSES: usize = 100;
pub const MAX_QUESTIONS: usize = 50;
pub const MAX_ANSWERS: usize = 50;
pub const MAX_QUESTION_LEN: usize = 500;
pub const MAX_ANSWER_LEN: usize = 200;
pub const MAX_QUESTION_ID_LEN: usize = 64;
/// Contacts a texter gets per self-service request unless the campaign says
/// otherwise.
pub const DEFAULT_ASSIGNMENT_BATCH_SIZE: u32 = 100;
pub const MAX_ASSIGNMENT_BATCH_SIZE: u32 = 1_000;
/// Contacts one assignment, release or reassignment may move at most.
pub const MAX_ASSIGNMENT_COUNT: u32 = 10_000;
/// Phones per assignment event: keeps each event small (~20 KB) however many
/// contacts one command moves; the events of one command are appended
/// together, so they still take effect all or nothing.
pub const PHONES_PER_EVENT: usize = 1_000;

fn default_batch_size() -> u32 {
    DEFAULT_ASSIGNMENT_BATCH_SIZE
}

pub fn stream_id(campaign: CampaignId) -> StreamId {
    StreamId::of("campaign", &[&campaign])
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CannedResponse {
    pub title: String,
    /// A template, like the initial message.
    pub body: String,
}

/// A survey question texters record answers to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Question {
    pub id: String,
    pub text: String,
    pub answers: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CampaignStatus {
    Draft,
    Active,
    Paused,
    Archived,
}

impl CampaignStatus {
    /// The status a read model stored with [`CampaignStatus::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Draft, Self::Active, Self::Paused, Self::Archived]
            .into_iter()
            .find(|status| status.as_str() == text)
    }

    /// Whether clicks may send.
    pub fn is_open(self) -> bool {
        self == Self::Active
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Active => "active",
            Self::Paused => "paused",
            Self::Archived => "archived",
        }
    }
}

impl fmt::Display for CampaignStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A lifecycle step a caller asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Launch,
    Pause,
    Resume,
    Archive,
}

impl Transition {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Launch => "launch",
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Archive => "archive",
        }
    }

    /// The states the step may start from.
    pub fn from_states(self) -> &'static [CampaignStatus] {
        use CampaignStatus::*;
        match self {
            Self::Launch => &[Draft],
            Self::Pause => &[Active],
            Self::Resume => &[Paused],
            Self::Archive => &[Draft, Active, Paused],
        }
    }
}

/// States in which the script may be revised: never while texters are
/// sending from it (active), nor once archived.
pub const SCRIPT_EDITABLE: [CampaignStatus; 2] = [CampaignStatus::Draft, CampaignStatus::Paused];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", content = "data")]
pub enum CampaignEvent {
    CampaignCreated {
        campaign_id: CampaignId,
        org_id: OrgId,
        name: String,
        questions: Vec<Question>,
        texting_hours: TextingWindow,
        /// Added after the first campaigns were recorded: those load with
        /// the default.
        #[serde(default = "default_batch_size")]
        assignment_batch_size: u32,
        /// Limits on handing out batches; absent (no limit) on campaigns
        /// recorded before they existed.
        #[serde(default, skip_serializing_if = "BatchRules::is_off")]
        batch_rules: BatchRules,
        /// The campaign whose script, questions and settings this one was
        /// copied from (none of its contacts' state is).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        copied_from: Option<CampaignId>,
    },
    /// Script version `version` (1 at creation, then n+1 per revision).
    /// Messages record the version they were sent from.
    ScriptRevised {
        version: u32,
        initial_message: String,
        canned_responses: Vec<CannedResponse>,
    },
    /// Complete lists whose contacts the campaign texts, in order: for a
    /// phone on two lists, the first list's contact is used.
    ListsAttached {
        list_ids: Vec<ListId>,
    },
    /// The name, texting hours, batch size and batch rules as they are from
    /// now on (all of them, whichever changed).
    SettingsChanged {
        name: String,
        texting_hours: TextingWindow,
        assignment_batch_size: u32,
        #[serde(default, skip_serializing_if = "BatchRules::is_off")]
        batch_rules: BatchRules,
    },
    CampaignLaunched {},
    CampaignPaused {},
    CampaignResumed {},
    CampaignArchived {},
    /// The phones, unassigned until now, are the texter's to text. A phone
    /// is assigned to at most one texter of the campaign at a time.
    ContactsAssigned {
        texter_id: MemberId,
        phones: Vec<PhoneNumber>,
    },
    /// The phones, assigned to the texter until now, are unassigned again.
    ContactsReleased {
        texter_id: MemberId,
        phones: Vec<PhoneNumber>,
    },
}

impl DomainEvent for CampaignEvent {}

/// What the campaign's events say, folded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CampaignState {
    pub campaign_id: Option<CampaignId>,
    pub org_id: Option<OrgId>,
    pub status: Option<CampaignStatus>,
    pub script_version: u32,
    pub list_ids: Vec<ListId>,
    pub assignment_batch_size: u32,
    pub batch_rules: BatchRules,
}

pub fn evolve(mut state: CampaignState, event: &CampaignEvent) -> CampaignState {
    match event {
        CampaignEvent::CampaignCreated {
            campaign_id,
            org_id,
            assignment_batch_size,
            batch_rules,
            ..
        } => {
            state.campaign_id = Some(*campaign_id);
            state.org_id = Some(*org_id);
            state.status = Some(CampaignStatus::Draft);
            state.assignment_batch_size = *assignment_batch_size;
            state.batch_rules = *batch_rules;
        }
        CampaignEvent::ScriptRevised { version, .. } => state.script_version = *version,
        CampaignEvent::SettingsChanged {
            assignment_batch_size,
            batch_rules,
            ..
        } => {
            state.assignment_batch_size = *assignment_batch_size;
            state.batch_rules = *batch_rules;
        }
        CampaignEvent::ListsAttached { list_ids } => {
            for list in list_ids {
                if !state.list_ids.contains(list) {
                    state.list_ids.push(*list);
                }
            }
        }
        CampaignEvent::CampaignLaunched {} | CampaignEvent::CampaignResumed {} => {
            state.status = Some(CampaignStatus::Active);
        }
        CampaignEvent::CampaignPaused {} => state.status = Some(CampaignStatus::Paused),
        CampaignEvent::CampaignArchived {} => state.status = Some(CampaignStatus::Archived),
        // Who holds which phone lives in the read model (`campaign_contacts`),
        // which the assignment command reads at the stream's exact version;
        // folding a million phones into every load would buy nothing.
        CampaignEvent::ContactsAssigned { .. } | CampaignEvent::ContactsReleased { .. } => {}
    }
    state
}

/// A script as submitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptDraft {
    pub initial_message: String,
    pub canned_responses: Vec<CannedResponse>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CampaignCommand {
    Create {
        campaign_id: CampaignId,
        org_id: OrgId,
        name: String,
        script: ScriptDraft,
        questions: Vec<Question>,
        texting_hours: TextingWindow,
        /// Contacts per self-service request; `None` for the default.
        assignment_batch_size: Option<u32>,
        batch_rules: BatchRules,
        /// The campaign this one copies, if it is a copy.
        copied_from: Option<CampaignId>,
        /// Complete lists of the org, checked by the caller beforehand.
        list_ids: Vec<ListId>,
        /// The custom fields of those lists: what templates may use besides
        /// the built-in fields.
        known_fields: Vec<String>,
    },
    ReviseScript {
        script: ScriptDraft,
        known_fields: Vec<String>,
    },
    /// Renames the campaign and sets its texting hours and batch size (any
    /// status but archived).
    ChangeSettings {
        name: String,
        texting_hours: TextingWindow,
        assignment_batch_size: u32,
        batch_rules: BatchRules,
    },
    /// A lifecycle step. `carrier_ready` is the organization's carrier as
    /// looked up before deciding: launching and resuming need one, as a
    /// campaign nobody can send for would only fail at dispatch.
    /// `contacts_ready`: every contact of the campaign's lists is in the
    /// campaign (large lists are copied in the background); launching needs
    /// it.
    Transition {
        step: Transition,
        carrier_ready: bool,
        contacts_ready: bool,
    },
    /// A manager gives the texter these phones. The caller picks them from
    /// the read model at exactly the stream version the events will be
    /// appended under, so they are unassigned and reachable.
    Assign {
        texter_id: MemberId,
        phones: Vec<PhoneNumber>,
    },
    /// The texter asks for a batch for itself (picked like `Assign`'s).
    Request {
        texter_id: MemberId,
        phones: Vec<PhoneNumber>,
    },
    /// These phones, now the texter's, go back to the unassigned pool.
    Release {
        texter_id: MemberId,
        phones: Vec<PhoneNumber>,
    },
    /// These phones, now `from`'s, become `to`'s.
    Reassign {
        from: MemberId,
        to: MemberId,
        phones: Vec<PhoneNumber>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CampaignError {
    #[error("the campaign already exists")]
    AlreadyExists,
    #[error("no such campaign")]
    NoSuchCampaign,
    /// `location` names the exact spot, e.g. `canned_responses[1].title`.
    #[error("{location} {problem}")]
    Invalid {
        field: &'static str,
        location: String,
        problem: String,
    },
    #[error("{location}: {error}")]
    Template {
        field: &'static str,
        location: String,
        error: TemplateError,
    },
    #[error(
        "cannot {} a campaign that is {from}; {} needs a campaign that is {}",
        .transition.as_str(), .transition.as_str(), states(.transition.from_states())
    )]
    IllegalTransition {
        transition: Transition,
        from: CampaignStatus,
    },
    #[error("cannot launch a campaign without a contact list; attach at least one list")]
    NoLists,
    #[error(
        "cannot {} the campaign: the organization has no carrier configured; an owner or admin \
         must set one up (PUT /v1/carrier, or the admin page's carrier settings) first",
        .0.as_str()
    )]
    NoCarrier(Transition),
    #[error(
        "the script of a campaign that is {0} cannot be edited; it can be edited while {editable}",
        editable = states(&SCRIPT_EDITABLE)
    )]
    ScriptLocked(CampaignStatus),
    #[error("assignments of a campaign that is {0} cannot change")]
    AssignmentsClosed(CampaignStatus),
    #[error(
        "the campaign's contacts are still being copied from its lists (its contacts_copying \
         shows how far); launching it and assigning its contacts wait until every contact is in \
         place"
    )]
    ContactsCopying,
    #[error("an archived campaign's settings cannot change")]
    SettingsLocked,
    #[error("contacts can be requested only while the campaign is active; it is {0}")]
    NotActive(CampaignStatus),
    #[error(
        "the texter already holds {held} contacts waiting for their first message, the most \
         this campaign allows ({max}); they get more once they have texted some"
    )]
    HoldingLimit { held: u64, max: u32 },
    #[error(
        "the texter has {waiting} conversations waiting for a reply, more than this campaign \
         allows ({max}) before a new batch; answering them comes first"
    )]
    RepliesWaiting { waiting: u64, max: u32 },
}

/// Optional limits on handing out batches, per campaign (both off unless
/// set).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BatchRules {
    /// The most contacts a texter may hold that still wait for their first
    /// message: an assignment or request gives at most the difference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_contacts_held: Option<u32>,
    /// A texter with more than this many of the campaign's conversations
    /// needing a reply gets no new batch until they answer (0: every reply
    /// must be answered first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_replies_waiting: Option<u32>,
}

/// The most conversations waiting for a reply a rule may allow.
pub const MAX_REPLIES_WAITING: u32 = 10_000;

impl BatchRules {
    pub fn is_off(&self) -> bool {
        *self == Self::default()
    }

    fn checked(self) -> Result<Self, CampaignError> {
        let invalid = |field: &'static str, problem: String| CampaignError::Invalid {
            field,
            location: field.into(),
            problem,
        };
        if let Some(max) = self.max_contacts_held
            && !(1..=MAX_ASSIGNMENT_COUNT).contains(&max)
        {
            return Err(invalid(
                "max_contacts_held",
                format!("must be 1–{MAX_ASSIGNMENT_COUNT} (or null for no limit), got {max}"),
            ));
        }
        if let Some(max) = self.max_replies_waiting
            && max > MAX_REPLIES_WAITING
        {
            return Err(invalid(
                "max_replies_waiting",
                format!("must be 0–{MAX_REPLIES_WAITING} (or null for no rule), got {max}"),
            ));
        }
        Ok(self)
    }
}

/// What a texter holds when a batch is asked for them, looked up before
/// deciding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TexterLoad {
    /// Assigned contacts still waiting for their first message.
    pub held: u64,
    /// The texter's conversations in the campaign that need a reply.
    pub replies_waiting: u64,
}

/// How many of `wanted` contacts the campaign's batch rules let `load`'s
/// texter get now; refused when none.
pub fn allowed_batch(
    state: &CampaignState,
    wanted: u32,
    load: TexterLoad,
) -> Result<u32, CampaignError> {
    let rules = state.batch_rules;
    if let Some(max) = rules.max_replies_waiting
        && load.replies_waiting > u64::from(max)
    {
        return Err(CampaignError::RepliesWaiting {
            waiting: load.replies_waiting,
            max,
        });
    }
    match rules.max_contacts_held {
        None => Ok(wanted),
        Some(max) => {
            let room = u64::from(max).saturating_sub(load.held);
            if room == 0 {
                return Err(CampaignError::HoldingLimit {
                    held: load.held,
                    max,
                });
            }
            Ok(wanted.min(u32::try_from(room).unwrap_or(u32::MAX)))
        }
    }
}

fn check_batch_size(size: u32) -> Result<u32, CampaignError> {
    if (1..=MAX_ASSIGNMENT_BATCH_SIZE).contains(&size) {
        Ok(size)
    } else {
        Err(CampaignError::Invalid {
            field: "assignment_batch_size",
            location: "assignment_batch_size".into(),
            problem: format!("must be 1–{MAX_ASSIGNMENT_BATCH_SIZE}, got {size}"),
        })
    }
}

fn states(states: &[CampaignStatus]) -> String {
    let names: Vec<&str> = states.iter().map(|s| s.as_str()).collect();
    match names.as_slice() {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// Decides a command against the campaign's state.
pub fn decide(
    state: &CampaignState,
    command: CampaignCommand,
) -> Result<Vec<CampaignEvent>, CampaignError> {
    match command {
        CampaignCommand::Create {
            campaign_id,
            org_id,
            name,
            script,
            questions,
            texting_hours,
            assignment_batch_size,
            batch_rules,
            copied_from,
            list_ids,
            known_fields,
        } => {
            if state.campaign_id.is_some() {
                return Err(CampaignError::AlreadyExists);
            }
            let assignment_batch_size =
                check_batch_size(assignment_batch_size.unwrap_or(DEFAULT_ASSIGNMENT_BATCH_SIZE))?;
            let batch_rules = batch_rules.checked()?;
            let name = clean_text("name", "name", &name, MAX_CAMPAIGN_NAME_LEN)?;
            let script = check_script(script, &known_fields)?;
            let questions = check_questions(questions)?;
            let mut unique: Vec<ListId> = Vec::with_capacity(list_ids.len());
            for list in list_ids {
                if !unique.contains(&list) {
                    unique.push(list);
                }
            }
            let mut events = vec![
                CampaignEvent::CampaignCreated {
                    campaign_id,
                    org_id,
                    name,
                    questions,
                    texting_hours,
                    assignment_batch_size,
                    batch_rules,
                    copied_from,
                },
                CampaignEvent::ScriptRevised {
                    version: 1,
                    initial_message: script.initial_message,
                    canned_responses: script.canned_responses,
                },
            ];
            if !unique.is_empty() {
                events.push(CampaignEvent::ListsAttached { list_ids: unique });
            }
            Ok(events)
        }
        CampaignCommand::ReviseScript {
            script,
            known_fields,
        } => {
            let status = state.status.ok_or(CampaignError::NoSuchCampaign)?;
            if !SCRIPT_EDITABLE.contains(&status) {
                return Err(CampaignError::ScriptLocked(status));
            }
            let script = check_script(script, &known_fields)?;
            Ok(vec![CampaignEvent::ScriptRevised {
                version: state.script_version + 1,
                initial_message: script.initial_message,
                canned_responses: script.canned_responses,
            }])
        }
        CampaignCommand::ChangeSettings {
            name,
            texting_hours,
            assignment_batch_size,
            batch_rules,
        } => {
            let status = state.status.ok_or(CampaignError::NoSuchCampaign)?;
            if status == CampaignStatus::Archived {
                return Err(CampaignError::SettingsLocked);
            }
            Ok(vec![CampaignEvent::SettingsChanged {
                name: clean_text("name", "name", &name, MAX_CAMPAIGN_NAME_LEN)?,
                texting_hours,
                assignment_batch_size: check_batch_size(assignment_batch_size)?,
                batch_rules: batch_rules.checked()?,
            }])
        }
        CampaignCommand::Transition {
            step: transition,
            carrier_ready,
            contacts_ready,
        } => {
            let from = state.status.ok_or(CampaignError::NoSuchCampaign)?;
            if !transition.from_states().contains(&from) {
                return Err(CampaignError::IllegalTransition { transition, from });
            }
            let opens_sending = matches!(transition, Transition::Launch | Transition::Resume);
            if transition == Transition::Launch && state.list_ids.is_empty() {
                return Err(CampaignError::NoLists);
            }
            if opens_sending && !carrier_ready {
                return Err(CampaignError::NoCarrier(transition));
            }
            if transition == Transition::Launch {
                contacts_in_place(contacts_ready)?;
            }
            Ok(vec![match transition {
                Transition::Launch => CampaignEvent::CampaignLaunched {},
                Transition::Pause => CampaignEvent::CampaignPaused {},
                Transition::Resume => CampaignEvent::CampaignResumed {},
                Transition::Archive => CampaignEvent::CampaignArchived {},
            }])
        }
        CampaignCommand::Assign { texter_id, phones } => {
            assignments_open(state)?;
            Ok(chunked(phones, |phones| CampaignEvent::ContactsAssigned {
                texter_id,
                phones,
            }))
        }
        CampaignCommand::Request { texter_id, phones } => {
            let status = state.status.ok_or(CampaignError::NoSuchCampaign)?;
            if status != CampaignStatus::Active {
                return Err(CampaignError::NotActive(status));
            }
            Ok(chunked(phones, |phones| CampaignEvent::ContactsAssigned {
                texter_id,
                phones,
            }))
        }
        CampaignCommand::Release { texter_id, phones } => {
            assignments_open(state)?;
            Ok(chunked(phones, |phones| CampaignEvent::ContactsReleased {
                texter_id,
                phones,
            }))
        }
        CampaignCommand::Reassign { from, to, phones } => {
            assignments_open(state)?;
            if from == to {
                return Err(CampaignError::Invalid {
                    field: "to_texter_id",
                    location: "to_texter_id".into(),
                    problem: "must differ from from_texter_id".into(),
                });
            }
            // Released and assigned in one append: no other request can take
            // the phones in between.
            let mut events = chunked(phones.clone(), |phones| CampaignEvent::ContactsReleased {
                texter_id: from,
                phones,
            });
            events.extend(chunked(phones, |phones| CampaignEvent::ContactsAssigned {
                texter_id: to,
                phones,
            }));
            Ok(events)
        }
    }
}

/// Assignments may change in every state but archived (a manager may hand
/// out contacts before launch and while paused).
/// Launching a campaign and assigning its contacts need all of them in
/// place: a texter handed a batch, or a campaign opened, while a large list
/// is still being copied would see only part of it.
pub fn contacts_in_place(contacts_ready: bool) -> Result<(), CampaignError> {
    if contacts_ready {
        Ok(())
    } else {
        Err(CampaignError::ContactsCopying)
    }
}

fn assignments_open(state: &CampaignState) -> Result<(), CampaignError> {
    match state.status.ok_or(CampaignError::NoSuchCampaign)? {
        CampaignStatus::Archived => Err(CampaignError::AssignmentsClosed(CampaignStatus::Archived)),
        _ => Ok(()),
    }
}

/// One event per `PHONES_PER_EVENT` phones; none for no phones.
fn chunked(
    phones: Vec<PhoneNumber>,
    event: impl Fn(Vec<PhoneNumber>) -> CampaignEvent,
) -> Vec<CampaignEvent> {
    phones
        .chunks(PHONES_PER_EVENT)
        .map(|chunk| event(chunk.to_vec()))
        .collect()
}

/// Parses "HH:MM" (24-hour, two digits each) into texting hours; start must
/// come before end on the same day.
pub fn parse_texting_hours(start: &str, end: &str) -> Result<TextingWindow, CampaignError> {
    let time = |location: &str, raw: &str| {
        let shaped = raw.len() == 5
            && raw.as_bytes()[2] == b':'
            && raw
                .bytes()
                .enumerate()
                .all(|(i, b)| i == 2 || b.is_ascii_digit());
        shaped
            .then(|| NaiveTime::parse_from_str(raw, "%H:%M").ok())
            .flatten()
            .ok_or_else(|| CampaignError::Invalid {
                field: "texting_hours",
                location: location.to_owned(),
                problem: format!("must be a time of day as \"HH:MM\" (00:00–23:59), got {raw:?}"),
            })
    };
    let (start, end) = (
        time("texting_hours.start", start)?,
        time("texting_hours.end", end)?,
    );
    TextingWindow::new(start, end).map_err(|err| CampaignError::Invalid {
        field: "texting_hours",
        location: "texting_hours".into(),
        problem: err.to_string(),
    })
}

/// Every template of a script must parse against the known fields.
fn check_script(
    script: ScriptDraft,
    known_fields: &[String],
) -> Result<ScriptDraft, CampaignError> {
    let known: Vec<&str> = known_fields.iter().map(String::as_str).collect();
    let template = |field: &'static str, location: String, text: &str| {
        if text.chars().count() > MAX_MESSAGE_LEN {
            return Err(CampaignError::Invalid {
                field,
                location,
                problem: format!("must be at most {MAX_MESSAGE_LEN} characters"),
            });
        }
        Template::parse(text, &known)
            .map(|_| ())
            .map_err(|error| CampaignError::Template {
                field,
                location,
                error,
            })
    };
    template(
        "initial_message",
        "initial_message".into(),
        &script.initial_message,
    )?;
    if script.canned_responses.len() > MAX_CANNED_RESPONSES {
        return Err(CampaignError::Invalid {
            field: "canned_responses",
            location: "canned_responses".into(),
            problem: format!("may hold at most {MAX_CANNED_RESPONSES} responses"),
        });
    }
    let mut canned = Vec::with_capacity(script.canned_responses.len());
    for (i, response) in script.canned_responses.into_iter().enumerate() {
        let title = clean_text(
            "canned_responses",
            &format!("canned_responses[{i}].title"),
            &response.title,
            MAX_TITLE_LEN,
        )?;
        if canned.iter().any(|c: &CannedResponse| c.title == title) {
            return Err(CampaignError::Invalid {
                field: "canned_responses",
                location: format!("canned_responses[{i}].title"),
                problem: format!("{title:?} is used by an earlier canned response"),
            });
        }
        template(
            "canned_responses",
            format!("canned_responses[{i}].body"),
            &response.body,
        )?;
        canned.push(CannedResponse {
            title,
            body: response.body,
        });
    }
    Ok(ScriptDraft {
        initial_message: script.initial_message,
        canned_responses: canned,
    })
}

fn check_questions(questions: Vec<Question>) -> Result<Vec<Question>, CampaignError> {
    let invalid = |location: String, problem: String| CampaignError::Invalid {
        field: "questions",
        location,
        problem,
    };
    if questions.len() > MAX_QUESTIONS {
        return Err(invalid(
            "questions".into(),
            format!("may hold at most {MAX_QUESTIONS} questions"),
        ));
    }
    let mut checked: Vec<Question> = Vec::with_capacity(questions.len());
    for (i, question) in questions.into_iter().enumerate() {
        let id = question.id.trim().to_owned();
        // Ids end up in exports and answer records: keep them plain.
        let plain = !id.is_empty()
            && id.len() <= MAX_QUESTION_ID_LEN
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !plain {
            return Err(invalid(
                format!("questions[{i}].id"),
                format!(
                    "must be 1–{MAX_QUESTION_ID_LEN} letters, digits, '_' or '-', got {:?}",
                    question.id
                ),
            ));
        }
        if checked.iter().any(|q| q.id == id) {
            return Err(invalid(
                format!("questions[{i}].id"),
                format!("{id:?} is used by an earlier question"),
            ));
        }
        let text = clean_text(
            "questions",
            &format!("questions[{i}].text"),
            &question.text,
            MAX_QUESTION_LEN,
        )?;
        if question.answers.is_empty() || question.answers.len() > MAX_ANSWERS {
            return Err(invalid(
                format!("questions[{i}].answers"),
                format!("must hold 1–{MAX_ANSWERS} answers"),
            ));
        }
        let mut answers: Vec<String> = Vec::with_capacity(question.answers.len());
        for (j, answer) in question.answers.iter().enumerate() {
            let location = format!("questions[{i}].answers[{j}]");
            let answer = clean_text("questions", &location, answer, MAX_ANSWER_LEN)?;
            if answers.contains(&answer) {
                return Err(invalid(location, format!("{answer:?} is listed twice")));
            }
            answers.push(answer);
        }
        checked.push(Question { id, text, answers });
    }
    Ok(checked)
}

/// Trimmed, non-empty, bounded, without control characters.
fn clean_text(
    field: &'static str,
    location: &str,
    raw: &str,
    max: usize,
) -> Result<String, CampaignError> {
    let text = raw.trim();
    let invalid = |problem: String| CampaignError::Invalid {
        field,
        location: location.to_owned(),
        problem,
    };
    if text.is_empty() {
        return Err(invalid("must not be empty".into()));
    }
    if text.chars().count() > max {
        return Err(invalid(format!("must be at most {max} characters")));
    }
    if text.chars().any(char::is_control) {
        return Err(invalid("must not contain control characters".into()));
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::given_when_then;

    /// given(events).when(command) → the events or the error.
    /// A lifecycle step by an organization that has a carrier.
    fn step(step: Transition) -> CampaignCommand {
        CampaignCommand::Transition {
            step,
            carrier_ready: true,
            contacts_ready: true,
        }
    }

    fn given(events: &[CampaignEvent]) -> CampaignState {
        events.iter().fold(CampaignState::default(), evolve)
    }

    fn script(text: &str) -> ScriptDraft {
        ScriptDraft {
            initial_message: text.into(),
            canned_responses: vec![CannedResponse {
                title: "Where to vote".into(),
                body: "Your polling place is {polling_place}.".into(),
            }],
        }
    }

    fn create(list_ids: Vec<ListId>) -> CampaignCommand {
        CampaignCommand::Create {
            campaign_id: CampaignId::new(),
            org_id: OrgId::new(),
            name: " GOTV ".into(),
            script: script("Hi {first_name}, it's {texter_name}. Reply STOP to opt out."),
            questions: vec![Question {
                id: "support".into(),
                text: "Will you vote for Rivera?".into(),
                answers: vec!["yes".into(), "no".into()],
            }],
            texting_hours: TextingWindow::default(),
            assignment_batch_size: None,
            batch_rules: BatchRules::default(),
            copied_from: None,
            list_ids,
            known_fields: vec!["polling_place".into()],
        }
    }

    fn created(lists: usize) -> Vec<CampaignEvent> {
        let list_ids = (0..lists).map(|_| ListId::new()).collect();
        decide(&CampaignState::default(), create(list_ids)).unwrap()
    }

    fn with(mut history: Vec<CampaignEvent>, more: &[CampaignEvent]) -> Vec<CampaignEvent> {
        history.extend_from_slice(more);
        history
    }

    #[test]
    fn creating_records_the_campaign_script_version_1_and_its_lists_once() {
        let list = ListId::new();
        let events = decide(&CampaignState::default(), create(vec![list, list])).unwrap();
        assert!(matches!(
            &events[0],
            CampaignEvent::CampaignCreated { name, .. } if name == "GOTV"
        ));
        assert!(matches!(
            events[1],
            CampaignEvent::ScriptRevised { version: 1, .. }
        ));
        assert_eq!(
            events[2],
            CampaignEvent::ListsAttached {
                list_ids: vec![list]
            }
        );
        let state = given(&events);
        assert_eq!(state.status, Some(CampaignStatus::Draft));
        assert_eq!(
            decide(&state, create(vec![])),
            Err(CampaignError::AlreadyExists)
        );
    }

    #[test]
    fn a_copy_records_its_source_and_old_creations_load_without_one() {
        let source = CampaignId::new();
        let mut copy = create(vec![]);
        if let CampaignCommand::Create { copied_from, .. } = &mut copy {
            *copied_from = Some(source);
        }
        given_when_then::given(&[], evolve)
            .when(|state| match decide(state, copy.clone()) {
                Ok(events) => match &events[0] {
                    CampaignEvent::CampaignCreated { copied_from, .. } => *copied_from,
                    _ => None,
                },
                Err(_) => None,
            })
            .then(Some(source));
        let original = decide(&CampaignState::default(), create(vec![])).unwrap();
        let (_, data) = original[0].to_parts().unwrap();
        assert!(data.get("copied_from").is_none(), "{data}");
    }

    #[test]
    fn templates_with_unknown_fields_bad_braces_or_no_text_are_refused_by_location() {
        let revise = |text: &str, canned: &str| CampaignCommand::ReviseScript {
            script: ScriptDraft {
                initial_message: text.into(),
                canned_responses: vec![CannedResponse {
                    title: "t".into(),
                    body: canned.into(),
                }],
            },
            known_fields: vec!["ward".into()],
        };
        let state = given(&created(1));
        let err = decide(&state, revise("Hi {frist_name}", "ok")).unwrap_err();
        assert!(matches!(
            &err,
            CampaignError::Template { error: TemplateError::UnknownField { name, .. }, location, .. }
                if name == "frist_name" && location == "initial_message"
        ));
        let err = decide(&state, revise("Hi {first_name", "ok")).unwrap_err();
        assert!(
            err.to_string().starts_with("initial_message: unclosed"),
            "{err}"
        );
        let err = decide(&state, revise("  ", "ok")).unwrap_err();
        assert!(matches!(
            err,
            CampaignError::Template {
                error: TemplateError::Empty,
                ..
            }
        ));
        let err = decide(&state, revise("Hi", "in {precinct}")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("canned_responses[0].body: unknown field {precinct}")
        );
        assert!(decide(&state, revise("Hi {ward}", "{{literal}}")).is_ok());
    }

    #[test]
    fn script_revisions_count_up_and_are_refused_while_active_or_archived() {
        let history = created(1);
        let revise = || CampaignCommand::ReviseScript {
            script: script("Hello again"),
            known_fields: vec!["polling_place".into()],
        };
        let events = decide(&given(&history), revise()).unwrap();
        assert!(matches!(
            events[0],
            CampaignEvent::ScriptRevised { version: 2, .. }
        ));
        let history = with(
            with(history, &events),
            &[CampaignEvent::CampaignLaunched {}],
        );
        assert_eq!(
            decide(&given(&history), revise()),
            Err(CampaignError::ScriptLocked(CampaignStatus::Active))
        );
        let paused = with(history, &[CampaignEvent::CampaignPaused {}]);
        let events = decide(&given(&paused), revise()).unwrap();
        assert!(matches!(
            events[0],
            CampaignEvent::ScriptRevised { version: 3, .. }
        ));
        let archived = with(paused, &[CampaignEvent::CampaignArchived {}]);
        assert_eq!(
            decide(&given(&archived), revise()),
            Err(CampaignError::ScriptLocked(CampaignStatus::Archived))
        );
    }

    #[test]
    fn the_lifecycle_allows_only_its_transitions() {
        use Transition::*;
        let step = |history: &[CampaignEvent], t| decide(&given(history), step(t));
        let draft = created(1);
        assert_eq!(
            step(&draft, Launch),
            Ok(vec![CampaignEvent::CampaignLaunched {}])
        );
        for t in [Pause, Resume] {
            assert!(matches!(
                step(&draft, t),
                Err(CampaignError::IllegalTransition {
                    from: CampaignStatus::Draft,
                    ..
                })
            ));
        }
        let active = with(draft.clone(), &[CampaignEvent::CampaignLaunched {}]);
        assert!(step(&active, Launch).is_err());
        assert!(step(&active, Resume).is_err());
        let paused = with(active.clone(), &[CampaignEvent::CampaignPaused {}]);
        assert!(step(&paused, Launch).is_err());
        assert_eq!(
            step(&paused, Resume),
            Ok(vec![CampaignEvent::CampaignResumed {}])
        );
        for history in [&draft, &active, &paused] {
            assert_eq!(
                step(history, Archive),
                Ok(vec![CampaignEvent::CampaignArchived {}])
            );
        }
        let archived = with(paused.clone(), &[CampaignEvent::CampaignArchived {}]);
        for t in [Launch, Pause, Resume, Archive] {
            assert!(step(&archived, t).is_err());
        }
        let err = step(&paused, Launch).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot launch a campaign that is paused; launch needs a campaign that is draft"
        );
        assert!(
            step(&archived, Archive)
                .unwrap_err()
                .to_string()
                .ends_with("draft, active or paused")
        );
    }

    #[test]
    fn launching_waits_for_the_contacts_to_be_copied_pausing_does_not() {
        let copying = |step| CampaignCommand::Transition {
            step,
            carrier_ready: true,
            contacts_ready: false,
        };
        given_when_then::given(&created(1), evolve)
            .when(|state| decide(state, copying(Transition::Launch)))
            .then(Err(CampaignError::ContactsCopying));
        given_when_then::given(&created(1), evolve)
            .when(|state| decide(state, step(Transition::Launch)))
            .then(Ok(vec![CampaignEvent::CampaignLaunched {}]));
        let active = with(created(1), &[CampaignEvent::CampaignLaunched {}]);
        given_when_then::given(&active, evolve)
            .when(|state| decide(state, copying(Transition::Pause)))
            .then(Ok(vec![CampaignEvent::CampaignPaused {}]));
        assert_eq!(contacts_in_place(true), Ok(()));
        assert_eq!(
            contacts_in_place(false),
            Err(CampaignError::ContactsCopying)
        );
    }

    #[test]
    fn launching_needs_a_list() {
        assert_eq!(
            decide(&given(&created(0)), step(Transition::Launch)),
            Err(CampaignError::NoLists)
        );
    }

    #[test]
    fn launching_and_resuming_need_a_carrier_pausing_and_archiving_do_not() {
        let without_carrier = |step| CampaignCommand::Transition {
            step,
            carrier_ready: false,
            contacts_ready: true,
        };
        given_when_then::given(&created(1), evolve)
            .when(|state| decide(state, without_carrier(Transition::Launch)))
            .then(Err(CampaignError::NoCarrier(Transition::Launch)));
        let active = with(created(1), &[CampaignEvent::CampaignLaunched {}]);
        given_when_then::given(&active, evolve)
            .when(|state| decide(state, without_carrier(Transition::Pause)))
            .then(Ok(vec![CampaignEvent::CampaignPaused {}]));
        let paused = with(active, &[CampaignEvent::CampaignPaused {}]);
        given_when_then::given(&paused, evolve)
            .when(|state| decide(state, without_carrier(Transition::Resume)))
            .then(Err(CampaignError::NoCarrier(Transition::Resume)));
        given_when_then::given(&paused, evolve)
            .when(|state| decide(state, without_carrier(Transition::Archive)))
            .then(Ok(vec![CampaignEvent::CampaignArchived {}]));
        given_when_then::given(&paused, evolve)
            .when(|state| decide(state, step(Transition::Resume)))
            .then(Ok(vec![CampaignEvent::CampaignResumed {}]));
        assert!(
            CampaignError::NoCarrier(Transition::Launch)
                .to_string()
                .starts_with("cannot launch the campaign: the organization has no carrier")
        );
    }

    #[test]
    fn commands_on_a_missing_campaign_are_refused() {
        assert_eq!(
            decide(&CampaignState::default(), step(Transition::Pause)),
            Err(CampaignError::NoSuchCampaign)
        );
    }

    #[test]
    fn texting_hours_are_strict_hh_mm_with_start_before_end() {
        let window = parse_texting_hours("08:30", "21:00").unwrap();
        assert_eq!(window.start().to_string(), "08:30:00");
        for (start, end) in [
            ("9:00", "20:00"),
            ("09:00", "24:00"),
            ("09:00:00", "20:00"),
            ("nine", "20:00"),
            ("09:60", "20:00"),
            ("+9:00", "20:00"),
        ] {
            let err = parse_texting_hours(start, end).unwrap_err();
            assert!(err.to_string().contains("HH:MM"), "{start}-{end}: {err}");
        }
        let err = parse_texting_hours("20:00", "09:00").unwrap_err();
        assert!(
            err.to_string().contains("must start before they end"),
            "{err}"
        );
        assert!(parse_texting_hours("09:00", "09:00").is_err());
    }

    #[test]
    fn questions_need_plain_unique_ids_text_and_answers() {
        let bad = |question: Question| {
            let CampaignCommand::Create {
                campaign_id,
                org_id,
                name,
                script,
                texting_hours,
                assignment_batch_size,
                batch_rules,
                list_ids,
                known_fields,
                ..
            } = create(vec![])
            else {
                unreachable!()
            };
            decide(
                &CampaignState::default(),
                CampaignCommand::Create {
                    campaign_id,
                    org_id,
                    name,
                    script,
                    questions: vec![question],
                    texting_hours,
                    assignment_batch_size,
                    batch_rules,
                    copied_from: None,
                    list_ids,
                    known_fields,
                },
            )
            .unwrap_err()
            .to_string()
        };
        let q = |id: &str, text: &str, answers: &[&str]| Question {
            id: id.into(),
            text: text.into(),
            answers: answers.iter().map(|a| (*a).to_owned()).collect(),
        };
        assert!(bad(q("a b", "Q?", &["y"])).starts_with("questions[0].id"));
        assert!(bad(q("a", " ", &["y"])).starts_with("questions[0].text"));
        assert!(bad(q("a", "Q?", &[])).starts_with("questions[0].answers"));
        assert!(bad(q("a", "Q?", &["y", "y"])).starts_with("questions[0].answers[1]"));
    }

    #[test]
    fn lifecycle_events_round_trip_through_the_store_shape() {
        let (event_type, data) = CampaignEvent::CampaignPaused {}.to_parts().unwrap();
        assert_eq!(event_type, "CampaignPaused");
        assert_eq!(
            CampaignEvent::from_parts(&event_type, &data).unwrap(),
            Some(CampaignEvent::CampaignPaused {})
        );
        let (event_type, data) = created(1)[0].to_parts().unwrap();
        assert_eq!(data["texting_hours"]["start"], "09:00:00");
        assert!(
            CampaignEvent::from_parts(&event_type, &data)
                .unwrap()
                .is_some()
        );
    }

    fn phones(n: u64) -> Vec<PhoneNumber> {
        (0..n)
            .map(|i| PhoneNumber::from_e164(&format!("+1555201{i:04}")).unwrap())
            .collect()
    }

    #[test]
    fn the_batch_size_defaults_to_100_is_bounded_and_old_events_load_with_the_default() {
        assert_eq!(given(&created(1)).assignment_batch_size, 100);
        let with_size = |size| {
            let CampaignCommand::Create {
                campaign_id,
                org_id,
                name,
                script,
                questions,
                texting_hours,
                list_ids,
                known_fields,
                ..
            } = create(vec![])
            else {
                unreachable!()
            };
            decide(
                &CampaignState::default(),
                CampaignCommand::Create {
                    campaign_id,
                    org_id,
                    name,
                    script,
                    questions,
                    texting_hours,
                    assignment_batch_size: Some(size),
                    batch_rules: BatchRules::default(),
                    copied_from: None,
                    list_ids,
                    known_fields,
                },
            )
        };
        assert_eq!(
            given(&with_size(1_000).unwrap()).assignment_batch_size,
            1_000
        );
        for size in [0, 1_001] {
            let err = with_size(size).unwrap_err().to_string();
            assert!(
                err.starts_with("assignment_batch_size must be 1–1000"),
                "{err}"
            );
        }
        // A CampaignCreated recorded before the field existed.
        let (event_type, mut data) = created(1)[0].to_parts().unwrap();
        data.as_object_mut()
            .unwrap()
            .remove("assignment_batch_size");
        let old = CampaignEvent::from_parts(&event_type, &data)
            .unwrap()
            .unwrap();
        assert_eq!(
            given(&[old]).assignment_batch_size,
            DEFAULT_ASSIGNMENT_BATCH_SIZE
        );
    }

    #[test]
    fn assignments_are_chunked_and_refused_once_archived() {
        let texter = MemberId::new();
        let history = created(1);
        let assign = |phones| CampaignCommand::Assign {
            texter_id: texter,
            phones,
        };
        let events = decide(&given(&history), assign(phones(2_500))).unwrap();
        let sizes: Vec<usize> = events
            .iter()
            .map(|event| match event {
                CampaignEvent::ContactsAssigned { texter_id, phones } if *texter_id == texter => {
                    phones.len()
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(sizes, [1_000, 1_000, 500]);
        assert_eq!(decide(&given(&history), assign(vec![])), Ok(vec![]));
        let archived = with(history, &[CampaignEvent::CampaignArchived {}]);
        let closed = Err(CampaignError::AssignmentsClosed(CampaignStatus::Archived));
        assert_eq!(decide(&given(&archived), assign(vec![])), closed);
        assert_eq!(
            decide(
                &given(&archived),
                CampaignCommand::Release {
                    texter_id: texter,
                    phones: phones(1)
                }
            ),
            closed
        );
        assert_eq!(
            decide(&CampaignState::default(), assign(phones(1))),
            Err(CampaignError::NoSuchCampaign)
        );
    }

    #[test]
    fn texters_request_contacts_only_from_an_active_campaign() {
        let texter = MemberId::new();
        let request = || CampaignCommand::Request {
            texter_id: texter,
            phones: phones(3),
        };
        let draft = created(1);
        assert_eq!(
            decide(&given(&draft), request()),
            Err(CampaignError::NotActive(CampaignStatus::Draft))
        );
        let active = with(draft, &[CampaignEvent::CampaignLaunched {}]);
        assert_eq!(
            decide(&given(&active), request()),
            Ok(vec![CampaignEvent::ContactsAssigned {
                texter_id: texter,
                phones: phones(3)
            }])
        );
        let paused = with(active, &[CampaignEvent::CampaignPaused {}]);
        assert!(
            decide(&given(&paused), request())
                .unwrap_err()
                .to_string()
                .ends_with("it is paused")
        );
    }

    #[test]
    fn reassignment_releases_and_assigns_in_one_decision() {
        let (from, to) = (MemberId::new(), MemberId::new());
        let state = given(&created(1));
        assert_eq!(
            decide(
                &state,
                CampaignCommand::Reassign {
                    from,
                    to,
                    phones: phones(2)
                }
            ),
            Ok(vec![
                CampaignEvent::ContactsReleased {
                    texter_id: from,
                    phones: phones(2)
                },
                CampaignEvent::ContactsAssigned {
                    texter_id: to,
                    phones: phones(2)
                },
            ])
        );
        assert!(matches!(
            decide(
                &state,
                CampaignCommand::Reassign {
                    from,
                    to: from,
                    phones: phones(2)
                }
            ),
            Err(CampaignError::Invalid {
                field: "to_texter_id",
                ..
            })
        ));
    }

    #[test]
    fn batch_rules_cap_a_batch_at_the_holding_limit_and_wait_for_replies() {
        let rules = |held, waiting| BatchRules {
            max_contacts_held: held,
            max_replies_waiting: waiting,
        };
        let load = |held, replies_waiting| TexterLoad {
            held,
            replies_waiting,
        };
        let with_rules = |rules: BatchRules| {
            with(
                created(1),
                &[CampaignEvent::SettingsChanged {
                    name: "GOTV".into(),
                    texting_hours: TextingWindow::default(),
                    assignment_batch_size: 100,
                    batch_rules: rules,
                }],
            )
        };
        // No rules: whatever is asked.
        given_when_then::given(&created(1), evolve)
            .when(|state| allowed_batch(state, 100, load(5_000, 5_000)))
            .then(Ok(100));
        given_when_then::given(&with_rules(rules(Some(120), None)), evolve)
            .when(|state| allowed_batch(state, 100, load(50, 0)))
            .then(Ok(70));
        given_when_then::given(&with_rules(rules(Some(120), None)), evolve)
            .when(|state| allowed_batch(state, 100, load(120, 0)))
            .then(Err(CampaignError::HoldingLimit {
                held: 120,
                max: 120,
            }));
        // "More than M" waiting: M itself is still fine.
        given_when_then::given(&with_rules(rules(None, Some(3))), evolve)
            .when(|state| allowed_batch(state, 100, load(0, 3)))
            .then(Ok(100));
        given_when_then::given(&with_rules(rules(Some(500), Some(3))), evolve)
            .when(|state| allowed_batch(state, 100, load(0, 4)))
            .then(Err(CampaignError::RepliesWaiting { waiting: 4, max: 3 }));
        // Bounds, and old events without rules load with none.
        let change = |rules| CampaignCommand::ChangeSettings {
            name: "GOTV".into(),
            texting_hours: TextingWindow::default(),
            assignment_batch_size: 100,
            batch_rules: rules,
        };
        for bad in [
            rules(Some(0), None),
            rules(None, Some(MAX_REPLIES_WAITING + 1)),
        ] {
            assert!(matches!(
                decide(&given(&created(1)), change(bad)),
                Err(CampaignError::Invalid { .. })
            ));
        }
        assert_eq!(
            decide(&given(&created(1)), change(rules(None, Some(0)))),
            Ok(vec![CampaignEvent::SettingsChanged {
                name: "GOTV".into(),
                texting_hours: TextingWindow::default(),
                assignment_batch_size: 100,
                batch_rules: rules(None, Some(0)),
            }])
        );
        let (_, data) = CampaignEvent::SettingsChanged {
            name: "GOTV".into(),
            texting_hours: TextingWindow::default(),
            assignment_batch_size: 100,
            batch_rules: BatchRules::default(),
        }
        .to_parts()
        .unwrap();
        assert!(data.get("batch_rules").is_none(), "{data}");
        let old = CampaignEvent::from_parts("SettingsChanged", &data)
            .unwrap()
            .unwrap();
        assert_eq!(
            given(&with(created(1), &[old])).batch_rules,
            BatchRules::default()
        );
    }
}
