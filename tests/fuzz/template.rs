//! Message templates: a template built from known pieces parses and renders
//! to exactly those pieces filled in; no `{field}` placeholder survives
//! rendering; the output is bounded by the template and the values; an
//! error points at the brace it is about.

use std::collections::HashMap;

use proptest::prelude::*;
use textbank_domain::template::{BUILTIN_FIELDS, Template, TemplateError};

use crate::{TestCaseResult, generated, replay_text_corpus};

const CUSTOM: [&str; 2] = ["precinct", "polling_place"];

fn fields() -> Vec<&'static str> {
    BUILTIN_FIELDS.iter().chain(&CUSTOM).copied().collect()
}

#[derive(Debug, Clone)]
enum Piece {
    /// Literal text; its braces are written doubled.
    Text(String),
    Field(&'static str),
}

/// A template written from pieces, with the values of its fields.
#[derive(Debug, Clone)]
struct Written {
    pieces: Vec<Piece>,
    values: HashMap<&'static str, String>,
}

impl Written {
    fn source(&self) -> String {
        self.pieces
            .iter()
            .map(|piece| match piece {
                Piece::Text(text) => text.replace('{', "{{").replace('}', "}}"),
                Piece::Field(name) => format!("{{{name}}}"),
            })
            .collect()
    }

    fn rendered(&self) -> String {
        self.pieces
            .iter()
            .map(|piece| match piece {
                Piece::Text(text) => text.as_str(),
                Piece::Field(name) => self.values.get(name).map_or("", String::as_str),
            })
            .collect()
    }
}

fn written() -> impl Strategy<Value = Written> {
    let piece = prop_oneof![
        any::<String>().prop_map(Piece::Text),
        prop::sample::select(fields()).prop_map(Piece::Field),
    ];
    let value = prop_oneof![any::<String>(), "[a-zA-Z {}]{0,12}"];
    (
        prop::collection::vec(piece, 0..8),
        prop::collection::hash_map(prop::sample::select(fields()), value, 0..5),
    )
        .prop_map(|(pieces, values)| Written { pieces, values })
}

/// Text rich in braces and field names, and any text at all.
fn text() -> impl Strategy<Value = String> {
    let bits = prop::sample::select(vec![
        "{",
        "}",
        "{{",
        "}}",
        "first_name",
        "precinct",
        "First_Name",
        "frist",
        " ",
        "x",
        "1",
        "é",
        "-",
        "_",
    ]);
    prop_oneof![
        prop::collection::vec(bits, 0..12).prop_map(|bits| bits.concat()),
        any::<String>(),
    ]
}

fn check_written(written: &Written) -> TestCaseResult {
    let source = written.source();
    let parsed = Template::parse(&source, &CUSTOM);
    if source.trim().is_empty() {
        prop_assert_eq!(parsed, Err(TemplateError::Empty));
        return Ok(());
    }
    let template = match parsed {
        Ok(template) => template,
        Err(err) => return Err(TestCaseError::fail(format!("{source:?}: {err}"))),
    };
    let mut used: Vec<&str> = Vec::new();
    for piece in &written.pieces {
        if let Piece::Field(name) = piece
            && !used.contains(name)
        {
            used.push(name);
        }
    }
    prop_assert_eq!(template.fields(), used);
    let rendered = template.render(|name| written.values.get(name).map(String::as_str));
    prop_assert_eq!(&rendered, &written.rendered());
    let values: usize = written
        .pieces
        .iter()
        .filter_map(|piece| match piece {
            Piece::Field(name) => written.values.get(name).map(|v| v.chars().count()),
            Piece::Text(_) => None,
        })
        .sum();
    prop_assert!(rendered.chars().count() <= source.chars().count() + values);
    let braces = |text: &str| text.contains(['{', '}']);
    let literal_braces = written.pieces.iter().any(|piece| match piece {
        Piece::Text(text) => braces(text),
        Piece::Field(_) => false,
    });
    if !literal_braces && !written.values.values().any(|value| braces(value)) {
        prop_assert!(!braces(&rendered), "a placeholder is left: {:?}", rendered);
    }
    Ok(())
}

/// Any text: parsed, it keeps its source, renders within its bound and
/// leaves no placeholder; refused, its error names a brace where it is.
fn check_text(text: &str) -> TestCaseResult {
    let value = "Ana";
    let chars: Vec<char> = text.chars().collect();
    match Template::parse(text, &CUSTOM) {
        Ok(template) => {
            prop_assert_eq!(template.as_str(), text);
            let rendered = template.render(|_| Some(value));
            let opened = chars.iter().filter(|&&c| c == '{').count();
            prop_assert!(rendered.chars().count() <= chars.len() + opened * value.len());
            prop_assert!(template.render(|_| None).chars().count() <= chars.len());
            if !text.contains("{{") && !text.contains("}}") {
                prop_assert!(!rendered.contains(['{', '}']), "{:?} left a brace", text);
            }
            let unchecked = Template::parse_unchecked(text).render(|_| Some(value));
            prop_assert_eq!(unchecked, rendered);
        }
        Err(TemplateError::Empty) => prop_assert!(text.trim().is_empty()),
        Err(err) => {
            let (offset, brace) = match &err {
                TemplateError::UnmatchedBrace { offset } => (*offset, '}'),
                TemplateError::UnclosedBrace { offset }
                | TemplateError::InvalidFieldName { offset, .. }
                | TemplateError::UnknownField { offset, .. } => (*offset, '{'),
                TemplateError::Empty => unreachable!(),
            };
            prop_assert_eq!(chars.get(offset), Some(&brace), "{}", err);
            // A template refused for its form renders as written if it is
            // ever read back unchecked.
            if !matches!(err, TemplateError::UnknownField { .. }) {
                let unchecked = Template::parse_unchecked(text).render(|_| Some(value));
                prop_assert_eq!(unchecked.as_str(), text);
            }
        }
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Case {
    Written(Written),
    Text(String),
}

#[test]
fn templates_render_their_pieces_and_leave_no_placeholder() {
    replay_text_corpus("template", check_text);
    let cases = prop_oneof![
        written().prop_map(Case::Written),
        text().prop_map(Case::Text),
    ];
    generated("template", 1, cases, |case| match case {
        Case::Written(written) => check_written(&written),
        Case::Text(text) => check_text(&text),
    });
}
