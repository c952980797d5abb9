//! The public flag API's proof-of-work gate: `GET
//! /api/v1/public/challenge` hands out a challenge (core's `pow::issue`,
//! stateless, MACed), and `POST /api/v1/public/flags` wants it back solved
//! in the `Tapis-Challenge` and `Tapis-Proof` headers.
//!
//! Single use is kept in the database (`Store::spend_challenge`,
//! migration 0028): a verified challenge's nonce is inserted with its
//! expiry, and the insert is the check, so two `tapis serve` processes on
//! one PostgreSQL never both accept the same proof. Expired rows are
//! pruned by the insert; past `MAX_SPENT_CHALLENGES` unexpired ones, new
//! proofs wait with a 429 rather than the table growing. Nothing about the
//! client is kept.

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use serde::Serialize;
use tapis_core::Timestamp;
use tapis_core::pow::{self, PowError, PowKey, PowPolicy, Spent};
use tapis_store::Store;
use tapis_store::spent_challenges::Spend;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, ApiResult};

/// The header carrying the challenge as issued.
pub const CHALLENGE_HEADER: &str = "tapis-challenge";
/// The header carrying the decimal counter that solves it.
pub const PROOF_HEADER: &str = "tapis-proof";

/// The key and the policy (the spent set is the database's).
pub struct Challenges {
    key: PowKey,
    pub policy: PowPolicy,
}

impl std::fmt::Debug for Challenges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Challenges")
            .field("policy", &self.policy)
            .finish()
    }
}

impl Challenges {
    pub fn new(key: PowKey, policy: PowPolicy) -> Challenges {
        Challenges { key, policy }
    }

    /// A random key of this process's own (challenges from another process
    /// are refused as forged; give every process the secrets key to share
    /// one).
    pub fn random(policy: PowPolicy) -> Challenges {
        Challenges::new(PowKey::new(rand::random()), policy)
    }

    pub fn issue(&self, now: Timestamp) -> String {
        pow::issue(&self.key, self.policy, now, rand::random())
    }

    /// Verify the headers' proof and spend it in `store`: each challenge
    /// once, whichever process sees it.
    pub async fn check(&self, store: &Store, headers: &HeaderMap, now: Timestamp) -> ApiResult<()> {
        let get = |name: &str| {
            headers
                .get(name)
                .map(|v| v.to_str().unwrap_or("\u{fffd}").to_owned())
        };
        let (Some(challenge), Some(counter)) = (get(CHALLENGE_HEADER), get(PROOF_HEADER)) else {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "proof_required",
                "a public report needs a proof of work: GET /api/v1/public/challenge, find a counter so \
                 that SHA-256(challenge \":\" counter) starts with `difficulty` zero bits, and send both \
                 in the Tapis-Challenge and Tapis-Proof headers",
            ));
        };
        let spent =
            pow::verify(&self.key, self.policy, &challenge, &counter, now).map_err(|e| {
                let (status, code) = match e {
                    PowError::Malformed(_) | PowError::BadCounter => {
                        (StatusCode::BAD_REQUEST, "invalid_proof")
                    }
                    PowError::Stale(_) => (StatusCode::UNPROCESSABLE_ENTITY, "challenge_expired"),
                    PowError::Forged | PowError::TooEasy { .. } | PowError::Unsolved(_) => {
                        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_proof")
                    }
                };
                ApiError::new(status, code, e.to_string())
            })?;
        spend(store, spent).await
    }
}

async fn spend(store: &Store, s: Spent) -> ApiResult<()> {
    match store.spend_challenge(&s.nonce, s.expires_secs).await? {
        Spend::Spent => Ok(()),
        Spend::AlreadyUsed => Err(ApiError::new(
            StatusCode::CONFLICT,
            "challenge_used",
            "challenge already used: get a new one (GET /api/v1/public/challenge) for each report",
        )),
        Spend::Full => Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many public reports at once: try again in a few minutes",
        )),
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(challenge))
}

#[derive(Serialize, ToSchema)]
struct ChallengeAnswer {
    /// Send it back unchanged in `Tapis-Challenge`.
    challenge: String,
    /// Leading zero bits `SHA-256(challenge ":" counter)` must have.
    difficulty: u8,
    /// Seconds left to use it.
    expires_in: i64,
    /// What to compute, in words.
    algorithm: &'static str,
}

/// A proof-of-work challenge for one public report. Find a decimal
/// `counter` so that `SHA-256(challenge ":" counter)` starts with
/// `difficulty` zero bits; send the challenge in `Tapis-Challenge` and the
/// counter in `Tapis-Proof` with `POST /api/v1/public/flags`. Each
/// challenge is good for one report, for ten minutes.
#[utoipa::path(get, path = "/api/v1/public/challenge", security(()),
    responses((status = 200, body = ChallengeAnswer)))]
async fn challenge(state: axum::extract::State<AppState>) -> Json<ChallengeAnswer> {
    let c = &state.challenges;
    Json(ChallengeAnswer {
        challenge: c.issue(state.store.now()),
        difficulty: c.policy.difficulty,
        expires_in: c.policy.max_age_secs,
        algorithm: "sha256(challenge + \":\" + decimal counter) with `difficulty` leading zero bits",
    })
}
