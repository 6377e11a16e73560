//! `serve --demo`: on an empty database, a demo organization a newcomer can
//! use at once — a manager, a texter, a compliance officer and an admin who
//! sign in with printed passwords, a list of fake contacts (555-01xx
//! numbers, which are reserved for fiction) and a launched campaign on the
//! simulated carrier. Everything goes through the same commands as the API.

use std::fmt::Write as _;

use bytes::Bytes;
use serde::Serialize;
use textbank_domain::campaign::{BatchRules, CannedResponse, Question, Transition};
use textbank_domain::phone::PhoneNumber;
use textbank_domain::{MemberId, OrgId, Role};
use textbank_projections::directory;

use crate::caller::Caller;
use crate::carrier::CarrierSettings;
use crate::error::AppError;
use crate::import::{ImportLimits, ListDeclaration};
use crate::sign_in::generate_password;
use crate::{App, NewCampaign};

/// The demo organization's name; a database holding it is a demo database.
pub const DEMO_ORG_NAME: &str = "Demo: Rivera for Council";

/// The demo's people: (role, name, email).
const PEOPLE: [(Role, &str, &str); 4] = [
    (Role::Manager, "Morgan Manager", "manager@demo.example.org"),
    (Role::Texter, "Taylor Texter", "texter@demo.example.org"),
    (
        Role::Compliance,
        "Casey Compliance",
        "compliance@demo.example.org",
    ),
    (Role::Admin, "Alex Admin", "admin@demo.example.org"),
];

/// Contacts spread over zones from Guam to Puerto Rico, so that at almost
/// any hour some are inside their texting hours: (area code, ZIP).
const PLACES: [(&str, &str); 8] = [
    ("212", "10001"),
    ("312", "60601"),
    ("303", "80202"),
    ("415", "94103"),
    ("907", "99501"),
    ("808", "96813"),
    ("787", "00901"),
    ("671", "96910"),
];

const FIRST_NAMES: [&str; 16] = [
    "Ana", "Ben", "Carla", "Dev", "Elena", "Femi", "Grace", "Hiro", "Imani", "Jon", "Kai", "Lucia",
    "Mateo", "Nadia", "Omar", "Priya",
];
const LAST_NAMES: [&str; 12] = [
    "Alvarez", "Brooks", "Chen", "Diaz", "Evans", "Fischer", "Garcia", "Hughes", "Ito", "Jones",
    "Kim", "Lopez",
];

/// Contacts in the demo list: 8 places × 40 numbers.
pub const DEMO_CONTACTS: usize = 320;
/// Contacts handed to the demo texter at the start: the list's first rows,
/// as many of each place.
const FIRST_ASSIGNMENT: usize = 120;

#[derive(Debug, Clone, Serialize)]
pub struct DemoSignIn {
    pub role: Role,
    pub name: String,
    pub email: String,
    pub password: String,
    pub member_id: MemberId,
}

#[derive(Debug, Clone, Serialize)]
pub struct Demo {
    pub org_id: OrgId,
    /// False when the demo already existed (its passwords were renewed).
    pub created: bool,
    pub sign_ins: Vec<DemoSignIn>,
}

impl App {
    /// Creates the demo on an empty database, or renews the demo members'
    /// passwords on a demo database (passwords are stored only hashed, so
    /// they cannot be shown again). `None` when the database holds other
    /// organizations: the demo never mixes with real data.
    pub async fn seed_demo(&self) -> Result<Option<Demo>, AppError> {
        let orgs = directory::orgs(self.database()).await?;
        match orgs.as_slice() {
            [] => self.create_demo().await.map(Some),
            [(org_id, name)] if name == DEMO_ORG_NAME => {
                let org_id = *org_id;
                let mut sign_ins = Vec::new();
                for person in PEOPLE {
                    let sign_in = self.new_password(org_id, person).await.map_err(|err| match err {
                        AppError::NotFound(_) => AppError::Invalid {
                            field: "demo",
                            message: format!(
                                "the demo database lacks {}: an earlier --demo start was interrupted; delete the database and start again",
                                person.2
                            ),
                        },
                        other => other,
                    })?;
                    sign_ins.push(sign_in);
                }
                Ok(Some(Demo {
                    org_id,
                    created: false,
                    sign_ins,
                }))
            }
            _ => Ok(None),
        }
    }

    /// A new random password for one of the demo's people.
    async fn new_password(
        &self,
        org_id: OrgId,
        (role, name, email): (Role, &str, &str),
    ) -> Result<DemoSignIn, AppError> {
        let password = generate_password();
        let member_id = self.set_password(email, Some(org_id), &password).await?;
        Ok(DemoSignIn {
            role,
            name: name.into(),
            email: email.into(),
            password,
            member_id,
        })
    }

    async fn create_demo(&self) -> Result<Demo, AppError> {
        let created = self.create_org(DEMO_ORG_NAME).await?;
        let owner = self.authenticate(&created.owner_key, None, None).await?;
        let carrier: CarrierSettings = serde_json::from_value(serde_json::json!({
            "carrier": "sim",
            "opt_out_confirmation": "Rivera for Council: you're unsubscribed and will get no more texts from us.",
            "help_text": "Rivera for Council volunteer texts. Reply STOP to opt out. Questions: info@demo.example.org",
        }))
        .map_err(|err| AppError::Io(std::io::Error::other(err)))?;
        self.configure_carrier(&owner, carrier).await?;

        let mut sign_ins = Vec::new();
        for person @ (role, name, email) in PEOPLE {
            self.add_member(&owner, name, email, role).await?;
            sign_ins.push(self.new_password(created.org_id, person).await?);
        }
        let manager = as_member(&owner, &sign_ins, Role::Manager);
        let texter = member_of(&sign_ins, Role::Texter);

        let list = self
            .import_list(
                &manager,
                ListDeclaration {
                    name: "Ward 3 supporters (demo)".into(),
                    source: "demo data generated by textbank serve --demo".into(),
                    consent_basis: "demo: fictional 555-01xx numbers".into(),
                },
                futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from(
                    demo_contacts_csv(),
                ))]),
                ImportLimits::default(),
            )
            .await?;
        let campaign = self
            .create_campaign(
                &manager,
                NewCampaign {
                    name: "Early vote reminder (demo)".into(),
                    initial_message: "Hi {first_name}, it's {texter_name}, a volunteer with Rivera for Council. \
                        Early voting for Ward {ward} is open through Saturday. Can Maria count on your vote? \
                        Reply STOP to opt out."
                        .into(),
                    canned_responses: vec![
                        CannedResponse {
                            title: "Where to vote".into(),
                            body: "Thanks {first_name}! You can find your early voting site at vote.example.org."
                                .into(),
                        },
                        CannedResponse {
                            title: "Thanks".into(),
                            body: "Thank you for your time, {first_name}. Have a great day!".into(),
                        },
                    ],
                    questions: vec![Question {
                        id: "support".into(),
                        text: "Will they vote for Maria Rivera?".into(),
                        answers: vec!["yes".into(), "leaning".into(), "undecided".into(), "no".into()],
                    }],
                    texting_hours: Some(("08:00".into(), "21:00".into())),
                    assignment_batch_size: Some(50),
                    batch_rules: BatchRules::default(),
                    list_ids: vec![list.list_id],
                },
            )
            .await?;
        let campaign_id = campaign.campaign.campaign_id;
        self.transition_campaign(&manager, campaign_id, Transition::Launch)
            .await?;
        // The first rows of the list, which are spread evenly over the
        // places: from Guam to Puerto Rico, some are inside their texting
        // hours at every hour at which any US zone is.
        let phones = (0..FIRST_ASSIGNMENT)
            .map(demo_phone)
            .collect::<Result<Vec<_>, _>>()?;
        self.assign_phones(&manager, campaign_id, texter, phones)
            .await?;
        Ok(Demo {
            org_id: created.org_id,
            created: true,
            sign_ins,
        })
    }
}

fn member_of(sign_ins: &[DemoSignIn], role: Role) -> MemberId {
    sign_ins
        .iter()
        .find(|sign_in| sign_in.role == role)
        .map(|sign_in| sign_in.member_id)
        .unwrap_or_else(|| unreachable!("the demo has one member of each role"))
}

/// The owner's caller acting as the member of `role`, so the demo's events
/// name the demo manager as their author.
fn as_member(owner: &Caller, sign_ins: &[DemoSignIn], role: Role) -> Caller {
    Caller {
        role,
        member_id: Some(member_of(sign_ins, role)),
        ..owner.clone()
    }
}

/// Row `n` of the demo list: its place's area code and ZIP, and its line.
fn demo_row(n: usize) -> (&'static str, &'static str, usize) {
    let (area, zip) = PLACES[n % PLACES.len()];
    (area, zip, 100 + n / PLACES.len())
}

/// The phone number of row `n` of the demo list.
fn demo_phone(n: usize) -> Result<PhoneNumber, AppError> {
    let (area, _, line) = demo_row(n);
    PhoneNumber::from_e164(&format!("+1{area}555{line:04}"))
        .map_err(|err| AppError::Inconsistent(format!("demo phone {n}: {err}")))
}

/// Contacts with 555-01xx numbers in each place, named from small lists.
pub fn demo_contacts_csv() -> String {
    let mut csv = String::from("first_name,last_name,cell,zip,ward\r\n");
    for n in 0..DEMO_CONTACTS {
        let (area, zip, line) = demo_row(n);
        let first = FIRST_NAMES[n % FIRST_NAMES.len()];
        let last = LAST_NAMES[(n / FIRST_NAMES.len()) % LAST_NAMES.len()];
        let _ = write!(csv, "{first},{last},({area}) 555-{line:04},{zip},3\r\n");
    }
    csv
}
