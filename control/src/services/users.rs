//! Users: registration, login (rate limited), logout (token revocation).

use super::{cache_err, store_err};
use crate::app::AppState;
use crate::auth::Claims;
use crate::error::{AppError, AppResult, ErrorKind};
use crate::store::{StoreError, User};
use std::time::Duration;

pub const USERNAME_MIN: usize = 3;
pub const USERNAME_MAX: usize = 32;
pub const PASSWORD_MIN: usize = 8;
pub const PASSWORD_MAX: usize = 128;
pub const NICKNAME_MAX: usize = 64;

/// Cache marker: the cache holds every revocation in force (see `is_revoked`).
const REVOCATIONS_LOADED: &str = "revoked:loaded";
/// The marker is renewed (the revocations reloaded) at least this often.
const REVOCATIONS_LOADED_TTL: Duration = Duration::from_secs(7 * 86_400);

fn revoked_key(jti: &str) -> String {
    format!("revoked:{jti}")
}

fn validate_username(username: &str) -> AppResult<()> {
    let n = username.chars().count();
    if !(USERNAME_MIN..=USERNAME_MAX).contains(&n) {
        return Err(AppError::field("username", &format!("must be {USERNAME_MIN} to {USERNAME_MAX} characters")));
    }
    if !username.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.') {
        return Err(AppError::field("username", "may contain only letters, digits, '_', '-' and '.'"));
    }
    Ok(())
}

fn validate_password(p: &str) -> AppResult<()> {
    let n = p.chars().count();
    if !(PASSWORD_MIN..=PASSWORD_MAX).contains(&n) {
        return Err(AppError::field("password", &format!("must be {PASSWORD_MIN} to {PASSWORD_MAX} characters")));
    }
    Ok(())
}

impl AppState {
    /// Validates, checks the per-address registration limit, then hashes (within the
    /// password pool's bounds) and stores.
    pub async fn register(&self, username: &str, password: &str, nickname: Option<&str>, ip: &str) -> AppResult<User> {
        validate_username(username)?;
        validate_password(password)?;
        if let Some(n) = nickname {
            super::reject_control("nickname", n, false)?;
        }
        let nickname = nickname.unwrap_or(username).trim();
        if nickname.chars().count() > NICKNAME_MAX {
            return Err(AppError::field("nickname", &format!("at most {NICKNAME_MAX} characters")));
        }
        let a = &self.cfg.auth;
        let window = Duration::from_secs(a.register_window_secs.max(1));
        let n = self.cache.hit(&format!("rl:register:ip:{ip}"), window).await.map_err(cache_err)?;
        if n > a.register_limit_per_ip {
            return Err(AppError::new(
                ErrorKind::TooManyRequests,
                "too many registrations from this address; try again later",
            )
            .retry_after(window.as_secs()));
        }
        let hash = self.passwords.hash(password.to_owned()).await?;
        match self.store.create_user(username, nickname, &hash).await {
            Ok(u) => Ok(u),
            Err(StoreError::Duplicate(_)) => Err(AppError::conflict("username is already taken")),
            Err(e) => Err(store_err(e)),
        }
    }

    /// Checks the rate limits, then the password. Returns (token, claims, user).
    pub async fn login(&self, username: &str, password: &str, ip: &str) -> AppResult<(String, Claims, User)> {
        if username.is_empty() {
            return Err(AppError::field("username", "is required"));
        }
        if password.is_empty() {
            return Err(AppError::field("password", "is required"));
        }
        super::reject_control("username", username, false)?;
        if username.len() > 256 || password.len() > 1024 {
            return Err(AppError::unauthorized("invalid username or password"));
        }
        let a = &self.cfg.auth;
        let window = Duration::from_secs(a.login_window_secs.max(1));
        let per_ip = self.cache.hit(&format!("rl:login:ip:{ip}"), window).await.map_err(cache_err)?;
        if per_ip > a.login_limit_per_ip {
            return Err(AppError::new(
                ErrorKind::TooManyRequests,
                "too many login attempts from this address; try again later",
            ));
        }
        // Failures count per (user, address) and per user. An address over its own
        // limit is refused for this user; the per-user ceiling (a distributed attack)
        // spares the addresses the user has logged in from before. So failures from
        // elsewhere never lock the owner out of their usual address, and the client
        // address is the TCP peer's (forwarding headers are not trusted).
        let user_lc = username.to_ascii_lowercase();
        let pair_key = format!("rl:login:fail:{user_lc}:{ip}");
        let acct_key = format!("rl:login:fail:{user_lc}");
        let known_key = format!("login:known:{user_lc}:{ip}");
        if self.cache.get(&pair_key).await.map_err(cache_err)? >= a.login_limit_per_user as i64 {
            return Err(AppError::new(
                ErrorKind::TooManyRequests,
                "too many failed logins for this user from this address; try again later",
            )
            .retry_after(window.as_secs()));
        }
        if self.cache.get(&acct_key).await.map_err(cache_err)? >= a.login_limit_per_account as i64
            && !self.cache.has_flag(&known_key).await.map_err(cache_err)?
        {
            return Err(AppError::new(
                ErrorKind::TooManyRequests,
                "too many failed logins for this user; try again later, or from an address you logged in from before",
            )
            .retry_after(window.as_secs()));
        }
        let user = self.store.user_by_username(username).await.map_err(store_err)?;
        let hash = user.as_ref().map(|u| u.password_hash.clone());
        // Verify even for unknown users (against a dummy hash) so timing does not tell.
        let ok = self.passwords.verify(password.to_owned(), hash).await?;
        match (ok, user) {
            (true, Some(u)) => {
                let (token, claims) = self.jwt.issue(u.id, &u.username)?;
                let known = Duration::from_secs(a.known_address_days.max(1) * 86_400);
                self.cache.set_flag(&known_key, known).await.map_err(cache_err)?;
                Ok((token, claims, u))
            }
            _ => {
                self.cache.hit(&pair_key, window).await.map_err(cache_err)?;
                self.cache.hit(&acct_key, window).await.map_err(cache_err)?;
                Err(AppError::unauthorized("invalid username or password"))
            }
        }
    }

    /// Revokes the token until it would have expired anyway: in the store (so the
    /// revocation survives the loss of the cache), then in the cache (the fast path).
    /// Expired revocations are purged on the way.
    pub async fn logout(&self, claims: &Claims) -> AppResult<()> {
        let now = chrono::Utc::now();
        let expires = chrono::DateTime::from_timestamp(claims.exp, 0).unwrap_or(now).max(now);
        self.store.revoke_token(&claims.jti, expires).await.map_err(store_err)?;
        let left = (claims.exp - now.timestamp()).max(1) as u64;
        self.cache.set_flag(&revoked_key(&claims.jti), Duration::from_secs(left)).await.map_err(cache_err)?;
        match self.store.purge_revoked_tokens(now).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(purged = n, "expired token revocations deleted"),
            Err(e) => tracing::warn!(error = %e, "cannot purge expired token revocations"),
        }
        Ok(())
    }

    /// Verifies a bearer token: signature, expiry, and not revoked.
    pub async fn authenticate(&self, token: &str) -> AppResult<Claims> {
        let claims = self.jwt.verify(token)?;
        if self.is_revoked(&claims.jti).await? {
            return Err(AppError::unauthorized("token has been revoked"));
        }
        Ok(claims)
    }

    /// Whether the token `jti` was revoked. The cache answers, once it holds the
    /// revocations: a marker key says it does. Without the marker (a new in-process
    /// cache after a restart, or a Redis that lost its data), the revocations still in
    /// force are first copied from the store into the cache.
    async fn is_revoked(&self, jti: &str) -> AppResult<bool> {
        let key = revoked_key(jti);
        if self.cache.has_flag(&key).await.map_err(cache_err)? {
            return Ok(true);
        }
        if self.cache.has_flag(REVOCATIONS_LOADED).await.map_err(cache_err)? {
            return Ok(false);
        }
        {
            let _one_at_a_time = self.revocations_reload.lock().await;
            if !self.cache.has_flag(REVOCATIONS_LOADED).await.map_err(cache_err)? {
                let now = chrono::Utc::now();
                let list = self.store.revoked_tokens(now).await.map_err(store_err)?;
                for (j, exp) in &list {
                    let left = (*exp - now).num_seconds().max(1) as u64;
                    self.cache.set_flag(&revoked_key(j), Duration::from_secs(left)).await.map_err(cache_err)?;
                }
                self.cache.set_flag(REVOCATIONS_LOADED, REVOCATIONS_LOADED_TTL).await.map_err(cache_err)?;
                tracing::info!(revoked = list.len(), "token revocations loaded into the cache from the database");
            }
        }
        self.cache.has_flag(&key).await.map_err(cache_err)
    }

    pub async fn user(&self, id: i64) -> AppResult<User> {
        self.store
            .user_by_id(id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| AppError::unauthorized("user no longer exists"))
    }
}
