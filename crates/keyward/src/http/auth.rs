//! Reading the presented key and authorising management calls.

use axum::http::{HeaderMap, HeaderName, header};
use keyward_core::{AccountId, KeyType, Permission};

use super::problem::Problem;
use crate::{Keyward, Verified};

/// The default header: `X-API-KEY`.
pub(crate) const API_KEY_HEADER: HeaderName = HeaderName::from_static("x-api-key");

/// The key presented in `header`, else in `Authorization: Bearer <key>`. `None`: no key at all
/// (an empty header counts as none). A header value that is not visible ASCII reads as an
/// invalid key.
pub(crate) fn presented_key<'h>(
    headers: &'h HeaderMap,
    header_name: &HeaderName,
) -> Option<&'h str> {
    if let Some(v) = headers.get(header_name) {
        match v.to_str().map(str::trim) {
            Ok("") => {}
            Ok(key) => return Some(key),
            Err(_) => return Some("\u{fffd}"),
        }
    }
    let auth = headers.get(header::AUTHORIZATION)?;
    let auth = auth.to_str().unwrap_or("");
    let (scheme, token) = auth.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The management permissions.
#[derive(Debug)]
pub(crate) struct Perms {
    pub(crate) read: Permission,
    pub(crate) write: Permission,
    pub(crate) verify: Permission,
    pub(crate) admin: Permission,
}

impl Perms {
    pub(crate) fn new() -> Self {
        // These literals always parse; should one not, `*` is required instead (fail closed).
        let p = |s: &str| Permission::parse(s).unwrap_or_else(|_| Permission::all());
        Self {
            read: p("api-key:read"),
            write: p("api-key:write"),
            verify: p("api-key:verify"),
            admin: p("api-key:admin"),
        }
    }
}

/// What a management endpoint needs from the caller's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    /// Any valid key (whoami).
    AnyKey,
    /// A secret key with `api-key:read`.
    Read,
    /// A secret key with `api-key:write`.
    Write,
    /// A key with `api-key:verify`.
    Verify,
    /// A secret key with `api-key:read` and `api-key:admin`: reading every account's keys
    /// (what listing another account already needs), e.g. the whole-store export.
    Admin,
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) verified: Verified,
    pub(crate) admin: bool,
}

impl Caller {
    pub(crate) fn account(&self) -> &AccountId {
        self.verified.account()
    }

    /// Checks that the caller may act on `account`'s keys.
    pub(crate) fn reach(&self, account: &AccountId) -> Result<(), Problem> {
        if self.account() == account || self.admin {
            Ok(())
        } else {
            Err(Problem::forbidden(
                "other_account",
                "this key belongs to another account (reaching other accounts needs `api-key:admin`)",
            ))
        }
    }
}

/// Authenticates the request's key and checks it holds what `need` asks for.
pub(crate) fn authenticate(
    kw: &Keyward,
    perms: &Perms,
    headers: &HeaderMap,
    need: Need,
) -> Result<Caller, Problem> {
    let key = presented_key(headers, &API_KEY_HEADER).ok_or_else(Problem::missing_key)?;
    let verified = kw.verify(key).map_err(|_| Problem::invalid_key())?;
    let required = match need {
        Need::AnyKey => None,
        Need::Read => Some(&perms.read),
        Need::Write => Some(&perms.write),
        Need::Verify => Some(&perms.verify),
        Need::Admin => Some(&perms.read),
    };
    if matches!(need, Need::Read | Need::Write | Need::Admin)
        && verified.key_type() != KeyType::Secret
    {
        return Err(Problem::forbidden(
            "secret_key_required",
            "managing API keys needs a secret key",
        ));
    }
    if let Some(p) = required
        && !verified.permissions().allows(p)
    {
        return Err(Problem::forbidden(
            "missing_permission",
            format!("this key lacks the `{p}` permission"),
        ));
    }
    let admin = verified.permissions().allows(&perms.admin);
    if need == Need::Admin && !admin {
        return Err(Problem::forbidden(
            "missing_permission",
            format!("this key lacks the `{}` permission", perms.admin),
        ));
    }
    Ok(Caller { verified, admin })
}
