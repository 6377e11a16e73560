//! Assignment of a campaign's contacts to texters: managers assign, release
//! and reassign; a texter requests a batch for itself; both read who holds
//! how many.
//!
//! Which phones to hand out is read from the campaigns read model
//! (`campaign_contacts`), so the decision is only sound when that read model
//! is exactly as current as the stream version the events are appended
//! under. Each attempt therefore loads the campaign stream (version V),
//! catches the read model up, checks that it says V, picks the phones and
//! appends with `ExpectedVersion::Exact(V)`. A concurrent change to the
//! campaign makes the append conflict, and the attempt starts over: two
//! requests can never hand out the same contact.

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;
use textbank_domain::campaign::{
    self, CampaignCommand, CampaignEvent, CampaignState, MAX_ASSIGNMENT_COUNT, TexterLoad,
};
use textbank_domain::phone::PhoneNumber;
use textbank_domain::texting_hours;
use textbank_domain::timezone::ContactZone;
use textbank_domain::{CampaignId, MemberId, Permission, Role, allows};
use textbank_projections::campaigns::{self, Campaigns};
use textbank_projections::contact_copies;
use textbank_projections::conversations::{self, Conversations};
use textbank_projections::inbox::{self, Inbox};
use textbank_projections::{catch_up, directory};

use crate::App;
use crate::caller::Caller;
use crate::command::StreamView;
use crate::error::AppError;

/// Tries before an assignment gives up on a campaign that keeps changing.
/// Generous: a burst of texters requesting at once is the normal case, and
/// each round lets exactly one of them through.
const ATTEMPTS: u32 = 64;
/// Upper bound of the random pause between attempts, so the losers of a
/// round do not collide again in lockstep.
const MAX_BACKOFF_MS: u64 = 25;

/// What moved, and the log position that moved it (read your own writes).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Assigned {
    pub assigned: u64,
    pub texter_id: MemberId,
    pub position: u64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Released {
    pub released: u64,
    pub texter_id: MemberId,
    pub position: u64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Reassigned {
    pub reassigned: u64,
    pub from_texter_id: MemberId,
    pub to_texter_id: MemberId,
    pub position: u64,
}

/// One texter's share of a campaign.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TexterAssignment {
    pub texter_id: MemberId,
    pub name: String,
    pub assigned: u64,
}

/// Who holds how many contacts. A texter sees only its own line and no
/// totals.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Assignments {
    pub campaign_id: CampaignId,
    pub texters: Vec<TexterAssignment>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unassigned: Option<u64>,
}

/// A change to a campaign's assignments, before its phones are picked.
#[derive(Debug, Clone)]
enum Change {
    Assign {
        texter: MemberId,
        count: u32,
    },
    /// These unassigned phones (the demo's spread over its time zones).
    AssignPhones {
        texter: MemberId,
        phones: Vec<PhoneNumber>,
    },
    Request {
        texter: MemberId,
    },
    Release {
        texter: MemberId,
        count: Option<u32>,
    },
    Reassign {
        from: MemberId,
        to: MemberId,
        count: Option<u32>,
    },
}

impl App {
    /// A manager gives `texter_id` up to `count` unassigned contacts.
    pub async fn assign_contacts(
        &self,
        caller: &Caller,
        campaign_id: CampaignId,
        texter_id: MemberId,
        count: u64,
    ) -> Result<Assigned, AppError> {
        caller.require(Permission::AssignContacts)?;
        let count = check_count("count", count)?;
        self.texter(caller, texter_id, "texter_id").await?;
        let (assigned, position) = self
            .change_assignments(
                caller,
                campaign_id,
                Change::Assign {
                    texter: texter_id,
                    count,
                },
            )
            .await?;
        Ok(Assigned {
            assigned,
            texter_id,
            position,
        })
    }

    /// Gives the texter these phones, which must be unassigned and
    /// reachable: the demo hands its texter contacts in every time zone.
    pub(crate) async fn assign_phones(
        &self,
        caller: &Caller,
        campaign_id: CampaignId,
        texter: MemberId,
        phones: Vec<PhoneNumber>,
    ) -> Result<Assigned, AppError> {
        caller.require(Permission::AssignContacts)?;
        let (assigned, position) = self
            .change_assignments(caller, campaign_id, Change::AssignPhones { texter, phones })
            .await?;
        Ok(Assigned {
            assigned,
            texter_id: texter,
            position,
        })
    }

    /// The calling texter takes the campaign's batch size of contacts (fewer
    /// when fewer are left, none when none are).
    pub async fn request_contacts(
        &self,
        caller: &Caller,
        campaign_id: CampaignId,
    ) -> Result<Assigned, AppError> {
        caller.require(Permission::RequestAssignment)?;
        let texter_id = own_member(caller)?;
        let (assigned, position) = self
            .change_assignments(caller, campaign_id, Change::Request { texter: texter_id })
            .await?;
        Ok(Assigned {
            assigned,
            texter_id,
            position,
        })
    }

    /// Returns up to `count` (all for `None`) of the texter's not yet texted
    /// contacts to the unassigned pool.
    pub async fn release_contacts(
        &self,
        caller: &Caller,
        campaign_id: CampaignId,
        texter_id: MemberId,
        count: Option<u64>,
    ) -> Result<Released, AppError> {
        caller.require(Permission::AssignContacts)?;
        let count = count.map(|n| check_count("count", n)).transpose()?;
        self.texter(caller, texter_id, "texter_id").await?;
        let (released, position) = self
            .change_assignments(
                caller,
                campaign_id,
                Change::Release {
                    texter: texter_id,
                    count,
                },
            )
            .await?;
        Ok(Released {
            released,
            texter_id,
            position,
        })
    }

    /// Moves up to `count` (all for `None`) of one texter's not yet texted
    /// contacts to another texter, in one append.
    pub async fn reassign_contacts(
        &self,
        caller: &Caller,
        campaign_id: CampaignId,
        from: MemberId,
        to: MemberId,
        count: Option<u64>,
    ) -> Result<Reassigned, AppError> {
        caller.require(Permission::AssignContacts)?;
        let count = count.map(|n| check_count("count", n)).transpose()?;
        self.texter(caller, from, "from_texter_id").await?;
        self.texter(caller, to, "to_texter_id").await?;
        let (reassigned, position) = self
            .change_assignments(caller, campaign_id, Change::Reassign { from, to, count })
            .await?;
        Ok(Reassigned {
            reassigned,
            from_texter_id: from,
            to_texter_id: to,
            position,
        })
    }

    /// Per-texter counts for those who assign; a texter's own count for a
    /// texter.
    pub async fn assignments(
        &self,
        caller: &Caller,
        campaign_id: CampaignId,
    ) -> Result<Assignments, AppError> {
        let everyone = allows(caller.role, Permission::AssignContacts);
        if !everyone {
            caller.require(Permission::RequestAssignment)?;
        }
        let only = if everyone {
            None
        } else {
            Some(own_member(caller)?)
        };
        let db = self.database();
        campaigns::campaign(db, caller.org_id, campaign_id)
            .await?
            .ok_or(AppError::NotFound("campaign"))?;
        let counts = campaigns::assignment_counts(db, campaign_id).await?;
        let names: HashMap<MemberId, String> = directory::members(db, caller.org_id)
            .await?
            .into_iter()
            .map(|member| (member.member_id, member.name))
            .collect();
        let line = |texter_id: MemberId, assigned: u64| TexterAssignment {
            texter_id,
            name: names.get(&texter_id).cloned().unwrap_or_default(),
            assigned,
        };
        Ok(match only {
            None => Assignments {
                campaign_id,
                texters: counts
                    .assigned
                    .iter()
                    .map(|&(texter, assigned)| line(texter, assigned))
                    .collect(),
                unassigned: Some(counts.unassigned),
            },
            Some(me) => {
                let mine = counts
                    .assigned
                    .iter()
                    .find(|(texter, _)| *texter == me)
                    .map_or(0, |&(_, assigned)| assigned);
                Assignments {
                    campaign_id,
                    texters: vec![line(me, mine)],
                    unassigned: None,
                }
            }
        })
    }

    /// `member` must be a texter of the caller's org: another org's member
    /// is "not found", as a missing one.
    async fn texter(
        &self,
        caller: &Caller,
        member: MemberId,
        field: &'static str,
    ) -> Result<(), AppError> {
        let found = directory::member(self.database(), caller.org_id, member)
            .await?
            .ok_or(AppError::NotFound("texter"))?;
        if found.role != Role::Texter {
            return Err(AppError::Invalid {
                field,
                message: format!(
                    "{field}: member {member} is a {}; contacts can be assigned only to texters",
                    found.role
                ),
            });
        }
        Ok(())
    }

    /// Runs one change to completion (see the module's comment); returns how
    /// many contacts moved and the position the caller can read from.
    async fn change_assignments(
        &self,
        caller: &Caller,
        campaign_id: CampaignId,
        change: Change,
    ) -> Result<(u64, u64), AppError> {
        let stream = campaign::stream_id(campaign_id);
        let db = self.database();
        let mut view = StreamView::<CampaignEvent>::new(self, stream.clone());
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                let pause = rand::random::<u64>() % (MAX_BACKOFF_MS + 1);
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            // The phones to move are read from the campaigns read model
            // between loading and deciding, so this command drives the
            // stream view itself rather than `command::run`.
            let loaded = view.load().await?;
            // The stream's name holds no org: its own record says whose it is.
            if loaded.state.org_id != Some(caller.org_id) {
                return Err(AppError::NotFound("campaign"));
            }
            let Some(version) = loaded.version else {
                return Err(AppError::NotFound("campaign"));
            };
            let reached = catch_up(self.events(), &Campaigns).await?;
            // Behind: a concurrent runner is still applying. Ahead: the
            // stream moved since it was loaded. Either way, start over.
            if campaigns::stream_version(db, campaign_id).await? != Some(version) {
                continue;
            }
            let copying = contact_copies::progress(db, campaign_id).await?;
            campaign::contacts_in_place(copying.is_none())?;
            let command = match change.clone() {
                Change::AssignPhones { texter, phones } => CampaignCommand::Assign {
                    texter_id: texter,
                    phones,
                },
                Change::Assign { texter, count } => {
                    let count = self
                        .allowed_batch(caller, campaign_id, &loaded.state, texter, count)
                        .await?;
                    CampaignCommand::Assign {
                        texter_id: texter,
                        phones: self.pick_unassigned(caller, campaign_id, count).await?,
                    }
                }
                Change::Request { texter } => {
                    let wanted = loaded.state.assignment_batch_size;
                    let count = self
                        .allowed_batch(caller, campaign_id, &loaded.state, texter, wanted)
                        .await?;
                    CampaignCommand::Request {
                        texter_id: texter,
                        phones: self.pick_unassigned(caller, campaign_id, count).await?,
                    }
                }
                Change::Release { texter, count } => CampaignCommand::Release {
                    texter_id: texter,
                    phones: campaigns::releasable_phones(db, campaign_id, texter, count).await?,
                },
                Change::Reassign { from, to, count } => CampaignCommand::Reassign {
                    from,
                    to,
                    phones: campaigns::releasable_phones(db, campaign_id, from, count).await?,
                },
            };
            let moved = match &command {
                CampaignCommand::Assign { phones, .. }
                | CampaignCommand::Request { phones, .. }
                | CampaignCommand::Release { phones, .. }
                | CampaignCommand::Reassign { phones, .. } => phones.len() as u64,
                _ => 0,
            };
            let events = campaign::decide(&loaded.state, command)?;
            if events.is_empty() {
                return Ok((0, reached));
            }
            if let Some(written) = view.append_at(&loaded, &events, &caller.metadata()).await? {
                catch_up(self.events(), &Campaigns).await?;
                return Ok((moved, written.last_position));
            }
        }
        Err(AppError::Conflict(format!(
            "campaign {campaign_id} kept changing during {ATTEMPTS} attempts to change its \
             assignments; try again"
        )))
    }
}

impl App {
    /// How many of `wanted` contacts the campaign's batch rules let the
    /// texter get now (refused when none): what it holds unsent and how many
    /// of its conversations wait for a reply are looked up first.
    async fn allowed_batch(
        &self,
        caller: &Caller,
        campaign_id: CampaignId,
        state: &CampaignState,
        texter: MemberId,
        wanted: u32,
    ) -> Result<u32, AppError> {
        if state.batch_rules.is_off() {
            return Ok(wanted);
        }
        let db = self.database();
        // Clicks and replies recorded before this request count.
        let head = self.events().head_position().await?;
        self.wait_for_projection(&Conversations, head).await?;
        let held = conversations::queue_zones(db, campaign_id, texter)
            .await?
            .iter()
            .map(|(_, waiting)| waiting)
            .sum();
        let replies_waiting = if state.batch_rules.max_replies_waiting.is_some() {
            self.wait_for_projection(&Inbox::live(), head).await?;
            inbox::needs_reply_count(db, caller.org_id, campaign_id, texter).await?
        } else {
            0
        };
        let load = TexterLoad {
            held,
            replies_waiting,
        };
        Ok(campaign::allowed_batch(state, wanted, load)?)
    }

    /// Up to `count` unassigned, reachable contacts: those inside their
    /// texting hours now first, then those whose hours open soonest (the
    /// contacts a texter can send to now, not in ten hours), in phone order
    /// within a zone. Hours are checked once per zone.
    async fn pick_unassigned(
        &self,
        caller: &Caller,
        campaign_id: CampaignId,
        count: u32,
    ) -> Result<Vec<PhoneNumber>, AppError> {
        let db = self.database();
        let window = self
            .sending_campaign(caller, campaign_id, None)
            .await?
            .window;
        let now = self.clock().now();
        let mut zones = Vec::new();
        for zone in campaigns::unassigned_zones(db, campaign_id).await? {
            let contact_zone: ContactZone = serde_json::from_str(&zone)
                .map_err(|err| AppError::Inconsistent(format!("campaign_contacts.zone: {err}")))?;
            zones.push((texting_hours::opens_at(now, &contact_zone, &window), zone));
        }
        // Open now (or soonest) first; a zone whose hours never open last.
        zones.sort_by_key(|(opens_at, zone)| (opens_at.is_none(), *opens_at, zone.clone()));
        let mut phones = Vec::with_capacity(count as usize);
        for (_, zone) in zones {
            let left = count - phones.len() as u32;
            if left == 0 {
                break;
            }
            phones
                .extend(campaigns::unassigned_phones_in_zone(db, campaign_id, &zone, left).await?);
        }
        Ok(phones)
    }
}

/// The texter a key speaks for: assignments go to a member, so a key bound
/// to none cannot hold contacts.
fn own_member(caller: &Caller) -> Result<MemberId, AppError> {
    caller.member_id.ok_or_else(|| {
        AppError::Forbidden(
            "this API key is not bound to a member; a texter needs a key issued with its \
             member_id to request or read its own assignments"
                .into(),
        )
    })
}

/// 1..=MAX_ASSIGNMENT_COUNT.
fn check_count(field: &'static str, count: u64) -> Result<u32, AppError> {
    u32::try_from(count)
        .ok()
        .filter(|n| (1..=MAX_ASSIGNMENT_COUNT).contains(n))
        .ok_or_else(|| AppError::Invalid {
            field,
            message: format!("{field} must be between 1 and {MAX_ASSIGNMENT_COUNT}, got {count}"),
        })
}
