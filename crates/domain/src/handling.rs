//! How a conversation is handled, on its recipient stream: who holds it (a
//! texter, the campaign's pool, or staff after an escalation), its tags,
//! and the decisions that change them. They are decided on the same stream
//! version as a reply click, so two reassignments, or a reassignment and a
//! reply, are settled by the stream: one wins, the other is decided again
//! on what it did (ADR 0033).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ids::{ConversationId, MemberId};
use crate::recipient::{ConversationRef, RecipientEvent, RecipientState};

/// Longest escalation reason.
pub const MAX_REASON_CHARS: usize = 500;

/// Where a conversation is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Holder {
    /// In its texter's inbox.
    Texter,
    /// Released to the campaign's pool: no texter's, until staff hand it out.
    Pool,
    /// Escalated: in the staff's escalation queue, no texter's.
    Escalated,
}

impl Holder {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Texter => "texter",
            Self::Pool => "pool",
            Self::Escalated => "escalated",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Texter, Self::Pool, Self::Escalated]
            .into_iter()
            .find(|holder| holder.as_str() == text)
    }
}

/// A conversation's handling, folded from its stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handling {
    pub reference: ConversationRef,
    /// The texter who holds it; `None` while it is in the pool or escalated.
    pub texter: Option<MemberId>,
    /// Why it was escalated, while it is.
    pub escalation: Option<String>,
    /// The texter it was escalated from.
    pub escalated_from: Option<MemberId>,
    /// Applied tags, by id, with their names when applied.
    pub tags: BTreeMap<Uuid, String>,
    /// Texters who held it before: they are told it moved (403), not that
    /// it does not exist.
    pub former_texters: BTreeSet<MemberId>,
}

impl Handling {
    pub fn opened(reference: ConversationRef) -> Self {
        Self {
            reference,
            texter: Some(reference.texter_id),
            escalation: None,
            escalated_from: None,
            tags: BTreeMap::new(),
            former_texters: BTreeSet::new(),
        }
    }

    pub fn holder(&self) -> Holder {
        match (&self.escalation, self.texter) {
            (Some(_), _) => Holder::Escalated,
            (None, Some(_)) => Holder::Texter,
            (None, None) => Holder::Pool,
        }
    }

    /// Hands the conversation to `texter` (or to nobody).
    fn hand_to(&mut self, texter: Option<MemberId>) {
        if let Some(current) = self.texter
            && Some(current) != texter
        {
            self.former_texters.insert(current);
        }
        self.texter = texter;
        if let Some(texter) = texter {
            self.former_texters.remove(&texter);
            self.reference.texter_id = texter;
        }
    }
}

/// Who acts on a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// A texter: only on the conversations they hold.
    Texter(MemberId),
    /// Owners, admins and managers (the member, when the key has one).
    Staff(Option<MemberId>),
}

impl Actor {
    fn member(self) -> Option<MemberId> {
        match self {
            Self::Texter(member) => Some(member),
            Self::Staff(member) => member,
        }
    }
}

/// A tag as the organization defines it, looked up before deciding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagInfo {
    pub tag_id: Uuid,
    pub name: String,
    pub escalates: bool,
}

/// Why a conversation command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandlingError {
    #[error("no such conversation")]
    NoSuchConversation,
    /// The texter held it once; it is someone else's (or staff's) now.
    #[error("this conversation is no longer yours")]
    NoLongerYours,
    #[error("the conversation is already escalated")]
    AlreadyEscalated,
    #[error("the conversation is not escalated")]
    NotEscalated,
    #[error("{0}")]
    Invalid(String),
}

/// The conversation's handling if `actor` may act on it: staff always, a
/// texter only while holding it.
pub fn check_access(
    state: &RecipientState,
    id: ConversationId,
    actor: Actor,
) -> Result<&Handling, HandlingError> {
    let handling = state
        .handling
        .get(&id)
        .ok_or(HandlingError::NoSuchConversation)?;
    match actor {
        Actor::Staff(_) => Ok(handling),
        Actor::Texter(me) if handling.texter == Some(me) => Ok(handling),
        Actor::Texter(me) if handling.former_texters.contains(&me) => {
            Err(HandlingError::NoLongerYours)
        }
        Actor::Texter(_) => Err(HandlingError::NoSuchConversation),
    }
}

/// Applies (or removes) a tag. Applying an escalating tag to a conversation
/// not yet escalated escalates it too, with the tag's name as the reason.
/// A tag already applied (or already absent) changes nothing.
pub fn decide_tag(
    state: &RecipientState,
    id: ConversationId,
    actor: Actor,
    tag: &TagInfo,
    apply: bool,
) -> Result<Vec<RecipientEvent>, HandlingError> {
    let handling = check_access(state, id, actor)?;
    let conversation = handling.reference;
    let by = actor.member();
    let present = handling.tags.contains_key(&tag.tag_id);
    let mut events = Vec::new();
    if apply && !present {
        events.push(RecipientEvent::TagApplied {
            conversation,
            tag_id: tag.tag_id,
            name: tag.name.clone(),
            by,
        });
        if tag.escalates && handling.escalation.is_none() {
            events.push(RecipientEvent::ConversationEscalated {
                conversation,
                reason: format!("tagged {}", tag.name),
                tag_id: Some(tag.tag_id),
                by,
            });
        }
    } else if !apply && present {
        events.push(RecipientEvent::TagRemoved {
            conversation,
            tag_id: tag.tag_id,
            name: tag.name.clone(),
            by,
        });
    }
    Ok(events)
}

/// Escalates the conversation to staff with a reason: it leaves its
/// texter's inbox.
pub fn decide_escalate(
    state: &RecipientState,
    id: ConversationId,
    actor: Actor,
    reason: &str,
) -> Result<Vec<RecipientEvent>, HandlingError> {
    let handling = check_access(state, id, actor)?;
    if handling.escalation.is_some() {
        return Err(HandlingError::AlreadyEscalated);
    }
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
        return Err(HandlingError::Invalid(format!(
            "reason must be 1 to {MAX_REASON_CHARS} characters"
        )));
    }
    Ok(vec![RecipientEvent::ConversationEscalated {
        conversation: handling.reference,
        reason: reason.to_owned(),
        tag_id: None,
        by: actor.member(),
    }])
}

/// Staff resolve an escalation: the conversation goes to `texter`, or back
/// to the texter who escalated it, or (when it had none) to the pool.
pub fn decide_resolve(
    state: &RecipientState,
    id: ConversationId,
    by: Option<MemberId>,
    texter: Option<MemberId>,
) -> Result<Vec<RecipientEvent>, HandlingError> {
    let handling = check_access(state, id, Actor::Staff(by))?;
    if handling.escalation.is_none() {
        return Err(HandlingError::NotEscalated);
    }
    let returned_to = texter.or(handling.escalated_from);
    Ok(vec![resolved(handling, returned_to, by)])
}

fn resolved(
    handling: &Handling,
    returned_to: Option<MemberId>,
    by: Option<MemberId>,
) -> RecipientEvent {
    let mut conversation = handling.reference;
    if let Some(texter) = returned_to {
        conversation.texter_id = texter;
    }
    RecipientEvent::EscalationResolved {
        conversation,
        returned_to,
        by,
    }
}

/// Staff hand the conversation to `to`, or release it to the campaign's
/// pool (`None`). An escalated conversation handed on is resolved to its
/// new holder. Handing it to whoever holds it already changes nothing.
pub fn decide_reassign(
    state: &RecipientState,
    id: ConversationId,
    by: Option<MemberId>,
    to: Option<MemberId>,
) -> Result<Vec<RecipientEvent>, HandlingError> {
    let handling = check_access(state, id, Actor::Staff(by))?;
    if handling.escalation.is_some() {
        return Ok(vec![resolved(handling, to, by)]);
    }
    if handling.texter == to {
        return Ok(Vec::new());
    }
    Ok(vec![reassigned(handling, to, by)])
}

fn reassigned(handling: &Handling, to: Option<MemberId>, by: Option<MemberId>) -> RecipientEvent {
    match to {
        Some(texter) => RecipientEvent::ConversationReassigned {
            conversation: ConversationRef {
                texter_id: texter,
                ..handling.reference
            },
            from: handling.texter,
            by,
        },
        None => RecipientEvent::ConversationReleased {
            conversation: handling.reference,
            by,
        },
    }
}

/// A texter gives back a conversation they hold ("release my replies"):
/// it goes to the campaign's pool. One no longer theirs is left alone.
pub fn decide_release_mine(
    state: &RecipientState,
    id: ConversationId,
    texter: MemberId,
) -> Vec<RecipientEvent> {
    match state.handling.get(&id) {
        Some(handling) if handling.texter == Some(texter) && handling.escalation.is_none() => {
            vec![reassigned(handling, None, Some(texter))]
        }
        _ => Vec::new(),
    }
}

/// The conversation a handling event is about (`None`: not a handling
/// event).
pub fn subject(event: &RecipientEvent) -> Option<&ConversationRef> {
    match event {
        RecipientEvent::TagApplied { conversation, .. }
        | RecipientEvent::TagRemoved { conversation, .. }
        | RecipientEvent::ConversationEscalated { conversation, .. }
        | RecipientEvent::EscalationResolved { conversation, .. }
        | RecipientEvent::ConversationReassigned { conversation, .. }
        | RecipientEvent::ConversationReleased { conversation, .. } => Some(conversation),
        _ => None,
    }
}

/// Folds a handling event into the stream's state.
pub(crate) fn evolve(state: &mut RecipientState, event: &RecipientEvent) {
    let Some(handling) = subject(event)
        .and_then(|conversation| state.handling.get_mut(&conversation.conversation_id))
    else {
        return;
    };
    match event {
        RecipientEvent::TagApplied { tag_id, name, .. } => {
            handling.tags.insert(*tag_id, name.clone());
        }
        RecipientEvent::TagRemoved { tag_id, .. } => {
            handling.tags.remove(tag_id);
        }
        RecipientEvent::ConversationEscalated { reason, .. } => {
            handling.escalation = Some(reason.clone());
            handling.escalated_from = handling.texter;
            handling.hand_to(None);
        }
        RecipientEvent::EscalationResolved { returned_to, .. } => {
            handling.escalation = None;
            handling.escalated_from = None;
            handling.hand_to(*returned_to);
        }
        RecipientEvent::ConversationReassigned { conversation, .. } => {
            handling.hand_to(Some(conversation.texter_id));
        }
        RecipientEvent::ConversationReleased { .. } => handling.hand_to(None),
        _ => {}
    }
    // Replies from the voter follow the conversation's current texter.
    let current = handling.reference;
    for reference in state
        .conversations
        .values_mut()
        .chain(state.latest_conversation.as_mut())
    {
        if reference.conversation_id == current.conversation_id {
            *reference = current;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{click, sent};
    use crate::given_when_then::given;
    use crate::message::MessageKind;
    use crate::recipient::evolve;

    fn opened() -> (RecipientEvent, ConversationRef) {
        let attempt = click(MessageKind::Initial, None, None);
        let reference = ConversationRef {
            conversation_id: attempt.record.conversation_id,
            campaign_id: attempt.record.campaign_id,
            texter_id: attempt.record.evidence.texter_id,
        };
        (sent(&attempt), reference)
    }

    fn fold(events: &[RecipientEvent]) -> RecipientState {
        events.iter().fold(RecipientState::default(), evolve)
    }

    #[test]
    fn a_reassigned_conversation_follows_its_new_texter_and_the_old_one_loses_it() {
        let (open, conversation) = opened();
        let first = conversation.texter_id;
        let (second, staff) = (MemberId::new(), MemberId::new());
        let id = conversation.conversation_id;
        let events = given(std::slice::from_ref(&open), evolve)
            .when(|state| decide_reassign(state, id, Some(staff), Some(second)))
            .into_inner()
            .unwrap();
        assert_eq!(
            events,
            [RecipientEvent::ConversationReassigned {
                conversation: ConversationRef {
                    texter_id: second,
                    ..conversation
                },
                from: Some(first),
                by: Some(staff),
            }]
        );
        let state = fold(&[vec![open], events].concat());
        assert_eq!(
            check_access(&state, id, Actor::Texter(first)).unwrap_err(),
            HandlingError::NoLongerYours
        );
        assert!(check_access(&state, id, Actor::Texter(second)).is_ok());
        assert_eq!(
            check_access(&state, id, Actor::Texter(MemberId::new())).unwrap_err(),
            HandlingError::NoSuchConversation
        );
        // The voter's next reply is the new texter's.
        assert_eq!(state.latest_conversation.unwrap().texter_id, second);
        // Handing it to the same texter again changes nothing.
        assert_eq!(
            decide_reassign(&state, id, Some(staff), Some(second)),
            Ok(vec![])
        );
    }

    #[test]
    fn an_escalating_tag_escalates_and_staff_send_it_back() {
        let (open, conversation) = opened();
        let texter = conversation.texter_id;
        let id = conversation.conversation_id;
        let tag = TagInfo {
            tag_id: Uuid::now_v7(),
            name: "press".into(),
            escalates: true,
        };
        let state = fold(std::slice::from_ref(&open));
        let events = decide_tag(&state, id, Actor::Texter(texter), &tag, true).unwrap();
        assert!(matches!(events[0], RecipientEvent::TagApplied { .. }));
        assert!(matches!(
            &events[1],
            RecipientEvent::ConversationEscalated { tag_id: Some(t), .. } if *t == tag.tag_id
        ));
        let state = fold(&[vec![open.clone()], events.clone()].concat());
        let handling = &state.handling[&id];
        assert_eq!(handling.holder(), Holder::Escalated);
        assert_eq!(
            check_access(&state, id, Actor::Texter(texter)).unwrap_err(),
            HandlingError::NoLongerYours
        );
        assert_eq!(
            decide_escalate(&state, id, Actor::Staff(None), "again"),
            Err(HandlingError::AlreadyEscalated)
        );
        // Resolved without naming a texter: back to the one who escalated.
        let resolved = decide_resolve(&state, id, None, None).unwrap();
        let state = fold(&[vec![open], events, resolved].concat());
        assert_eq!(state.handling[&id].holder(), Holder::Texter);
        assert_eq!(state.handling[&id].texter, Some(texter));
        assert_eq!(
            decide_resolve(&state, id, None, None),
            Err(HandlingError::NotEscalated)
        );
    }

    #[test]
    fn a_texter_releases_only_their_own_and_a_released_one_is_in_the_pool() {
        let (open, conversation) = opened();
        let id = conversation.conversation_id;
        let state = fold(std::slice::from_ref(&open));
        assert!(decide_release_mine(&state, id, MemberId::new()).is_empty());
        let released = decide_release_mine(&state, id, conversation.texter_id);
        let state = fold(&[vec![open], released].concat());
        assert_eq!(state.handling[&id].holder(), Holder::Pool);
        assert!(decide_release_mine(&state, id, conversation.texter_id).is_empty());
        assert_eq!(
            decide_escalate(&state, id, Actor::Staff(None), " "),
            Err(HandlingError::Invalid(format!(
                "reason must be 1 to {MAX_REASON_CHARS} characters"
            )))
        );
    }
}
