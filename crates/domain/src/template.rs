//! Campaign message templates: text with `{field}` placeholders filled in
//! per contact, checked when a script is saved so a typo never reaches a
//! voter as a literal "{frist_name}".

use std::fmt;

/// Fields every campaign can use; lists add their own custom fields.
pub const BUILTIN_FIELDS: [&str; 3] = ["first_name", "last_name", "texter_name"];

/// Why a template was rejected. Each message names the problem and where it
/// is, so the API can return it to the script's author as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("the message is empty")]
    Empty,
    #[error(
        "unclosed '{{' at character offset {offset}: close the field with '}}', \
         or write '{{{{' for a literal '{{'"
    )]
    UnclosedBrace { offset: usize },
    #[error("unmatched '}}' at character offset {offset}: write '}}}}' for a literal '}}'")]
    UnmatchedBrace { offset: usize },
    #[error(
        "{{{name}}} at character offset {offset} is not a valid field name: \
         use letters, digits and underscores, not starting with a digit, e.g. {{first_name}}"
    )]
    InvalidFieldName { name: String, offset: usize },
    #[error("unknown field {{{name}}} at character offset {offset}{hint}; known fields: {known}")]
    UnknownField {
        name: String,
        offset: usize,
        /// ", did you mean {First_Name}?" when only the case differs.
        hint: String,
        known: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Field(String),
}

/// A parsed template; every field it uses is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

impl Template {
    /// Parses `text`. Fields must be built-in or among `known_fields` (the
    /// list's custom columns); names are case-sensitive. `{{` and `}}` are
    /// literal braces.
    pub fn parse(text: &str, known_fields: &[&str]) -> Result<Template, TemplateError> {
        Self::parse_with(text, Some(known_fields))
    }

    /// Parses a template that was checked when it was saved: any well-formed
    /// field name is accepted (one the contact lacks renders as nothing).
    /// Text that no longer parses renders as written.
    pub fn parse_unchecked(text: &str) -> Template {
        Self::parse_with(text, None).unwrap_or_else(|_| Template {
            source: text.to_owned(),
            parts: vec![Part::Text(text.to_owned())],
        })
    }

    fn parse_with(text: &str, known_fields: Option<&[&str]>) -> Result<Template, TemplateError> {
        if text.trim().is_empty() {
            return Err(TemplateError::Empty);
        }
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().enumerate().peekable();
        while let Some((offset, c)) = chars.next() {
            match c {
                '{' if chars.next_if(|&(_, c)| c == '{').is_some() => literal.push('{'),
                '}' if chars.next_if(|&(_, c)| c == '}').is_some() => literal.push('}'),
                '}' => return Err(TemplateError::UnmatchedBrace { offset }),
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some((_, '}')) => break,
                            // A '{' inside a field means this one was never closed.
                            Some((_, '{')) | None => {
                                return Err(TemplateError::UnclosedBrace { offset });
                            }
                            Some((_, c)) => name.push(c),
                        }
                    }
                    check_field(&name, offset, known_fields)?;
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Field(name));
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Template {
            source: text.to_owned(),
            parts,
        })
    }

    /// The text as written, braces and all.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The fields used, each once, in order of first use.
    pub fn fields(&self) -> Vec<&str> {
        let mut fields: Vec<&str> = Vec::new();
        for part in &self.parts {
            if let Part::Field(name) = part
                && !fields.contains(&name.as_str())
            {
                fields.push(name);
            }
        }
        fields
    }

    /// Fills in each field; a field without a value renders as nothing.
    pub fn render<'v>(&self, lookup: impl Fn(&str) -> Option<&'v str>) -> String {
        let mut out = String::with_capacity(self.source.len());
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Field(name) => out.push_str(lookup(name).unwrap_or("")),
            }
        }
        out
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

fn check_field(
    name: &str,
    offset: usize,
    known_fields: Option<&[&str]>,
) -> Result<(), TemplateError> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(TemplateError::InvalidFieldName {
            name: name.to_owned(),
            offset,
        });
    }
    let Some(known_fields) = known_fields else {
        return Ok(());
    };
    let known = || BUILTIN_FIELDS.iter().chain(known_fields).copied();
    if known().any(|k| k == name) {
        return Ok(());
    }
    let hint = known()
        .find(|k| k.eq_ignore_ascii_case(name))
        .map(|k| format!(", did you mean {{{k}}}? (field names are case-sensitive)"))
        .unwrap_or_default();
    Err(TemplateError::UnknownField {
        name: name.to_owned(),
        offset,
        hint,
        known: known().collect::<Vec<_>>().join(", "),
    })
}

/// Whether a message carries opt-out language, to warn a campaign whose
/// first message lacks it. A heuristic, not a legal test. It looks for the
/// word "STOP" (or "STOPALL") in capitals, as in "Reply STOP to opt out" —
/// a lower-case "stop" is too often part of the pitch — and, in any case,
/// for "opt out"/"opt-out"/"optout", "unsubscribe", and the P2P idioms
/// "STOP2END" and "STOP2QUIT".
pub fn mentions_opt_out(text: &str) -> bool {
    const ANY_CASE: [&str; 4] = ["optout", "unsubscribe", "stop2end", "stop2quit"];
    let words: Vec<&str> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .collect();
    let keyword = words.iter().any(|word| {
        matches!(*word, "STOP" | "STOPALL") || ANY_CASE.iter().any(|k| word.eq_ignore_ascii_case(k))
    });
    let opt_out = words
        .windows(2)
        .any(|pair| pair[0].eq_ignore_ascii_case("opt") && pair[1].eq_ignore_ascii_case("out"));
    keyword || opt_out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Template, TemplateError> {
        Template::parse(text, &["precinct", "polling_place"])
    }

    #[test]
    fn builtin_and_custom_fields_render_from_the_lookup() {
        let template =
            parse("Hi {first_name}, it's {texter_name}. Vote at {polling_place}!").unwrap();
        let rendered = template.render(|field| match field {
            "first_name" => Some("Ana"),
            "texter_name" => Some("Sam"),
            "polling_place" => Some("Lincoln High"),
            _ => None,
        });
        assert_eq!(rendered, "Hi Ana, it's Sam. Vote at Lincoln High!");
    }

    #[test]
    fn missing_values_render_as_empty() {
        let template = parse("Hi {first_name} {last_name}!").unwrap();
        assert_eq!(template.render(|_| None), "Hi  !");
    }

    #[test]
    fn fields_are_listed_once_in_order_of_first_use() {
        let template = parse("{last_name} {first_name} {last_name} {precinct}").unwrap();
        assert_eq!(template.fields(), ["last_name", "first_name", "precinct"]);
    }

    #[test]
    fn doubled_braces_are_literal_braces() {
        let template = parse("Use {{code}} or }} here, {first_name}").unwrap();
        assert_eq!(template.fields(), ["first_name"]);
        assert_eq!(
            template.render(|_| Some("Ana")),
            "Use {code} or } here, Ana"
        );
        assert_eq!(template.as_str(), "Use {{code}} or }} here, {first_name}");
    }

    #[test]
    fn empty_or_blank_message_is_rejected() {
        assert_eq!(parse(""), Err(TemplateError::Empty));
        assert_eq!(parse(" \n\t "), Err(TemplateError::Empty));
        assert_eq!(TemplateError::Empty.to_string(), "the message is empty");
    }

    #[test]
    fn unclosed_brace_is_reported_at_its_offset() {
        let error = parse("Hi {first_name, vote!").unwrap_err();
        assert_eq!(error, TemplateError::UnclosedBrace { offset: 3 });
        assert_eq!(
            error.to_string(),
            "unclosed '{' at character offset 3: close the field with '}', \
             or write '{{' for a literal '{'"
        );
        assert_eq!(
            parse("Hi {first_name {last_name}").unwrap_err(),
            TemplateError::UnclosedBrace { offset: 3 }
        );
    }

    #[test]
    fn offsets_count_characters_not_bytes() {
        assert_eq!(
            parse("¡Hola! {first_name").unwrap_err(),
            TemplateError::UnclosedBrace { offset: 7 }
        );
    }

    #[test]
    fn lone_closing_brace_is_reported_at_its_offset() {
        let error = parse("Hi first_name} there").unwrap_err();
        assert_eq!(error, TemplateError::UnmatchedBrace { offset: 13 });
        assert_eq!(
            error.to_string(),
            "unmatched '}' at character offset 13: write '}}' for a literal '}'"
        );
    }

    #[test]
    fn unknown_field_is_named_with_the_known_ones() {
        let error = parse("Hi {frist_name}").unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown field {frist_name} at character offset 3; known fields: \
             first_name, last_name, texter_name, precinct, polling_place"
        );
    }

    #[test]
    fn field_names_are_case_sensitive_with_a_hint() {
        let error = parse("Hi {First_Name}").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("did you mean {first_name}? (field names are case-sensitive)"),
            "{error}"
        );
    }

    #[test]
    fn field_names_must_be_ascii_identifiers() {
        for (text, name) in [
            ("Hi {}", ""),
            ("Hi { first_name }", " first_name "),
            ("Hi {1st}", "1st"),
            ("Hi {first-name}", "first-name"),
            ("Hi {prénom}", "prénom"),
        ] {
            assert_eq!(
                parse(text),
                Err(TemplateError::InvalidFieldName {
                    name: name.into(),
                    offset: 3
                }),
                "{text}"
            );
        }
        assert!(parse("{_x}").is_err_and(|e| matches!(e, TemplateError::UnknownField { .. })));
    }

    #[test]
    fn opt_out_language_is_recognized() {
        for text in [
            "Reply STOP to opt out",
            "Text STOP to end",
            "Txt Stop2End",
            "You can opt-out anytime",
            "To OPT OUT reply",
            "Reply optout",
            "Unsubscribe: reply",
            "STOPALL ends all texts",
        ] {
            assert!(mentions_opt_out(text), "{text}");
        }
    }

    #[test]
    fn messages_without_opt_out_language_are_flagged() {
        for text in [
            "Hi Ana, can we count on your vote?",
            "We must stop the pipeline!",
            "Stop by our office",
            "STOPPING by soon",
        ] {
            assert!(!mentions_opt_out(text), "{text}");
        }
    }
}
