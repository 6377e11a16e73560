//! Campaigns: creation (with its lists checked against the lists read
//! model), script revisions, the lifecycle, and reading them back. Every
//! script write answers with a rendered sample's segment count and the
//! warnings a campaign's staff should see before launch.

use serde::Serialize;
use textbank_domain::campaign::{
    self, BatchRules, CampaignCommand, CampaignEvent, CampaignState, CannedResponse, Question,
    ScriptDraft, Transition,
};
use textbank_domain::segments::{self, Encoding};
use textbank_domain::template::{self, Template};
use textbank_domain::texting_hours::TextingWindow;
use textbank_domain::{CampaignId, ListId, Permission};
use textbank_projections::campaigns::{self, CampaignView, Campaigns, SampleContact};
use textbank_projections::catch_up;
use textbank_projections::contact_copies;
use textbank_projections::lists;

use crate::App;
use crate::caller::Caller;
use crate::command::execute;
use crate::error::AppError;

/// Values a sample is rendered with when the campaign has no contact yet.
const PLACEHOLDER_FIRST_NAME: &str = "Alex";
const PLACEHOLDER_LAST_NAME: &str = "Johnson";
/// Texters are not known until assignment, so the sample always uses this.
const PLACEHOLDER_TEXTER_NAME: &str = "Sam";

/// A campaign as submitted.
#[derive(Debug, Clone)]
pub struct NewCampaign {
    pub name: String,
    pub initial_message: String,
    pub canned_responses: Vec<CannedResponse>,
    pub questions: Vec<Question>,
    /// `(start, end)` as "HH:MM"; `None` for the default 09:00–20:00.
    pub texting_hours: Option<(String, String)>,
    /// Contacts per self-service assignment request; `None` for the default.
    pub assignment_batch_size: Option<u32>,
    /// Limits on handing out batches (off by default).
    pub batch_rules: BatchRules,
    pub list_ids: Vec<ListId>,
}

/// What a copy of a campaign takes besides its script, canned responses,
/// questions, texting hours and settings.
#[derive(Debug, Clone, Default)]
pub struct CampaignCopy {
    /// `None`: "Copy of …" and the source's name.
    pub name: Option<String>,
    /// Whether the source's lists stay attached to the copy.
    pub keep_lists: bool,
    /// More lists for the copy (after the source's, when kept).
    pub list_ids: Vec<ListId>,
}

/// A change of a campaign's settings; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct SettingsChange {
    pub name: Option<String>,
    /// `(start, end)` as "HH:MM".
    pub texting_hours: Option<(String, String)>,
    pub assignment_batch_size: Option<u32>,
    /// `Some(None)` turns the limit off.
    pub max_contacts_held: Option<Option<u32>>,
    /// `Some(None)` turns the rule off.
    pub max_replies_waiting: Option<Option<u32>>,
}

/// The initial message rendered for one contact, and what it costs to send.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SampleMessage {
    pub text: String,
    /// `first_contact` (of the first list) or `placeholder`.
    pub rendered_with: &'static str,
    pub encoding: Encoding,
    pub segments: u32,
    /// Septets (GSM-7) or UTF-16 units (UCS-2).
    pub units: u32,
}

/// The answer to a script write: the campaign as now stored, the sample and
/// the warnings.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CampaignWritten {
    #[serde(flatten)]
    pub campaign: CampaignView,
    pub sample: SampleMessage,
    pub warnings: Vec<String>,
    pub position: u64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CampaignTransitioned {
    #[serde(flatten)]
    pub campaign: CampaignView,
    pub position: u64,
}

impl App {
    pub async fn create_campaign(
        &self,
        caller: &Caller,
        new: NewCampaign,
    ) -> Result<CampaignWritten, AppError> {
        caller.require(Permission::ManageCampaigns)?;
        let known_fields = self.template_fields(caller, &new.list_ids).await?;
        self.create(caller, new, known_fields, None).await
    }

    /// A new draft with `source`'s script, canned responses, questions,
    /// texting hours, batch size and batch rules; its lists only if the
    /// copy keeps them. Nothing of the source's contacts (assignments,
    /// messages, holds) comes along. Another org's campaign is "not found".
    pub async fn copy_campaign(
        &self,
        caller: &Caller,
        source: CampaignId,
        copy: CampaignCopy,
    ) -> Result<CampaignWritten, AppError> {
        caller.require(Permission::ManageCampaigns)?;
        let view = self.campaign(caller, source).await?;
        let mut list_ids = if copy.keep_lists {
            view.list_ids.clone()
        } else {
            Vec::new()
        };
        list_ids.extend(copy.list_ids);
        // The script must render for the copy's lists; a copy with none
        // (to be given lists later as a new campaign's are) keeps the
        // fields of the source's lists, so its script is copied as it is.
        let fields_from = if list_ids.is_empty() {
            &view.list_ids
        } else {
            &list_ids
        };
        let known_fields = self.template_fields(caller, fields_from).await?;
        let corrupt = |what: &str, err: serde_json::Error| {
            AppError::Inconsistent(format!("campaigns.{what} of {source}: {err}"))
        };
        let name = copy.name.unwrap_or_else(|| {
            format!("Copy of {}", view.name)
                .chars()
                .take(campaign::MAX_CAMPAIGN_NAME_LEN)
                .collect()
        });
        let new = NewCampaign {
            name,
            initial_message: view.script.initial_message,
            canned_responses: serde_json::from_value(view.script.canned_responses)
                .map_err(|err| corrupt("canned_responses", err))?,
            questions: serde_json::from_value(view.questions)
                .map_err(|err| corrupt("questions", err))?,
            texting_hours: Some((view.texting_hours.start, view.texting_hours.end)),
            assignment_batch_size: Some(view.assignment_batch_size),
            batch_rules: BatchRules {
                max_contacts_held: view.max_contacts_held,
                max_replies_waiting: view.max_replies_waiting,
            },
            list_ids,
        };
        self.create(caller, new, known_fields, Some(source)).await
    }

    async fn create(
        &self,
        caller: &Caller,
        new: NewCampaign,
        known_fields: Vec<String>,
        copied_from: Option<CampaignId>,
    ) -> Result<CampaignWritten, AppError> {
        let texting_hours = match &new.texting_hours {
            Some((start, end)) => campaign::parse_texting_hours(start, end)?,
            None => TextingWindow::default(),
        };
        let campaign_id = CampaignId::new();
        let script = ScriptDraft {
            initial_message: new.initial_message,
            canned_responses: new.canned_responses,
        };
        let command = CampaignCommand::Create {
            campaign_id,
            org_id: caller.org_id,
            name: new.name,
            script: script.clone(),
            questions: new.questions,
            texting_hours,
            assignment_batch_size: new.assignment_batch_size,
            batch_rules: new.batch_rules,
            copied_from,
            list_ids: new.list_ids.clone(),
            known_fields: known_fields.clone(),
        };
        let written = execute(
            self,
            &campaign::stream_id(campaign_id),
            &caller.metadata(),
            |state: &CampaignState| {
                Ok::<Vec<CampaignEvent>, AppError>(campaign::decide(state, command.clone())?)
            },
        )
        .await?;
        let position = self.refresh_campaigns().await?;
        self.wake_contact_copier();
        let view = self.campaign(caller, campaign_id).await?;
        let (sample, warnings) = self
            .sample(&script.initial_message, &known_fields, &new.list_ids)
            .await?;
        Ok(CampaignWritten {
            campaign: view,
            sample,
            warnings,
            position: written.unwrap_or(position),
        })
    }

    /// Renames a campaign, or changes its texting hours, batch size or batch
    /// rules; a field left out keeps its value. Any status but archived.
    pub async fn change_campaign_settings(
        &self,
        caller: &Caller,
        campaign_id: CampaignId,
        changes: SettingsChange,
    ) -> Result<CampaignView, AppError> {
        caller.require(Permission::ManageCampaigns)?;
        let current = self.campaign(caller, campaign_id).await?;
        let (start, end) = changes.texting_hours.unwrap_or((
            current.texting_hours.start.clone(),
            current.texting_hours.end.clone(),
        ));
        let command = CampaignCommand::ChangeSettings {
            name: changes.name.unwrap_or(current.name),
            texting_hours: campaign::parse_texting_hours(&start, &end)?,
            assignment_batch_size: changes
                .assignment_batch_size
                .unwrap_or(current.assignment_batch_size),
            batch_rules: BatchRules {
                max_contacts_held: changes
                    .max_contacts_held
                    .unwrap_or(current.max_contacts_held),
                max_replies_waiting: changes
                    .max_replies_waiting
                    .unwrap_or(current.max_replies_waiting),
            },
        };
        self.campaign_command(caller, campaign_id, command).await?;
        self.campaign(caller, campaign_id).await
    }

    /// Saves script version n+1 (draft or paused campaigns only).
    pub async fn revise_script(
        &self,
        caller: &Caller,
        campaign_id: CampaignId,
        script: ScriptDraft,
    ) -> Result<CampaignWritten, AppError> {
        caller.require(Permission::ManageCampaigns)?;
        let current = self.campaign(caller, campaign_id).await?;
        let known_fields = self.template_fields(caller, &current.list_ids).await?;
        let command = CampaignCommand::ReviseScript {
            script: script.clone(),
            known_fields: known_fields.clone(),
        };
        let position = self.campaign_command(caller, campaign_id, command).await?;
        let view = self.campaign(caller, campaign_id).await?;
        let (sample, warnings) = self
            .sample(&script.initial_message, &known_fields, &view.list_ids)
            .await?;
        Ok(CampaignWritten {
            campaign: view,
            sample,
            warnings,
            position,
        })
    }

    /// Launches, pauses, resumes or archives a campaign.
    pub async fn transition_campaign(
        &self,
        caller: &Caller,
        campaign_id: CampaignId,
        transition: Transition,
    ) -> Result<CampaignTransitioned, AppError> {
        caller.require(Permission::ManageCampaigns)?;
        let command = CampaignCommand::Transition {
            step: transition,
            carrier_ready: self.carrier_ready(caller.org_id).await?,
            contacts_ready: contact_copies::progress(self.database(), campaign_id)
                .await?
                .is_none(),
        };
        let position = self.campaign_command(caller, campaign_id, command).await?;
        Ok(CampaignTransitioned {
            campaign: self.campaign(caller, campaign_id).await?,
            position,
        })
    }

    pub async fn campaigns(&self, caller: &Caller) -> Result<Vec<CampaignView>, AppError> {
        caller.require(Permission::ReadCampaigns)?;
        Ok(campaigns::campaigns(self.database(), caller.org_id).await?)
    }

    /// One of the caller's org's campaigns; another org's is "not found".
    pub async fn campaign(
        &self,
        caller: &Caller,
        campaign_id: CampaignId,
    ) -> Result<CampaignView, AppError> {
        caller.require(Permission::ReadCampaigns)?;
        campaigns::campaign(self.database(), caller.org_id, campaign_id)
            .await?
            .ok_or(AppError::NotFound("campaign"))
    }

    /// Decides `command` on a campaign of the caller's org and brings the
    /// read model up to date. The campaign stream's name holds no org, so the
    /// org is checked against the stream's own record: another org's
    /// campaign is "not found", as a missing one.
    async fn campaign_command(
        &self,
        caller: &Caller,
        campaign_id: CampaignId,
        command: CampaignCommand,
    ) -> Result<u64, AppError> {
        let written = execute(
            self,
            &campaign::stream_id(campaign_id),
            &caller.metadata(),
            |state: &CampaignState| {
                if state.org_id != Some(caller.org_id) {
                    return Err(AppError::NotFound("campaign"));
                }
                Ok(campaign::decide(state, command.clone())?)
            },
        )
        .await?;
        let position = self.refresh_campaigns().await?;
        Ok(written.unwrap_or(position))
    }

    /// The custom fields templates may use: those of the given lists, which
    /// must be complete lists of the caller's org.
    async fn template_fields(
        &self,
        caller: &Caller,
        list_ids: &[ListId],
    ) -> Result<Vec<String>, AppError> {
        let mut fields: Vec<String> = Vec::new();
        for &list_id in list_ids {
            let list = lists::list(self.database(), caller.org_id, list_id)
                .await?
                .ok_or(AppError::NotFound("list"))?;
            if list.status != "complete" {
                return Err(AppError::Invalid {
                    field: "list_ids",
                    message: format!(
                        "list_ids: list {list_id} has not finished importing and cannot be used"
                    ),
                });
            }
            let custom: Vec<String> = serde_json::from_value(list.custom_fields)
                .map_err(|err| AppError::Inconsistent(format!("lists.custom_fields: {err}")))?;
            for field in custom {
                if !fields.contains(&field) {
                    fields.push(field);
                }
            }
        }
        Ok(fields)
    }

    /// Renders the initial message for the first contact of the first list
    /// (or placeholders), measures it, and lists the warnings.
    async fn sample(
        &self,
        initial_message: &str,
        known_fields: &[String],
        list_ids: &[ListId],
    ) -> Result<(SampleMessage, Vec<String>), AppError> {
        let known: Vec<&str> = known_fields.iter().map(String::as_str).collect();
        // Already validated by the decision; a failure here is a bug.
        let template =
            Template::parse(initial_message, &known).map_err(|err| AppError::Invalid {
                field: "initial_message",
                message: format!("initial_message: {err}"),
            })?;
        let contact = match list_ids.first() {
            Some(&list) => campaigns::first_contact(self.database(), list).await?,
            None => None,
        };
        let rendered_with = if contact.is_some() {
            "first_contact"
        } else {
            "placeholder"
        };
        let contact = contact.unwrap_or_else(|| SampleContact {
            first_name: PLACEHOLDER_FIRST_NAME.into(),
            last_name: PLACEHOLDER_LAST_NAME.into(),
            // A custom field's placeholder is its own name, so the sample
            // shows where each value goes.
            fields: known_fields
                .iter()
                .map(|name| (name.clone(), name.clone()))
                .collect(),
        });
        let text = template.render(|field| match field {
            "first_name" => Some(contact.first_name.as_str()),
            "last_name" => Some(contact.last_name.as_str()),
            "texter_name" => Some(PLACEHOLDER_TEXTER_NAME),
            other => contact.fields.get(other).map(String::as_str),
        });
        let info = segments::analyze(&text);
        let mut warnings = Vec::new();
        if !template::mentions_opt_out(initial_message) {
            warnings.push(
                "the initial message has no opt-out language; add e.g. \"Reply STOP to opt out\""
                    .to_owned(),
            );
        }
        if info.encoding == Encoding::Ucs2 {
            warnings.push(format!(
                "the sample needs UCS-2 (a character outside GSM-7, such as an emoji or a curly \
                 quote): {} segment(s) instead of fewer",
                info.segments
            ));
        }
        Ok((
            SampleMessage {
                text,
                rendered_with,
                encoding: info.encoding,
                segments: info.segments,
                units: info.units,
            },
            warnings,
        ))
    }

    /// Applies pending events to the campaigns read model now, so the
    /// response (and the next request) reflects the write.
    async fn refresh_campaigns(&self) -> Result<u64, AppError> {
        Ok(catch_up(self.events(), &Campaigns).await?)
    }
}
