//! Human (aligned tables) and JSON renderings.

use std::io::Write;

use keyward::core::{Credential, Timestamp};
use keyward::rotation::{SecretState, live_secrets, secret_state};
use serde_json::{Value, json};

/// Writes rows as columns aligned on the widest cell; the first row is the header.
pub fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                let pad = widths[c].saturating_sub(cell.chars().count());
                line.push_str(cell);
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Prints to stdout, ignoring a closed pipe.
pub fn print(s: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(s.as_bytes());
    let _ = out.flush();
}

/// Prints one JSON object and a newline.
pub fn print_json(v: &Value) {
    print(&format!("{v}\n"));
}

fn state_name(s: SecretState) -> &'static str {
    match s {
        SecretState::Pending => "pending",
        SecretState::Active => "active",
        SecretState::Grace => "grace",
        SecretState::Expired => "expired",
        SecretState::Revoked => "revoked",
    }
}

/// `active`, `disabled`, `expired` or `revoked`.
pub fn status(c: &Credential, now: Timestamp) -> &'static str {
    if !c.secrets.is_empty() && c.secrets.iter().all(|s| s.revoked_at.is_some()) {
        "revoked"
    } else if c.expires_at.is_some_and(|e| now >= e) || live_secrets(c, now).next().is_none() {
        "expired"
    } else if !c.enabled {
        "disabled"
    } else {
        "active"
    }
}

/// The credential as JSON (the HTTP service's `ApiKey` shape); never any secret.
pub fn credential_json(c: &Credential, now: Timestamp) -> Value {
    json!({
        "id": c.id.as_str(),
        "account_id": c.account.as_str(),
        "environment": c.environment.as_str(),
        "type": c.key_type.as_str(),
        "name": c.name.as_str(),
        "permissions": c.permissions.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
        "meta": c.metadata.as_map(),
        "created_at": c.created_at.to_string(),
        "modified_at": c.modified_at.to_string(),
        "expires_at": c.expires_at.map(|t| t.to_string()),
        "enabled": c.enabled,
        "status": status(c, now),
        "versions": c.secrets.iter().map(|s| json!({
            "version": s.version,
            "state": state_name(secret_state(s, c.expires_at, now)),
            "created_at": s.created_at.to_string(),
            "not_before": s.not_before.to_string(),
            "not_after": s.not_after.map(|t| t.to_string()),
            "revoked_at": s.revoked_at.map(|t| t.to_string()),
        })).collect::<Vec<_>>(),
    })
}

/// The credential as `field value` lines.
pub fn credential_rows(c: &Credential, now: Timestamp) -> Vec<Vec<String>> {
    let join = |items: Vec<String>| {
        if items.is_empty() {
            "-".to_owned()
        } else {
            items.join(", ")
        }
    };
    let versions = c
        .secrets
        .iter()
        .map(|s| {
            let state = state_name(secret_state(s, c.expires_at, now));
            match (state, s.not_after) {
                ("grace", Some(end)) => format!("v{} grace until {end}", s.version),
                ("pending", _) => format!("v{} pending until {}", s.version, s.not_before),
                _ => format!("v{} {state}", s.version),
            }
        })
        .collect();
    vec![
        vec!["id".into(), c.id.to_string()],
        vec!["account".into(), c.account.to_string()],
        vec!["environment".into(), c.environment.to_string()],
        vec!["type".into(), c.key_type.to_string()],
        vec!["name".into(), c.name.to_string()],
        vec![
            "permissions".into(),
            join(c.permissions.iter().map(ToString::to_string).collect()),
        ],
        vec![
            "meta".into(),
            join(
                c.metadata
                    .as_map()
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect(),
            ),
        ],
        vec!["status".into(), status(c, now).into()],
        vec!["created".into(), c.created_at.to_string()],
        vec!["modified".into(), c.modified_at.to_string()],
        vec![
            "expires".into(),
            c.expires_at
                .map_or_else(|| "never".into(), |t| t.to_string()),
        ],
        vec!["versions".into(), join(versions)],
    ]
}

/// One line per credential, with a header.
pub fn credential_table(items: &[Credential], now: Timestamp) -> String {
    let mut rows = vec![
        [
            "ID", "ACCOUNT", "ENV", "TYPE", "NAME", "STATUS", "CREATED", "EXPIRES",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect::<Vec<_>>(),
    ];
    for c in items {
        rows.push(vec![
            c.id.to_string(),
            c.account.to_string(),
            c.environment.to_string(),
            c.key_type.to_string(),
            c.name.to_string(),
            status(c, now).to_owned(),
            c.created_at.to_string(),
            c.expires_at
                .map_or_else(|| "never".into(), |t| t.to_string()),
        ]);
    }
    table(&rows)
}
