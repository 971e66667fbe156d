//! Human (aligned tables) and JSON renderings.

use std::io::Write;

use keyward::view::{KeyView, VersionState};
use serde::Serialize;

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

/// Prints one JSON value and a newline.
pub fn print_json<T: Serialize + ?Sized>(v: &T) {
    match serde_json::to_string(v) {
        Ok(text) => print(&format!("{text}\n")),
        // Serialising the views cannot fail (string keys, no non-finite floats).
        Err(e) => print(&format!("{{\"error\": {:?}}}\n", e.to_string())),
    }
}

/// The key as `field value` lines.
pub fn credential_rows(k: &KeyView) -> Vec<Vec<String>> {
    let join = |items: Vec<String>| {
        if items.is_empty() {
            "-".to_owned()
        } else {
            items.join(", ")
        }
    };
    let versions = k
        .versions
        .iter()
        .map(|v| match (v.state, v.not_after) {
            (VersionState::Grace, Some(end)) => format!("v{} grace until {end}", v.version),
            (VersionState::Pending, _) => format!("v{} pending until {}", v.version, v.not_before),
            (state, _) => format!("v{} {}", v.version, state.as_str()),
        })
        .collect();
    vec![
        vec!["id".into(), k.id.to_string()],
        vec!["account".into(), k.account_id.to_string()],
        vec!["environment".into(), k.environment.to_string()],
        vec!["type".into(), k.key_type.to_string()],
        vec!["name".into(), k.name.to_string()],
        vec![
            "permissions".into(),
            join(k.permissions.iter().map(ToString::to_string).collect()),
        ],
        vec![
            "meta".into(),
            join(
                k.meta
                    .as_map()
                    .iter()
                    .map(|(key, v)| format!("{key}={v}"))
                    .collect(),
            ),
        ],
        vec!["status".into(), k.status.as_str().into()],
        vec!["created".into(), k.created_at.to_string()],
        vec!["modified".into(), k.modified_at.to_string()],
        vec![
            "expires".into(),
            k.expires_at
                .map_or_else(|| "never".into(), |t| t.to_string()),
        ],
        vec!["versions".into(), join(versions)],
    ]
}

/// One line per key, with a header.
pub fn credential_table(items: &[KeyView]) -> String {
    let mut rows = vec![
        [
            "ID", "ACCOUNT", "ENV", "TYPE", "NAME", "STATUS", "CREATED", "EXPIRES",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect::<Vec<_>>(),
    ];
    for k in items {
        rows.push(vec![
            k.id.to_string(),
            k.account_id.to_string(),
            k.environment.to_string(),
            k.key_type.to_string(),
            k.name.to_string(),
            k.status.as_str().to_owned(),
            k.created_at.to_string(),
            k.expires_at
                .map_or_else(|| "never".into(), |t| t.to_string()),
        ]);
    }
    table(&rows)
}
