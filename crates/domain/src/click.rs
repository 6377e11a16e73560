//! Every rule a click must pass before it sends one message, side by side as
//! pure functions. The application layer gathers the facts (the time, the
//! verified click token, the campaign, the recipient's stream) and asks
//! these rules; the rules that need the recipient's history are decided on
//! the stream the send appends to (see [`decide_click`]), so a concurrent
//! opt-out makes the append conflict and the click is decided again.

use chrono::{DateTime, Duration, Utc};

use crate::ids::{MemberId, MessageId, OrgId};
use crate::message::{BlockReason, ClickRecord, MessageKind};
use crate::recipient::{RecipientEvent, RecipientState};

/// Why a click may not send: the reason (part of the API) and what to tell
/// the texter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: BlockReason,
    pub detail: String,
}

impl Refusal {
    pub fn new(reason: BlockReason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }
}

/// What a verified click token claims about its presentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenClaims {
    pub org_id: OrgId,
    pub texter_id: MemberId,
    pub presented_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Whose token this is, and whether it is still good. A token of another
/// organization is `TokenInvalid` (its phone cannot be trusted in this
/// organization); another texter's is `NotYourToken`.
pub fn check_token_claims(
    claims: &TokenClaims,
    org: OrgId,
    texter: MemberId,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    if claims.org_id != org {
        return Err(Refusal::new(
            BlockReason::TokenInvalid,
            "the click token was not issued by this server for this organization",
        ));
    }
    if claims.texter_id != texter {
        return Err(Refusal::new(
            BlockReason::NotYourToken,
            "this click token was issued to another texter",
        ));
    }
    if now >= claims.expires_at {
        return Err(Refusal::new(
            BlockReason::TokenExpired,
            format!(
                "the click token expired at {}; fetch the queue again",
                claims.expires_at
            ),
        ));
    }
    Ok(())
}

/// A person needs a moment between seeing a message and clicking Send; a
/// click faster than `min_interval` after presentation is a script.
pub fn check_human_pace(
    presented_at: DateTime<Utc>,
    received_at: DateTime<Utc>,
    min_interval: Duration,
) -> Result<(), Refusal> {
    let shown_for = received_at - presented_at;
    if shown_for < min_interval {
        return Err(Refusal::new(
            BlockReason::TooFast,
            format!(
                "clicked {} ms after the message was shown; a person needs at least {} ms",
                shown_for.num_milliseconds(),
                min_interval.num_milliseconds()
            ),
        ));
    }
    Ok(())
}

/// Only the texter a contact is assigned to may send its first message.
pub fn check_assignment(assigned_to: Option<MemberId>, texter: MemberId) -> Result<(), Refusal> {
    if assigned_to != Some(texter) {
        return Err(Refusal::new(
            BlockReason::NotAssigned,
            "this contact is no longer assigned to you",
        ));
    }
    Ok(())
}

/// The client's own click time is evidence only if it is close to the
/// server's: a `clicked_at` further than `max_skew` from when the server
/// received the click is refused, so no far-future or far-past time is
/// recorded as when a person clicked.
pub fn check_client_clock(
    clicked_at: Option<DateTime<Utc>>,
    received_at: DateTime<Utc>,
    max_skew: Duration,
) -> Result<(), String> {
    match clicked_at {
        Some(clicked_at) if (clicked_at - received_at).abs() > max_skew => Err(format!(
            "clicked_at {clicked_at} is more than {} s from the server's clock ({received_at})",
            max_skew.num_seconds()
        )),
        _ => Ok(()),
    }
}

/// The longest message one click may send, whatever a script and a
/// contact's fields render to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageLimits {
    pub max_chars: usize,
    pub max_segments: u32,
}

impl Default for MessageLimits {
    /// 1,600 characters or 10 segments: what carriers deliver as one
    /// concatenated text.
    fn default() -> Self {
        Self {
            max_chars: 1_600,
            max_segments: 10,
        }
    }
}

/// A rendered message over the limits is never sent: a 3,000-character
/// first name must not turn one click into a 20-segment text.
pub fn check_message_length(
    body: &str,
    segments: u32,
    limits: MessageLimits,
) -> Result<(), Refusal> {
    let chars = body.chars().count();
    if chars > limits.max_chars || segments > limits.max_segments {
        return Err(Refusal::new(
            BlockReason::MessageTooLong,
            format!(
                "the message is {chars} characters in {segments} segments; the most one click \
                 may send is {} characters in {} segments",
                limits.max_chars, limits.max_segments
            ),
        ));
    }
    Ok(())
}

/// A click as the application layer has checked it so far: the token (if
/// any) is genuine and the caller's, the campaign's state and the
/// recipient's texting hours are looked up and recorded in `record`.
#[derive(Debug, Clone)]
pub struct ClickAttempt {
    pub record: ClickRecord,
    pub campaign_open: bool,
    /// Whether the organization has a carrier to hand the message to: a
    /// click without one would be "sent" and then fail at dispatch.
    pub carrier_ready: bool,
    /// A staff member's reply: they may answer in any conversation of the
    /// organization; a texter only in one they hold.
    pub staff: bool,
}

/// What a click comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClickDecision {
    /// Send it: append this event.
    Send(RecipientEvent),
    /// The same click again: it already sent this message.
    Duplicate(MessageId),
    Blocked(Refusal),
}

/// Decides a click against the recipient's history: the same request again,
/// a used token, an opt-out, a closed campaign, quiet hours, and one initial
/// message per campaign per phone.
pub fn decide_click(state: &RecipientState, attempt: &ClickAttempt) -> ClickDecision {
    let record = &attempt.record;
    let evidence = &record.evidence;
    if let Some(earlier) = evidence
        .idempotency_key
        .as_ref()
        .and_then(|key| state.idempotency_keys.get(key))
    {
        // The same key with another click token is another request, not a
        // retry of the first: it must not pass as a duplicate.
        let same_request = match evidence.token_id {
            None => true,
            Some(token) => state.tokens.get(&token) == Some(earlier),
        };
        return if same_request {
            ClickDecision::Duplicate(*earlier)
        } else {
            ClickDecision::Blocked(Refusal::new(
                BlockReason::IdempotencyKeyReused,
                format!(
                    "this Idempotency-Key was used for another click (message {earlier}); \
                     use a new key for each click"
                ),
            ))
        };
    }
    if let Some(message) = evidence.token_id.and_then(|token| state.tokens.get(&token)) {
        // Retried without an idempotency key: the same request again. With
        // a new key: a second click on a token that already sent.
        return if evidence.idempotency_key.is_none() {
            ClickDecision::Duplicate(*message)
        } else {
            ClickDecision::Blocked(Refusal::new(
                BlockReason::TokenUsed,
                format!("this click token already sent message {message}"),
            ))
        };
    }
    if evidence.kind == MessageKind::Reply && !attempt.staff {
        let holds = state
            .handling
            .get(&record.conversation_id)
            .is_some_and(|handling| handling.texter == Some(evidence.texter_id));
        if !holds {
            return ClickDecision::Blocked(Refusal::new(
                BlockReason::NotAssigned,
                "this conversation is no longer yours",
            ));
        }
    }
    if state.opted_out {
        return ClickDecision::Blocked(Refusal::new(
            BlockReason::OptedOut,
            "this number has opted out of the organization's texts",
        ));
    }
    if !attempt.campaign_open {
        return ClickDecision::Blocked(Refusal::new(
            BlockReason::CampaignNotOpen,
            "the campaign is not active",
        ));
    }
    if !attempt.carrier_ready {
        return ClickDecision::Blocked(Refusal::new(
            BlockReason::NoCarrier,
            "the organization has no carrier configured; an owner or admin must set one up \
             (PUT /v1/carrier) before anything can be sent",
        ));
    }
    if !record.hours.allowed {
        return ClickDecision::Blocked(Refusal::new(
            BlockReason::QuietHours,
            "it is outside texting hours where the recipient lives",
        ));
    }
    if evidence.kind == MessageKind::Initial
        && let Some(conversation) = state.conversations.get(&record.campaign_id)
    {
        return ClickDecision::Blocked(Refusal::new(
            BlockReason::AlreadyMessaged,
            format!(
                "this phone already got the campaign's initial message (conversation {})",
                conversation.conversation_id
            ),
        ));
    }
    ClickDecision::Send(RecipientEvent::MessageSendClicked(Box::new(record.clone())))
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::fixtures::{click, opt_out, sent};
    use crate::given_when_then::given;
    use crate::recipient::evolve;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn claims() -> TokenClaims {
        TokenClaims {
            org_id: OrgId::from_uuid(Uuid::from_u128(1)),
            texter_id: MemberId::from_uuid(Uuid::from_u128(2)),
            presented_at: at("2026-11-25T19:00:00Z"),
            expires_at: at("2026-11-25T19:10:00Z"),
        }
    }

    fn refused(decision: ClickDecision) -> BlockReason {
        match decision {
            ClickDecision::Blocked(refusal) => refusal.reason,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_token_of_another_org_or_texter_or_past_its_expiry_is_refused() {
        let claims = claims();
        let now = at("2026-11-25T19:01:00Z");
        assert_eq!(
            check_token_claims(&claims, claims.org_id, claims.texter_id, now),
            Ok(())
        );
        let reason = |org, texter, now| {
            check_token_claims(&claims, org, texter, now)
                .unwrap_err()
                .reason
        };
        assert_eq!(
            reason(OrgId::new(), claims.texter_id, now),
            BlockReason::TokenInvalid
        );
        assert_eq!(
            reason(claims.org_id, MemberId::new(), now),
            BlockReason::NotYourToken
        );
        assert_eq!(
            reason(claims.org_id, claims.texter_id, claims.expires_at),
            BlockReason::TokenExpired
        );
    }

    #[test]
    fn a_click_faster_than_a_person_is_refused() {
        let shown = at("2026-11-25T19:00:00Z");
        let min = Duration::milliseconds(400);
        assert_eq!(
            check_human_pace(shown, shown + Duration::milliseconds(399), min)
                .unwrap_err()
                .reason,
            BlockReason::TooFast
        );
        assert_eq!(
            check_human_pace(shown, shown + Duration::milliseconds(400), min),
            Ok(())
        );
    }

    #[test]
    fn only_the_assigned_texter_may_send_the_first_message() {
        let texter = MemberId::new();
        assert_eq!(check_assignment(Some(texter), texter), Ok(()));
        for other in [None, Some(MemberId::new())] {
            assert_eq!(
                check_assignment(other, texter).unwrap_err().reason,
                BlockReason::NotAssigned
            );
        }
    }

    #[test]
    fn a_client_click_time_far_from_the_servers_is_refused() {
        let received = at("2026-11-25T19:00:00Z");
        let skew = Duration::minutes(5);
        assert!(check_client_clock(None, received, skew).is_ok());
        assert!(check_client_clock(Some(received - Duration::minutes(5)), received, skew).is_ok());
        assert!(check_client_clock(Some(at("2099-01-01T00:00:00Z")), received, skew).is_err());
        assert!(check_client_clock(Some(received - Duration::minutes(6)), received, skew).is_err());
    }

    #[test]
    fn a_message_over_the_length_limits_is_refused() {
        let limits = MessageLimits {
            max_chars: 10,
            max_segments: 2,
        };
        assert_eq!(check_message_length("0123456789", 1, limits), Ok(()));
        for (body, segments) in [("01234567890", 1), ("short", 3)] {
            assert_eq!(
                check_message_length(body, segments, limits)
                    .unwrap_err()
                    .reason,
                BlockReason::MessageTooLong
            );
        }
    }

    #[test]
    fn a_click_to_an_opted_out_number_is_blocked() {
        given(&[opt_out()], evolve)
            .when(|state| {
                refused(decide_click(
                    state,
                    &click(MessageKind::Initial, None, None),
                ))
            })
            .then(BlockReason::OptedOut);
    }

    #[test]
    fn a_second_initial_message_in_one_campaign_is_blocked_but_replies_go() {
        let first = click(MessageKind::Initial, Some(Uuid::now_v7()), Some("a"));
        let history = [sent(&first)];
        given(&history, evolve)
            .when(|state| {
                let again = click(MessageKind::Initial, Some(Uuid::now_v7()), Some("b"));
                refused(decide_click(state, &again))
            })
            .then(BlockReason::AlreadyMessaged);
        given(&history, evolve)
            .when(|state| {
                let mut reply = click(MessageKind::Reply, None, Some("c"));
                reply.record.conversation_id = first.record.conversation_id;
                matches!(decide_click(state, &reply), ClickDecision::Send(_))
            })
            .then(true);
    }

    #[test]
    fn a_reply_by_a_texter_who_no_longer_holds_the_conversation_is_refused_but_staff_may() {
        let first = click(MessageKind::Initial, Some(Uuid::now_v7()), Some("a"));
        let conversation = crate::recipient::ConversationRef {
            conversation_id: first.record.conversation_id,
            campaign_id: first.record.campaign_id,
            texter_id: MemberId::new(),
        };
        let history = [
            sent(&first),
            RecipientEvent::ConversationReassigned {
                conversation,
                from: Some(first.record.evidence.texter_id),
                by: None,
            },
        ];
        let mut reply = click(MessageKind::Reply, None, Some("c"));
        reply.record.conversation_id = first.record.conversation_id;
        given(&history, evolve)
            .when(|state| refused(decide_click(state, &reply)))
            .then(BlockReason::NotAssigned);
        reply.staff = true;
        given(&history, evolve)
            .when(|state| matches!(decide_click(state, &reply), ClickDecision::Send(_)))
            .then(true);
    }

    #[test]
    fn the_same_click_again_returns_the_first_message() {
        let token = Uuid::now_v7();
        let first = click(MessageKind::Initial, Some(token), Some("key-1"));
        let history = [sent(&first)];
        let first_message = first.record.message_id;
        given(&history, evolve)
            .when(|state| decide_click(state, &click(MessageKind::Initial, Some(token), None)))
            .then(ClickDecision::Duplicate(first_message));
        given(&history, evolve)
            .when(|state| {
                decide_click(
                    state,
                    &click(MessageKind::Initial, Some(token), Some("key-1")),
                )
            })
            .then(ClickDecision::Duplicate(first_message));
        given(&history, evolve)
            .when(|state| {
                refused(decide_click(
                    state,
                    &click(MessageKind::Initial, Some(token), Some("key-2")),
                ))
            })
            .then(BlockReason::TokenUsed);
    }

    #[test]
    fn an_idempotency_key_reused_with_another_token_is_refused() {
        let first = click(MessageKind::Initial, Some(Uuid::now_v7()), Some("key-1"));
        given(&[sent(&first)], evolve)
            .when(|state| {
                let other = click(MessageKind::Initial, Some(Uuid::now_v7()), Some("key-1"));
                refused(decide_click(state, &other))
            })
            .then(BlockReason::IdempotencyKeyReused);
    }

    #[test]
    fn quiet_hours_and_a_closed_campaign_block() {
        let mut late = click(MessageKind::Initial, None, None);
        late.record.hours.allowed = false;
        given(&[], evolve)
            .when(|state| refused(decide_click(state, &late)))
            .then(BlockReason::QuietHours);
        let mut paused = click(MessageKind::Initial, None, None);
        paused.campaign_open = false;
        given(&[], evolve)
            .when(|state| refused(decide_click(state, &paused)))
            .then(BlockReason::CampaignNotOpen);
    }

    #[test]
    fn without_a_carrier_a_click_is_refused_and_a_message_that_never_reached_one_frees_the_contact()
    {
        let mut stranded = click(MessageKind::Initial, Some(Uuid::now_v7()), None);
        stranded.carrier_ready = false;
        given(&[], evolve)
            .when(|state| refused(decide_click(state, &stranded)))
            .then(BlockReason::NoCarrier);

        // Clicked while a carrier was there; it was gone at dispatch.
        let first = click(MessageKind::Initial, Some(Uuid::now_v7()), Some("k1"));
        let never_handed_over = RecipientEvent::MessageSubmitFailed {
            message_id: first.record.message_id,
            attempt: 1,
            carrier: "none".into(),
            code: crate::recipient::NO_CARRIER.into(),
            error: "no carrier".into(),
            retryable: false,
        };
        let mut again = click(MessageKind::Initial, Some(Uuid::now_v7()), Some("k2"));
        again.record.message_id = crate::ids::MessageId::new();
        given(&[sent(&first), never_handed_over], evolve)
            .when(|state| matches!(decide_click(state, &again), ClickDecision::Send(_)))
            .then(true);
        // The same click again is still that click, not a new message.
        given(&[sent(&first)], evolve)
            .when(|state| refused(decide_click(state, &again)))
            .then(BlockReason::AlreadyMessaged);
        // A carrier's own refusal means the message reached a carrier: the
        // contact counts as messaged.
        let refused_by_carrier = RecipientEvent::MessageSubmitFailed {
            message_id: first.record.message_id,
            attempt: 1,
            carrier: "twilio".into(),
            code: "21610".into(),
            error: "unsubscribed".into(),
            retryable: false,
        };
        given(&[sent(&first), refused_by_carrier], evolve)
            .when(|state| refused(decide_click(state, &again)))
            .then(BlockReason::AlreadyMessaged);
    }
}
