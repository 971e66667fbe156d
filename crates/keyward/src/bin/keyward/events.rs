//! `keyward events`: list the audit log, print its head, verify its chain.

use std::process::ExitCode;

use keyward::Keyward;
use keyward::audit::{EventHead, EventQuery, EventView, HeadView, VerifyView};
use keyward::core::{CredentialId, Timestamp};
use serde_json::json;

use super::output::{print, print_json, table};
use super::{Failure, OP, Result};

/// What `keyward events` was asked.
pub struct Request {
    pub key: Option<CredentialId>,
    pub since: Option<String>,
    pub after: u64,
    pub limit: Option<usize>,
    pub verify: bool,
    /// `--head` alone (`Some(None)`): print the head; with a value: the pinned head to verify
    /// against.
    pub head: Option<Option<String>>,
    pub json: bool,
}

pub fn run(kw: &Keyward, req: Request) -> Result<ExitCode> {
    let pinned = match &req.head {
        Some(Some(text)) => Some(
            text.parse::<EventHead>()
                .map_err(|e| Failure::from(format!("--head {text:?}: {e}")))?,
        ),
        _ => None,
    };
    if req.verify {
        return verify(kw, pinned, req.json);
    }
    if let Some(Some(_)) = req.head {
        return Err("--head SEQ:HASH is for --verify; `--head` alone prints the head".into());
    }
    if req.head.is_some() {
        return head(kw, req.json);
    }
    list(kw, &req)
}

/// `--since`: an RFC 3339 time, or a duration before now (`24h`, `7d`).
fn parse_since(s: &str, now: Timestamp) -> Result<Timestamp> {
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(t);
    }
    match humantime::parse_duration(s) {
        Ok(d) => Ok(now.saturating_sub(d)),
        Err(_) => Err(format!(
            "--since {s:?}: expected an RFC 3339 time (2027-01-01T00:00:00Z) or a duration \
             before now (24h, 7d)"
        )
        .into()),
    }
}

fn list(kw: &Keyward, req: &Request) -> Result<ExitCode> {
    let since = req
        .since
        .as_deref()
        .map(|s| parse_since(s, kw.now()))
        .transpose()?;
    let wanted = req.limit.unwrap_or(usize::MAX);
    let mut query = EventQuery {
        key: req.key.clone(),
        since,
        after: req.after,
        limit: wanted.clamp(1, 1000),
    };
    let mut events = Vec::new();
    let mut next = None;
    while events.len() < wanted {
        query.limit = (wanted - events.len()).clamp(1, 1000);
        let page = kw.events(OP, &query)?;
        events.extend(page.events);
        next = page.next;
        match page.next {
            Some(n) => query.after = n,
            None => break,
        }
    }
    let views: Vec<EventView> = events.iter().map(EventView::from).collect();
    if req.json {
        print_json(&json!({ "data": views, "next_cursor": next.map(|n| n.to_string()) }));
    } else {
        let mut rows = vec![
            ["SEQ", "AT", "ACTOR", "ACTION", "KEY", "VERSIONS", "OUTCOME"]
                .map(str::to_owned)
                .to_vec(),
        ];
        rows.extend(views.iter().map(row));
        print(&table(&rows));
        if let Some(n) = next {
            eprintln!("note: more events may follow: --after {n}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn row(e: &EventView) -> Vec<String> {
    let actor = match (&e.actor_key_id, &e.actor_account_id) {
        (Some(id), Some(account)) => format!("{id} ({account})"),
        _ => "local operator".to_owned(),
    };
    let key = match (&e.key_id, &e.account_id, e.trimmed_up_to) {
        (_, _, Some(up_to)) => format!("events 1..={up_to}"),
        (Some(id), _, None) => id.clone(),
        (None, Some(account), None) => account.clone(),
        (None, None, None) => "-".to_owned(),
    };
    let versions = if e.versions.is_empty() {
        "-".to_owned()
    } else {
        e.versions
            .iter()
            .map(|v| format!("v{v}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let outcome = match &e.code {
        Some(code) => format!("refused: {code}"),
        None => e.outcome.to_owned(),
    };
    let mut action = e.action.to_owned();
    if !e.fields.is_empty() {
        action = format!("{action} ({})", e.fields.join(", "));
    }
    vec![
        e.seq.to_string(),
        e.at.clone(),
        actor,
        action,
        key,
        versions,
        outcome,
    ]
}

fn head(kw: &Keyward, json: bool) -> Result<ExitCode> {
    let head = kw.event_head(OP)?;
    match (head, json) {
        (Some(h), true) => print_json(&json!({ "head": HeadView::from(h) })),
        (None, true) => print_json(&json!({ "head": null })),
        (Some(h), false) => print(&format!("{h}\n")),
        (None, false) => eprintln!("note: the audit log is empty"),
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(kw: &Keyward, pinned: Option<EventHead>, json: bool) -> Result<ExitCode> {
    let verdict = kw.verify_events(OP, pinned)?;
    let view = VerifyView::from(&verdict);
    if json {
        print_json(&json!(view));
    } else {
        match &verdict {
            Ok(report) => {
                let span = match (report.first, &report.head) {
                    (Some(first), Some(h)) => format!("events {first}..={}", h.seq),
                    _ => "no events".to_owned(),
                };
                let pinned = match report.pinned {
                    keyward::audit::HeadCheck::NotGiven => {
                        "no head given: pin the head below, and pass it with --head to also \
                         catch a cut tail"
                    }
                    keyward::audit::HeadCheck::Matched => "the pinned head matches",
                    keyward::audit::HeadCheck::Trimmed => {
                        "the pinned head was removed by retention (a trim on the chain vouches \
                         for it)"
                    }
                };
                let mut rows = vec![
                    vec!["chain".to_owned(), "intact".to_owned()],
                    vec!["checked".to_owned(), format!("{} ({span})", report.events)],
                    vec!["pinned".to_owned(), pinned.to_owned()],
                ];
                if let Some(h) = &report.head {
                    rows.push(vec!["head".to_owned(), h.to_string()]);
                }
                print(&table(&rows));
            }
            Err(b) => print(&format!("chain BROKEN at event {}: {b}\n", b.seq)),
        }
    }
    Ok(if verdict.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
