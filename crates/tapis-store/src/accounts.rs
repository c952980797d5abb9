//! People's accounts for the web interface, their sessions and one-time
//! links.
//!
//! An account belongs to one party, names one person (four eyes compares
//! it, as it does for tokens) and holds one or more roles that fit the
//! party's kind. Its password is hashed with argon2id; a session is a
//! random 256-bit secret of which only the SHA-256 is kept, with an idle
//! and an absolute lifetime, and a per-session CSRF token. A signed-in
//! session becomes a [`Principal`] with one active role, so every store
//! method applies the same role and party rules to a person in a browser
//! as to a token. Parties onboard their own people: an invitation code is
//! redeemed for an account here exactly as for a token in
//! `invitations.rs`, and the authority never learns the password. A
//! forgotten password is replaced through a one-time link an admin issues
//! (`tapis account link`), never by the admin choosing it.
//!
//! Repeated failures lock an account with a growing back-off
//! ([`MAX_FAILED_SIGNINS`], [`lockout_for`]); the lock is an audit event.
//! Failed sign-ins themselves are not audited (a stranger could otherwise
//! fill the log) but counted on the account.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::Row;
use tapis_core::EventType;
use tapis_core::audit::Actor;
use tapis_core::party::PartyKind;
use tapis_core::person::Person;
use tapis_core::role::Role;
use tapis_core::{PartyId, Timestamp, TokenId};

use crate::tokens::{hash_secret, load_party};
use crate::{Error, Principal, Result, Store, audit};

/// Wrong passwords in a row before an account locks.
pub const MAX_FAILED_SIGNINS: i64 = 5;
/// How long a one-time link (set or reset a password) works.
pub const LINK_LIFETIME_MS: i64 = 24 * 3600 * 1000;
/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// How long an account stays locked after `failures` wrong passwords in a
/// row: a minute at the limit, doubling with each further failure, at
/// most an hour.
pub fn lockout_for(failures: i64) -> Option<i64> {
    if failures < MAX_FAILED_SIGNINS {
        return None;
    }
    let doublings = (failures - MAX_FAILED_SIGNINS).min(6) as u32;
    Some((60_000i64 << doublings).min(3_600_000))
}

/// argon2id with OWASP's recommended minimum (19 MiB, two passes, one
/// lane): slow enough to make guessing a stolen hash costly, cheap enough
/// for a sign-in page (not measured here yet; the hash runs on a blocking
/// thread so it never stalls the async workers).
fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("constant argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The argon2id PHC string for `password`, after checking its length.
pub fn hash_password(password: &str) -> Result<String> {
    check_password(password)?;
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| Error::corrupt(e.to_string()))?;
    Ok(hasher()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| Error::corrupt(format!("cannot hash a password: {e}")))?
        .to_string())
}

fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| hasher().verify_password(password.as_bytes(), &h).is_ok())
        .unwrap_or(false)
}

/// A password is 12 to 1,024 characters; nothing else is imposed (length
/// is what makes a password strong).
pub fn check_password(password: &str) -> Result<()> {
    let n = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=1024).contains(&n) {
        return Err(tapis_core::Error::invalid(
            "password",
            format!("a password is {MIN_PASSWORD_CHARS} to 1024 characters"),
        )
        .into());
    }
    Ok(())
}

/// A login name: 3 to 64 lowercase letters, digits and `._@-`.
pub fn parse_login(raw: &str) -> Result<String> {
    let login = raw.trim().to_lowercase();
    let ok = (3..=64).contains(&login.len())
        && login
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._@-".contains(&b));
    if !ok {
        return Err(tapis_core::Error::invalid(
            "login",
            "a login is 3 to 64 lowercase letters, digits and . _ @ -",
        )
        .into());
    }
    Ok(login)
}

fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// An account as shown (never its password hash).
#[derive(Debug, Clone, Serialize)]
pub struct AccountInfo {
    pub id: TokenId,
    pub party_id: PartyId,
    pub party_kind: PartyKind,
    pub party_name: String,
    pub login: String,
    pub person: Person,
    pub roles: Vec<Role>,
    pub created_at: Timestamp,
    pub disabled: bool,
    pub has_password: bool,
    /// Sign-in asks for a code from an authenticator app (`two_step.rs`).
    pub two_step: bool,
}

/// How long sessions live.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    /// A session unused this long ends.
    pub idle_ms: i64,
    /// A session ends this long after sign-in, used or not.
    pub absolute_ms: i64,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        SessionPolicy {
            idle_ms: 30 * 60 * 1000,
            absolute_ms: 12 * 3600 * 1000,
        }
    }
}

/// A live session: who, in which role, with which CSRF token.
#[derive(Debug, Clone)]
pub struct Session {
    pub principal: Principal,
    pub account: AccountInfo,
    pub csrf: String,
    pub expires_at: Timestamp,
}

/// What a sign-in attempt came to.
#[derive(Debug)]
pub enum SignIn {
    /// The session's secret (for the cookie) and the session.
    Ok(String, Box<Session>),
    /// Unknown login or wrong password (indistinguishable to the caller).
    Refused,
    /// Too many failures: try again after this instant.
    Locked(Timestamp),
}

const ACCOUNT_COLUMNS: &str = "a.id, a.party_id, a.login, a.person, a.roles, a.password_hash, \
     a.created_at, a.disabled_at, a.failed_signins, a.locked_until, a.totp_secret, \
     a.totp_last_step, p.kind, p.name";

fn roles_text(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn account_from_row(row: &sqlx::any::AnyRow) -> Result<AccountInfo> {
    let get = |c: &str| -> Result<String> { Ok(row.try_get::<String, _>(c)?) };
    Ok(AccountInfo {
        id: TokenId::parse(&get("id")?).map_err(Error::corrupt)?,
        party_id: PartyId::parse(&get("party_id")?).map_err(Error::corrupt)?,
        party_kind: PartyKind::parse(&get("kind")?).map_err(Error::corrupt)?,
        party_name: get("name")?,
        login: get("login")?,
        person: Person::from_stored(&get("person")?).map_err(Error::corrupt)?,
        roles: get("roles")?
            .split(',')
            .map(Role::parse)
            .collect::<tapis_core::Result<_>>()
            .map_err(Error::corrupt)?,
        created_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
        disabled: row.try_get::<Option<i64>, _>("disabled_at")?.is_some(),
        has_password: row.try_get::<Option<String>, _>("password_hash")?.is_some(),
        two_step: row.try_get::<Option<String>, _>("totp_secret")?.is_some(),
    })
}

fn principal_of(account: &AccountInfo, role: Role) -> Principal {
    Principal {
        // an account's id is in the token-id space, so the audit log names
        // the account the way it names a token
        token_id: account.id,
        party_id: account.party_id,
        party_kind: account.party_kind,
        role,
        label: format!("account {}", account.login),
        person: Some(account.person.clone()),
    }
}

pub(crate) fn account_actor(account: &AccountInfo) -> Actor {
    Actor {
        kind: "account",
        party_id: Some(account.party_id.to_string()),
        token_id: Some(account.id.to_string()),
        label: format!("account {}", account.login),
        role: account.roles.first().map(|r| r.as_str().to_owned()),
        person: Some(account.person.as_str().to_owned()),
    }
}

type Tx = sqlx::Transaction<'static, sqlx::Any>;

#[allow(clippy::too_many_arguments)]
async fn insert_account(
    tx: &mut Tx,
    now: Timestamp,
    actor: &Actor,
    party_id: PartyId,
    login: &str,
    person: &Person,
    roles: &[Role],
    password_hash: Option<&str>,
) -> Result<AccountInfo> {
    let party = load_party(tx, party_id).await?;
    if roles.is_empty() {
        return Err(tapis_core::Error::invalid("roles", "an account needs a role").into());
    }
    for r in roles {
        tapis_core::role::fits(party.kind, *r)?;
    }
    let taken = sqlx::query("SELECT 1 AS x FROM accounts WHERE login = $1")
        .bind(login)
        .fetch_optional(&mut **tx)
        .await?;
    if taken.is_some() {
        return Err(Error::Conflict(
            "that login is taken: choose another".into(),
        ));
    }
    // An account is backed by a token row of the same id, whose secret is
    // thrown away: records that name who acted (a notice's issuer, an
    // order's proposer) reference tokens, so a person in a browser is
    // named the way a token holder is, and revoking that token (the
    // party's own members may) ends the account's sessions.
    let id = TokenId::new();
    let secret = crate::tokens::new_secret();
    crate::tokens::insert_token(
        tx,
        now,
        actor,
        id,
        &party,
        roles[0],
        &format!("web account {login}"),
        Some(person),
        &hash_secret(&secret),
        None,
    )
    .await?;
    sqlx::query(
        "INSERT INTO accounts (id, party_id, login, person, roles, password_hash, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id.to_string())
    .bind(party_id.to_string())
    .bind(login)
    .bind(person.as_str())
    .bind(roles_text(roles))
    .bind(password_hash)
    .bind(now.unix_millis())
    .execute(&mut **tx)
    .await?;
    audit::append(
        tx,
        now,
        actor,
        EventType::AccountCreated,
        ("party", &party_id.to_string()),
        Value::Null,
        json!({"account_id": id.to_string(), "login": login, "person": person, "roles": roles}),
    )
    .await?;
    Ok(AccountInfo {
        id,
        party_id,
        party_kind: party.kind,
        party_name: party.name,
        login: login.to_owned(),
        person: person.clone(),
        roles: roles.to_vec(),
        created_at: now,
        disabled: false,
        has_password: password_hash.is_some(),
        two_step: false,
    })
}

/// Hash off the async threads: argon2 takes tens of milliseconds.
async fn hash_blocking(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| Error::corrupt(format!("password hashing stopped: {e}")))?
}

impl Store {
    /// Create an account on the host (`tapis account create`, the demo):
    /// with a password, or without one and a one-time link to set it.
    pub async fn create_account(
        &self,
        actor: &Actor,
        party_id: PartyId,
        login: &str,
        person: &Person,
        roles: &[Role],
        password: Option<&str>,
    ) -> Result<AccountInfo> {
        let login = parse_login(login)?;
        let hash = match password {
            Some(p) => Some(hash_blocking(p.to_owned()).await?),
            None => None,
        };
        let mut tx = self.write().await?;
        let info = insert_account(
            &mut tx,
            self.now(),
            actor,
            party_id,
            &login,
            person,
            roles,
            hash.as_deref(),
        )
        .await?;
        tx.commit().await?;
        Ok(info)
    }

    pub async fn get_account(&self, login: &str) -> Result<AccountInfo> {
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts a JOIN parties p ON p.id = a.party_id WHERE a.login = $1"
        ))
        .bind(login.trim().to_lowercase())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(Error::NotFound("account"))?;
        account_from_row(&row)
    }

    /// A one-time link code with which the account's holder sets a new
    /// password (issued on the host by an admin: `tapis account link`).
    /// Earlier unused links of the account stop working.
    pub async fn issue_account_link(
        &self,
        actor: &Actor,
        login: &str,
    ) -> Result<(AccountInfo, String)> {
        let account = self.get_account(login).await?;
        let code = new_secret();
        let now = self.now();
        let mut tx = self.write().await?;
        sqlx::query(
            "UPDATE account_links SET used_at = $1 WHERE account_id = $2 AND used_at IS NULL",
        )
        .bind(now.unix_millis())
        .bind(account.id.to_string())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO account_links (code_hash, account_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(hash_secret(&code))
        .bind(account.id.to_string())
        .bind(now.unix_millis())
        .bind(now.plus_millis(LINK_LIFETIME_MS).unix_millis())
        .execute(&mut *tx)
        .await?;
        audit::append(
            &mut tx,
            now,
            actor,
            EventType::AccountLinkIssued,
            ("party", &account.party_id.to_string()),
            Value::Null,
            json!({"account_id": account.id.to_string(), "login": account.login}),
        )
        .await?;
        tx.commit().await?;
        Ok((account, code))
    }

    /// The account a live one-time link is for.
    pub async fn account_link(&self, code: &str) -> Result<AccountInfo> {
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM account_links l JOIN accounts a ON a.id = l.account_id \
             JOIN parties p ON p.id = a.party_id \
             WHERE l.code_hash = $1 AND l.used_at IS NULL AND l.expires_at > $2"
        ))
        .bind(hash_secret(code.trim()))
        .bind(self.now().unix_millis())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(Error::NotFound("link"))?;
        account_from_row(&row)
    }

    /// Spend a one-time link: set the password, unlock the account and end
    /// its sessions.
    pub async fn use_account_link(&self, code: &str, password: &str) -> Result<AccountInfo> {
        let account = self.account_link(code).await?;
        let hash = hash_blocking(password.to_owned()).await?;
        let now = self.now();
        let mut tx = self.write().await?;
        let spent = sqlx::query(
            "UPDATE account_links SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL AND expires_at > $1",
        )
        .bind(now.unix_millis())
        .bind(hash_secret(code.trim()))
        .execute(&mut *tx)
        .await?;
        if spent.rows_affected() != 1 {
            return Err(Error::NotFound("link"));
        }
        // the link is also the way back for a person who lost their
        // authenticator: setting a password clears two-step sign-in
        sqlx::query(
            "UPDATE accounts SET password_hash = $1, failed_signins = 0, locked_until = NULL, \
             totp_secret = NULL, totp_pending = NULL, totp_last_step = NULL WHERE id = $2",
        )
        .bind(&hash)
        .bind(account.id.to_string())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE web_sessions SET ended_at = $1 WHERE account_id = $2 AND ended_at IS NULL",
        )
        .bind(now.unix_millis())
        .bind(account.id.to_string())
        .execute(&mut *tx)
        .await?;
        audit::append(
            &mut tx,
            now,
            &account_actor(&account),
            EventType::AccountPasswordSet,
            ("party", &account.party_id.to_string()),
            Value::Null,
            json!({"account_id": account.id.to_string(), "two_step_cleared": account.two_step}),
        )
        .await?;
        tx.commit().await?;
        Ok(AccountInfo {
            has_password: true,
            two_step: false,
            ..account
        })
    }

    /// What a live invitation code is for: the party's name and kind, and
    /// the role.
    pub async fn invitation_for(&self, code: &str) -> Result<(String, PartyKind, Role)> {
        let row = sqlx::query(
            "SELECT p.name, p.kind, i.role FROM invitations i JOIN parties p ON p.id = i.party_id \
             WHERE i.code_hash = $1 AND i.accepted_at IS NULL AND i.expires_at > $2",
        )
        .bind(hash_secret(code.trim()))
        .bind(self.now().unix_millis())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(Error::NotFound("invitation"))?;
        Ok((
            row.try_get("name")?,
            PartyKind::parse(&row.try_get::<String, _>("kind")?).map_err(Error::corrupt)?,
            Role::parse(&row.try_get::<String, _>("role")?).map_err(Error::corrupt)?,
        ))
    }

    /// Redeem an invitation code for an account of the invited party and
    /// role: the party's person chooses the login and password, so no one
    /// at the authority ever holds them. The code is spent in the same
    /// transaction.
    pub async fn accept_invitation_as_account(
        &self,
        code: &str,
        login: &str,
        person: &Person,
        password: &str,
    ) -> Result<AccountInfo> {
        let login = parse_login(login)?;
        let hash = hash_blocking(password.to_owned()).await?;
        let mut tx = self.write().await?;
        let now = self.now();
        let row = sqlx::query(
            "SELECT id, party_id, role FROM invitations \
             WHERE code_hash = $1 AND accepted_at IS NULL AND expires_at > $2",
        )
        .bind(hash_secret(code.trim()))
        .bind(now.unix_millis())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Error::NotFound("invitation"))?;
        let inv_id: String = row.try_get("id")?;
        let role = Role::parse(&row.try_get::<String, _>("role")?).map_err(Error::corrupt)?;
        let party_id =
            PartyId::parse(&row.try_get::<String, _>("party_id")?).map_err(Error::corrupt)?;
        let actor = Actor {
            kind: "invitation",
            party_id: Some(party_id.to_string()),
            token_id: None,
            label: format!("account {login}"),
            role: Some(role.as_str().to_owned()),
            person: Some(person.as_str().to_owned()),
        };
        let info = insert_account(
            &mut tx,
            now,
            &actor,
            party_id,
            &login,
            person,
            &[role],
            Some(&hash),
        )
        .await?;
        let spent = sqlx::query(
            "UPDATE invitations SET accepted_at = $1, account_id = $2 WHERE id = $3 AND accepted_at IS NULL",
        )
        .bind(now.unix_millis())
        .bind(info.id.to_string())
        .bind(&inv_id)
        .execute(&mut *tx)
        .await?;
        if spent.rows_affected() != 1 {
            return Err(Error::NotFound("invitation"));
        }
        audit::append(
            &mut tx,
            now,
            &actor,
            EventType::InvitationAccepted,
            ("party", &party_id.to_string()),
            Value::Null,
            json!({"invitation_id": inv_id, "account_id": info.id.to_string()}),
        )
        .await?;
        tx.commit().await?;
        Ok(info)
    }

    /// Check a login and password; on success start a session in the
    /// account's first role. Unknown logins cost the same argon2 work as
    /// known ones, so timing does not tell which logins exist.
    pub async fn sign_in(
        &self,
        login: &str,
        password: &str,
        policy: SessionPolicy,
    ) -> Result<SignIn> {
        self.sign_in_with_code(login, password, None, policy).await
    }

    /// [`Store::sign_in`], with the code from an authenticator app for an
    /// account that has two-step sign-in. A missing or wrong code counts
    /// as a failed sign-in, indistinguishable from a wrong password (so
    /// the refusal never confirms that a password was right).
    pub async fn sign_in_with_code(
        &self,
        login: &str,
        password: &str,
        code: Option<&str>,
        policy: SessionPolicy,
    ) -> Result<SignIn> {
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts a JOIN parties p ON p.id = a.party_id \
             JOIN tokens t ON t.id = a.id WHERE a.login = $1 AND t.revoked_at IS NULL"
        ))
        .bind(login.trim().to_lowercase())
        .fetch_optional(&self.pool)
        .await?;
        let now = self.now();
        let mut second_step = None;
        let (account, hash, failures) = match &row {
            Some(row) => {
                if let Some(until) = row.try_get::<Option<i64>, _>("locked_until")?
                    && until > now.unix_millis()
                {
                    return Ok(SignIn::Locked(Timestamp::from_unix_millis(until)));
                }
                second_step = row
                    .try_get::<Option<String>, _>("totp_secret")?
                    .map(|s| Ok::<_, Error>((s, row.try_get::<Option<i64>, _>("totp_last_step")?)))
                    .transpose()?;
                (
                    Some(account_from_row(row)?),
                    row.try_get::<Option<String>, _>("password_hash")?,
                    row.try_get::<i64, _>("failed_signins")?,
                )
            }
            None => (None, None, 0),
        };
        let password = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || match hash {
            Some(h) => verify_password(&h, &password),
            None => {
                // the same work as a real check, then a refusal
                let _ = hash_password("not a password of anyone's");
                false
            }
        })
        .await
        .map_err(|e| Error::corrupt(format!("password check stopped: {e}")))?;
        let Some(account) = account else {
            return Ok(SignIn::Refused);
        };
        if account.disabled {
            return Ok(SignIn::Refused);
        }
        // the second step, only once the password is right
        let step = match (&second_step, ok) {
            (Some((stored, last)), true) => {
                self.check_code(&account, stored, code.unwrap_or(""), *last)?
            }
            _ => None,
        };
        let ok = ok && (second_step.is_none() || step.is_some());
        let mut tx = self.write().await?;
        if let Some(step) = step
            && !crate::two_step::spend_step(&mut tx, &account, step).await?
        {
            // the same code was just used by a concurrent sign-in
            drop(tx);
            return Ok(SignIn::Refused);
        }
        if !ok {
            let failures = failures + 1;
            let lock = lockout_for(failures).map(|ms| now.plus_millis(ms));
            sqlx::query("UPDATE accounts SET failed_signins = $1, locked_until = $2 WHERE id = $3")
                .bind(failures)
                .bind(lock.map(Timestamp::unix_millis))
                .bind(account.id.to_string())
                .execute(&mut *tx)
                .await?;
            if let Some(until) = lock {
                audit::append(
                    &mut tx,
                    now,
                    &Actor::system("sign-in lockout"),
                    EventType::AccountLocked,
                    ("party", &account.party_id.to_string()),
                    Value::Null,
                    json!({"account_id": account.id.to_string(), "failures": failures, "until": until.to_string()}),
                )
                .await?;
            }
            tx.commit().await?;
            return Ok(match lock {
                Some(until) => SignIn::Locked(until),
                None => SignIn::Refused,
            });
        }
        sqlx::query("UPDATE accounts SET failed_signins = 0, locked_until = NULL WHERE id = $1")
            .bind(account.id.to_string())
            .execute(&mut *tx)
            .await?;
        let secret = new_secret();
        let csrf = new_secret();
        let role = account.roles[0];
        sqlx::query(
            "INSERT INTO web_sessions (id_hash, account_id, role, csrf, created_at, last_seen_at) \
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(hash_secret(&secret))
        .bind(account.id.to_string())
        .bind(role.as_str())
        .bind(&csrf)
        .bind(now.unix_millis())
        .execute(&mut *tx)
        .await?;
        audit::append(
            &mut tx,
            now,
            &account_actor(&account),
            EventType::AccountSignedIn,
            ("party", &account.party_id.to_string()),
            Value::Null,
            json!({"account_id": account.id.to_string(), "role": role.as_str()}),
        )
        .await?;
        tx.commit().await?;
        let session = Session {
            principal: principal_of(&account, role),
            expires_at: now.plus_millis(policy.idle_ms.min(policy.absolute_ms)),
            account,
            csrf,
        };
        Ok(SignIn::Ok(secret, Box::new(session)))
    }

    /// The live session a cookie's secret names, if any: not ended, used
    /// within the idle time, younger than the absolute lifetime, its
    /// account not disabled. Notes the use (bookkeeping, not audited).
    pub async fn session(&self, secret: &str, policy: SessionPolicy) -> Result<Option<Session>> {
        let now = self.now().unix_millis();
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS}, s.role AS session_role, s.csrf, s.created_at AS s_created, s.last_seen_at \
             FROM web_sessions s JOIN accounts a ON a.id = s.account_id JOIN parties p ON p.id = a.party_id \
             JOIN tokens t ON t.id = a.id \
             WHERE s.id_hash = $1 AND s.ended_at IS NULL AND a.disabled_at IS NULL AND t.revoked_at IS NULL"
        ))
        .bind(hash_secret(secret))
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let created: i64 = row.try_get("s_created")?;
        let seen: i64 = row.try_get("last_seen_at")?;
        if now - seen >= policy.idle_ms || now - created >= policy.absolute_ms {
            return Ok(None);
        }
        let account = account_from_row(&row)?;
        let role =
            Role::parse(&row.try_get::<String, _>("session_role")?).map_err(Error::corrupt)?;
        if now - seen > 15_000 {
            sqlx::query("UPDATE web_sessions SET last_seen_at = $1 WHERE id_hash = $2")
                .bind(now)
                .bind(hash_secret(secret))
                .execute(&self.pool)
                .await?;
        }
        Ok(Some(Session {
            principal: principal_of(&account, role),
            expires_at: Timestamp::from_unix_millis(
                (now + policy.idle_ms).min(created + policy.absolute_ms),
            ),
            account,
            csrf: row.try_get("csrf")?,
        }))
    }

    /// Switch a session to another of its account's roles.
    pub async fn switch_role(&self, secret: &str, session: &Session, role: Role) -> Result<()> {
        if !session.account.roles.contains(&role) {
            return Err(
                tapis_core::Error::invalid("role", "this account does not hold that role").into(),
            );
        }
        sqlx::query("UPDATE web_sessions SET role = $1 WHERE id_hash = $2 AND ended_at IS NULL")
            .bind(role.as_str())
            .bind(hash_secret(secret))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// End a session (sign out).
    pub async fn sign_out(&self, secret: &str, session: &Session) -> Result<()> {
        let now = self.now();
        let mut tx = self.write().await?;
        let ended = sqlx::query(
            "UPDATE web_sessions SET ended_at = $1 WHERE id_hash = $2 AND ended_at IS NULL",
        )
        .bind(now.unix_millis())
        .bind(hash_secret(secret))
        .execute(&mut *tx)
        .await?;
        if ended.rows_affected() == 1 {
            audit::append(
                &mut tx,
                now,
                &account_actor(&session.account),
                EventType::AccountSignedOut,
                ("party", &session.account.party_id.to_string()),
                Value::Null,
                json!({"account_id": session.account.id.to_string()}),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockout_grows_and_is_capped() {
        assert_eq!(lockout_for(4), None);
        assert_eq!(lockout_for(5), Some(60_000));
        assert_eq!(lockout_for(6), Some(120_000));
        assert_eq!(lockout_for(100), Some(3_600_000));
    }

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let h = hash_password("correct horse battery").expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password(&h, "correct horse battery"));
        assert!(!verify_password(&h, "correct horse battery!"));
        assert!(hash_password("short").is_err());
    }

    #[test]
    fn logins_are_plain() {
        assert_eq!(
            parse_login(" Siti.Rahma@kominfo ").expect("ok"),
            "siti.rahma@kominfo"
        );
        assert!(parse_login("a b").is_err());
        assert!(parse_login("<x>").is_err());
    }
}
