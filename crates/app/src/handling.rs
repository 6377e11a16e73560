//! Handling conversations: the organization's tags, tagging a
//! conversation, escalating it to staff and resolving that, reassigning
//! and releasing it. Each change is decided on the conversation's
//! recipient stream (`textbank_domain::handling`), one command per
//! conversation, so it races a reply or another change safely.

use serde::Serialize;
use textbank_domain::handling::{self, Actor, Handling, HandlingError, TagInfo};
use textbank_domain::org::{self, OrgEvent, OrgState, Tag};
use textbank_domain::phone::PhoneNumber;
use textbank_domain::recipient::{self, RecipientEvent, RecipientState};
use textbank_domain::{CampaignId, ConversationId, MemberId, Permission, Role};
use textbank_projections::conversations::ConversationRow;
use textbank_projections::directory;
use textbank_projections::inbox::{self, Inbox, InboxFilter};
use uuid::Uuid;

use crate::command::{self, execute};
use crate::conversation::INTEGRATIONS_READ_THE_FEED;
use crate::inbox::{self as inbox_app, InboxRequest};
use crate::{App, AppError, Caller};

/// Conversations one "release my replies" reads per page.
const MAX_RELEASE: u32 = 1_000;
/// Most conversations one bulk reassignment handles.
pub const MAX_BULK: usize = 10_000;

/// Which conversations a bulk action is for.
#[derive(Debug, Clone)]
pub enum Selection {
    /// These, by id.
    Ids(Vec<ConversationId>),
    /// Every conversation the inbox query matches (its cursor and limit
    /// are ignored).
    Matching(InboxRequest),
}

/// One conversation a bulk action could not change, and why.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BulkFailure {
    pub conversation_id: ConversationId,
    pub code: String,
    pub message: String,
}

/// What a bulk reassignment did: one command per conversation, each
/// applied or failed on its own.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BulkOutcome {
    /// Conversations selected.
    pub selected: u64,
    /// Handed on (or released).
    pub changed: u64,
    /// Already where they were to go.
    pub unchanged: u64,
    pub failures: Vec<BulkFailure>,
    /// More than the most one request handles matched; ask again for the
    /// rest.
    pub more: bool,
    /// The last change's log position, if anything changed.
    pub position: Option<u64>,
}

/// A staff decision handing a conversation on: (state, conversation, by,
/// to).
type HandOn = fn(
    &RecipientState,
    ConversationId,
    Option<MemberId>,
    Option<MemberId>,
) -> Result<Vec<RecipientEvent>, HandlingError>;

/// What a change to a conversation wrote.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Handled {
    pub conversation_id: ConversationId,
    /// texter, pool or escalated, after the change.
    pub holder: handling::Holder,
    /// The texter who holds it now, if one does.
    pub texter_id: Option<MemberId>,
    /// The log position of the change (none when nothing changed): pass it
    /// as `min_position`.
    pub position: Option<u64>,
}

/// What "release my replies" gave back.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReleasedMine {
    pub released: u64,
    /// The last change's log position, if anything changed.
    pub position: Option<u64>,
}

impl From<HandlingError> for AppError {
    fn from(err: HandlingError) -> Self {
        match err {
            HandlingError::NoSuchConversation => Self::NotFound("conversation"),
            HandlingError::NoLongerYours => Self::ForbiddenBy {
                code: "not_assigned",
                message: "this conversation is no longer yours".into(),
            },
            HandlingError::AlreadyEscalated => Self::ConflictBy {
                code: "already_escalated",
                message: err.to_string(),
            },
            HandlingError::NotEscalated => Self::ConflictBy {
                code: "not_escalated",
                message: err.to_string(),
            },
            HandlingError::Invalid(message) => Self::Invalid {
                field: "reason",
                message,
            },
        }
    }
}

fn corrupt(err: impl std::fmt::Display) -> AppError {
    AppError::Inconsistent(err.to_string())
}

/// How the caller acts on conversations: texters on theirs, staff on all;
/// `act` false for reading only (compliance reads too).
fn actor(caller: &Caller, act: bool) -> Result<Actor, AppError> {
    match caller.role {
        Role::Texter => caller.member_id.map(Actor::Texter).ok_or_else(|| {
            AppError::Forbidden("a texter's key must be bound to the texter".into())
        }),
        Role::Owner | Role::Admin | Role::Manager => Ok(Actor::Staff(caller.member_id)),
        Role::Compliance if !act => Ok(Actor::Staff(caller.member_id)),
        Role::Compliance => Err(AppError::forbidden(
            caller.role,
            Permission::ManageConversations,
        )),
        Role::Integration => Err(AppError::Forbidden(INTEGRATIONS_READ_THE_FEED.into())),
    }
}

impl App {
    /// The conversation if the caller may see it (`act`: act in it): staff
    /// any of the org's, a texter only while holding it. Another org's, or
    /// one a texter never held, is a 404; one a texter held before is a 403.
    /// Decided on a fresh read of the recipient stream, so a texter loses a
    /// conversation the moment it is handed on. The row's `texter_id` is
    /// the conversation's texter now.
    pub(crate) async fn conversation_in_reach(
        &self,
        caller: &Caller,
        id: ConversationId,
        act: bool,
    ) -> Result<ConversationRow, AppError> {
        let actor = actor(caller, act)?;
        let mut conversation = self.conversation_for(caller, id).await?;
        let state = self.recipient_state(caller, &conversation).await?;
        let handling = handling::check_access(&state, id, actor)?;
        conversation.texter_id = handling.reference.texter_id;
        Ok(conversation)
    }

    async fn recipient_state(
        &self,
        caller: &Caller,
        conversation: &ConversationRow,
    ) -> Result<RecipientState, AppError> {
        let phone = PhoneNumber::from_e164(&conversation.phone).map_err(corrupt)?;
        let stream = recipient::stream_id(caller.org_id, &phone);
        Ok(command::load::<RecipientEvent>(self.events(), &stream)
            .await?
            .state)
    }

    /// The org's tags (texters read them to apply them).
    pub async fn tags(&self, caller: &Caller) -> Result<Vec<Tag>, AppError> {
        actor(caller, false)?;
        Ok(self.org_state(caller).await?.tags.into_values().collect())
    }

    async fn org_state(&self, caller: &Caller) -> Result<OrgState, AppError> {
        Ok(
            command::load::<OrgEvent>(self.events(), &org::stream_id(caller.org_id))
                .await?
                .state,
        )
    }

    /// Defines a tag (`tag_id` none) or changes one.
    pub async fn write_tag(
        &self,
        caller: &Caller,
        tag_id: Option<Uuid>,
        name: &str,
        description: &str,
        escalates: bool,
    ) -> Result<(Tag, Option<u64>), AppError> {
        caller.require(Permission::ManageConversations)?;
        let stream = org::stream_id(caller.org_id);
        let tag = Tag {
            tag_id: tag_id.unwrap_or_else(Uuid::now_v7),
            name: name.to_owned(),
            description: description.to_owned(),
            escalates,
        };
        let changing = tag_id.is_some();
        let position = execute(self, &stream, &caller.metadata(), |state: &OrgState| {
            if changing && !state.tags.contains_key(&tag.tag_id) {
                return Err(AppError::NotFound("tag"));
            }
            Ok(org::decide_tag(state, tag.clone())?)
        })
        .await?;
        let written = self
            .org_state(caller)
            .await?
            .tags
            .remove(&tag.tag_id)
            .ok_or_else(|| corrupt("a tag just written is missing"))?;
        Ok((written, position))
    }

    /// Deletes a tag: it can no longer be applied. The log position, none
    /// when it was deleted already.
    pub async fn delete_tag(&self, caller: &Caller, tag_id: Uuid) -> Result<Option<u64>, AppError> {
        caller.require(Permission::ManageConversations)?;
        let stream = org::stream_id(caller.org_id);
        execute(self, &stream, &caller.metadata(), |state: &OrgState| {
            Ok(org::decide_delete_tag(state, tag_id)?)
        })
        .await
    }

    /// Applies a tag to a conversation (or removes it); an escalating tag
    /// escalates the conversation.
    pub async fn tag_conversation(
        &self,
        caller: &Caller,
        id: ConversationId,
        tag_id: Uuid,
        apply: bool,
    ) -> Result<Handled, AppError> {
        let actor = actor(caller, true)?;
        let org = self.org_state(caller).await?;
        let tag = match org.tags.get(&tag_id) {
            Some(tag) => TagInfo {
                tag_id,
                name: tag.name.clone(),
                escalates: tag.escalates,
            },
            // A deleted tag may still be taken off.
            None if !apply => TagInfo {
                tag_id,
                name: String::new(),
                escalates: false,
            },
            None => return Err(AppError::NotFound("tag")),
        };
        self.handle(caller, id, |state| {
            let mut tag = tag.clone();
            if let Some(name) = state
                .handling
                .get(&id)
                .and_then(|handling| handling.tags.get(&tag_id))
            {
                tag.name.clone_from(name);
            }
            handling::decide_tag(state, id, actor, &tag, apply)
        })
        .await
    }

    /// A texter (or staff) escalates the conversation to staff.
    pub async fn escalate(
        &self,
        caller: &Caller,
        id: ConversationId,
        reason: &str,
    ) -> Result<Handled, AppError> {
        let actor = actor(caller, true)?;
        self.handle(caller, id, |state| {
            handling::decide_escalate(state, id, actor, reason)
        })
        .await
    }

    /// Staff resolve an escalation, sending the conversation to `texter`
    /// (or back to the texter who escalated it).
    pub async fn resolve_escalation(
        &self,
        caller: &Caller,
        id: ConversationId,
        texter: Option<MemberId>,
    ) -> Result<Handled, AppError> {
        self.hand_on(caller, id, texter, handling::decide_resolve)
            .await
    }

    /// Staff hand the conversation to `texter`, or release it to the
    /// campaign's pool (`None`).
    pub async fn reassign_conversation(
        &self,
        caller: &Caller,
        id: ConversationId,
        texter: Option<MemberId>,
    ) -> Result<Handled, AppError> {
        self.hand_on(caller, id, texter, handling::decide_reassign)
            .await
    }

    /// Staff hand the conversation on to `texter` (or to nobody) as
    /// `decide` says.
    async fn hand_on(
        &self,
        caller: &Caller,
        id: ConversationId,
        texter: Option<MemberId>,
        decide: HandOn,
    ) -> Result<Handled, AppError> {
        caller.require(Permission::ManageConversations)?;
        self.check_texter(caller, id, texter).await?;
        self.handle(caller, id, |state| {
            decide(state, id, caller.member_id, texter)
        })
        .await
    }

    /// Message review's bulk action: hands each selected conversation to
    /// `texter`, or releases it to its campaign's pool (`None`), one
    /// command per conversation; a failure is reported and undoes nothing.
    pub async fn bulk_reassign(
        &self,
        caller: &Caller,
        selection: Selection,
        texter: Option<MemberId>,
    ) -> Result<BulkOutcome, AppError> {
        caller.require(Permission::ManageConversations)?;
        if let Some(texter) = texter {
            self.check_member_is_texter(caller, texter).await?;
        }
        let (ids, more) = match selection {
            Selection::Ids(ids) => {
                if ids.is_empty() || ids.len() > MAX_BULK {
                    return Err(AppError::invalid(
                        "conversation_ids",
                        format!("give 1 to {MAX_BULK} conversation ids"),
                    ));
                }
                (ids, false)
            }
            Selection::Matching(request) => self.matching(caller, request).await?,
        };
        let mut outcome = BulkOutcome {
            selected: ids.len() as u64,
            changed: 0,
            unchanged: 0,
            failures: Vec::new(),
            more,
            position: None,
        };
        for id in ids {
            let handed = self
                .handle(caller, id, |state| {
                    handling::decide_reassign(state, id, caller.member_id, texter)
                })
                .await;
            match handed {
                Ok(Handled {
                    position: Some(position),
                    ..
                }) => {
                    outcome.changed += 1;
                    outcome.position = outcome.position.max(Some(position));
                }
                Ok(_) => outcome.unchanged += 1,
                Err(err) => outcome.failures.push(BulkFailure {
                    conversation_id: id,
                    code: err.code().to_owned(),
                    message: err.public_message(),
                }),
            }
        }
        Ok(outcome)
    }

    /// The ids of the conversations `request` matches (at most
    /// [`MAX_BULK`]), and whether more matched.
    async fn matching(
        &self,
        caller: &Caller,
        mut request: InboxRequest,
    ) -> Result<(Vec<ConversationId>, bool), AppError> {
        request.cursor = None;
        request.limit = Some(inbox_app::MAX_LIMIT);
        let mut ids = Vec::new();
        loop {
            let page = self.inbox(caller, request.clone()).await?;
            ids.extend(page.conversations.iter().map(|row| row.conversation_id));
            if ids.len() > MAX_BULK {
                ids.truncate(MAX_BULK);
                return Ok((ids, true));
            }
            match page.next_cursor {
                Some(cursor) => {
                    request.cursor = Some(cursor);
                    // Later pages need not wait again.
                    request.min_position = None;
                }
                None => return Ok((ids, false)),
            }
        }
    }

    /// "Release my replies": the texter gives back the conversations they
    /// hold (in `campaign`, or all), to the campaigns' pools; one command
    /// per conversation, each on its own stream.
    pub async fn release_mine(
        &self,
        caller: &Caller,
        campaign: Option<CampaignId>,
    ) -> Result<ReleasedMine, AppError> {
        caller.require(Permission::Send)?;
        let Actor::Texter(me) = actor(caller, true)? else {
            return Err(AppError::forbidden(caller.role, Permission::Send));
        };
        if let Some(campaign) = campaign {
            self.sending_campaign(caller, campaign, None).await?;
        }
        let projector = Inbox::live();
        let head = self.events().head_position().await?;
        self.wait_for_projection(&projector, head).await?;
        let filter = InboxFilter {
            org: caller.org_id,
            texter: Some(me),
            campaign,
            needs_reply: false,
            holder: Some(handling::Holder::Texter),
            tag: None,
            with_lost: false,
            review: Default::default(),
        };
        let mut released = ReleasedMine {
            released: 0,
            position: None,
        };
        let mut before = None;
        loop {
            let page = inbox::page(self.database(), &filter, before, MAX_RELEASE).await?;
            for row in &page {
                let phone = PhoneNumber::from_e164(&row.phone).map_err(corrupt)?;
                let stream = recipient::stream_id(caller.org_id, &phone);
                let id = row.conversation_id;
                let position = execute(self, &stream, &caller.metadata(), |state| {
                    Ok(handling::decide_release_mine(state, id, me))
                })
                .await?;
                if position.is_some() {
                    released.released += 1;
                    released.position = position.max(released.position);
                }
            }
            match page.last() {
                Some(last) if page.len() == MAX_RELEASE as usize => {
                    before = Some(last.last_position);
                }
                _ => return Ok(released),
            }
        }
    }

    /// `texter`, if given, is a member of the org with the texter role (a
    /// 422 otherwise), once the conversation is known to be the org's (a
    /// 404 first).
    async fn check_texter(
        &self,
        caller: &Caller,
        id: ConversationId,
        texter: Option<MemberId>,
    ) -> Result<(), AppError> {
        let Some(texter) = texter else {
            return Ok(());
        };
        self.conversation_for(caller, id).await?;
        self.check_member_is_texter(caller, texter).await
    }

    /// A member of the org with the texter role, or a 422.
    async fn check_member_is_texter(
        &self,
        caller: &Caller,
        texter: MemberId,
    ) -> Result<(), AppError> {
        match directory::member(self.database(), caller.org_id, texter).await? {
            Some(member) if member.role == Role::Texter => Ok(()),
            _ => Err(AppError::invalid(
                "texter_id",
                "texter_id must name a texter of the organization",
            )),
        }
    }

    /// Decides a change on the conversation's recipient stream.
    async fn handle(
        &self,
        caller: &Caller,
        id: ConversationId,
        mut decide: impl FnMut(&RecipientState) -> Result<Vec<RecipientEvent>, HandlingError>,
    ) -> Result<Handled, AppError> {
        let conversation = self.conversation_for(caller, id).await?;
        let phone = PhoneNumber::from_e164(&conversation.phone).map_err(corrupt)?;
        let stream = recipient::stream_id(caller.org_id, &phone);
        let mut after: Option<Handling> = None;
        let position = execute(self, &stream, &caller.metadata(), |state| {
            let events = decide(state)?;
            let folded = events.iter().fold(state.clone(), |state, event| {
                recipient::evolve(state, event)
            });
            after = folded.handling.get(&id).cloned();
            Ok(events)
        })
        .await?;
        let after = after.ok_or(AppError::NotFound("conversation"))?;
        Ok(Handled {
            conversation_id: id,
            holder: after.holder(),
            texter_id: after.texter,
            position,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_texter_who_held_the_conversation_is_told_it_moved() {
        let err = AppError::from(HandlingError::NoLongerYours);
        assert!(matches!(
            err,
            AppError::ForbiddenBy {
                code: "not_assigned",
                ..
            }
        ));
        assert!(matches!(
            AppError::from(HandlingError::NoSuchConversation),
            AppError::NotFound("conversation")
        ));
    }
}
