//! Users, their signed-in sessions, API tokens and webhook deliveries. Secrets are never stored:
//! passwords as argon2 hashes, session and API tokens as SHA-256 hashes (they are random and
//! long, so a fast hash is enough), webhook secrets not at all (they live in the environment).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{jobs::is_unique_violation, Store, StoreError};
use crate::on_pool;

/// A row of `users`.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct UserRow {
    pub id: Uuid,
    pub name: String,
    pub role: String,
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A signed-in session with its user.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct SessionUser {
    pub user_id: Uuid,
    pub name: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
    pub seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A row of `api_tokens` (without its hash).
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct TokenRow {
    pub name: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A new signed-in session.
#[derive(Clone, Debug)]
pub struct NewAuthSession<'a> {
    pub token_hash: &'a str,
    pub user_id: Uuid,
    pub now: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub address: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

const USER_COLUMNS: &str = "id, name, role, password_hash, created_at, updated_at";
const TOKEN_COLUMNS: &str = "name, role, created_at, created_by, last_used_at, revoked_at";

/// Names are unique ignoring case: `Anna` and `anna` are one user.
fn name_key(name: &str) -> String {
    name.trim().to_lowercase()
}

impl Store {
    /// Adds a user; `false` when one with that name (ignoring case) exists.
    pub async fn insert_user(
        &self,
        name: &str,
        role: &str,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        let sql = "insert into users (id, name, name_key, role, password_hash, created_at, \
                   updated_at) values ($1, $2, $3, $4, $5, $6, $6)";
        let result = on_pool!(self, pool => {
            sqlx::query(sql)
                .bind(Uuid::now_v7())
                .bind(name.trim())
                .bind(name_key(name))
                .bind(role)
                .bind(password_hash)
                .bind(Utc::now())
                .execute(pool)
                .await
                .map(|_| ())
        });
        match result {
            Ok(()) => Ok(true),
            Err(err) if is_unique_violation(&err) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    /// Adds the first user, only while there is none (the first-start setup); `false` when a
    /// user exists already.
    pub async fn insert_first_user(
        &self,
        name: &str,
        role: &str,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        let sql = "insert into users (id, name, name_key, role, password_hash, created_at, \
                   updated_at) select $1, $2, $3, $4, $5, $6, $6 \
                   where not exists (select 1 from users)";
        let done = on_pool!(self, pool => {
            sqlx::query(sql)
                .bind(Uuid::now_v7())
                .bind(name.trim())
                .bind(name_key(name))
                .bind(role)
                .bind(password_hash)
                .bind(Utc::now())
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done == 1)
    }

    /// The user named `name` (ignoring case).
    pub async fn user(&self, name: &str) -> Result<Option<UserRow>, StoreError> {
        let sql = format!("select {USER_COLUMNS} from users where name_key = $1");
        Ok(on_pool!(read self, pool => {
            sqlx::query_as(&sql).bind(name_key(name)).fetch_optional(pool).await?
        }))
    }

    /// Every user, by name, with the number of their sessions that have not expired by `now`.
    pub async fn users(&self, now: DateTime<Utc>) -> Result<Vec<(UserRow, i64)>, StoreError> {
        let sql = format!(
            "select {USER_COLUMNS}, (select count(*) from auth_sessions s where s.user_id = \
             users.id and s.expires_at > $1) as sessions from users order by name_key"
        );
        let rows: Vec<UserWithSessions> = on_pool!(read self, pool => {
            sqlx::query_as(&sql).bind(now).fetch_all(pool).await?
        });
        Ok(rows
            .into_iter()
            .map(|r| {
                (
                    UserRow {
                        id: r.id,
                        name: r.name,
                        role: r.role,
                        password_hash: r.password_hash,
                        created_at: r.created_at,
                        updated_at: r.updated_at,
                    },
                    r.sessions,
                )
            })
            .collect())
    }

    /// How many users there are, and how many of them are admins.
    pub async fn count_users(&self) -> Result<(i64, i64), StoreError> {
        let sql = "select count(*), coalesce(sum(case when role = 'admin' then 1 else 0 end), 0) \
                   from users";
        let (all, admins): (i64, i64) = on_pool!(read self, pool => {
            sqlx::query_as(sql).fetch_one(pool).await?
        });
        Ok((all, admins))
    }

    /// Changes a user's role; `false` for an unknown user.
    pub async fn set_user_role(&self, name: &str, role: &str) -> Result<bool, StoreError> {
        let sql = "update users set role = $2, updated_at = $3 where name_key = $1";
        let done = on_pool!(self, pool => {
            sqlx::query(sql)
                .bind(name_key(name))
                .bind(role)
                .bind(Utc::now())
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done == 1)
    }

    /// Changes a user's password hash; `false` for an unknown user.
    pub async fn set_user_password(&self, name: &str, hash: &str) -> Result<bool, StoreError> {
        let sql = "update users set password_hash = $2, updated_at = $3 where name_key = $1";
        let done = on_pool!(self, pool => {
            sqlx::query(sql)
                .bind(name_key(name))
                .bind(hash)
                .bind(Utc::now())
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done == 1)
    }

    /// Removes a user and their sessions; `false` for an unknown user.
    pub async fn remove_user(&self, name: &str) -> Result<bool, StoreError> {
        let done = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "delete from auth_sessions where user_id in \
                 (select id from users where name_key = $1)",
            )
            .bind(name_key(name))
            .execute(&mut *tx)
            .await?;
            let done = sqlx::query("delete from users where name_key = $1")
                .bind(name_key(name))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            done
        });
        Ok(done == 1)
    }

    /// Records a signed-in session.
    pub async fn insert_auth_session(&self, new: &NewAuthSession<'_>) -> Result<(), StoreError> {
        let sql = "insert into auth_sessions (token_hash, user_id, created_at, seen_at, \
                   expires_at, address, user_agent) values ($1, $2, $3, $3, $4, $5, $6)";
        on_pool!(self, pool => {
            sqlx::query(sql)
                .bind(new.token_hash)
                .bind(new.user_id)
                .bind(new.now)
                .bind(new.expires_at)
                .bind(new.address)
                .bind(new.user_agent)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The session whose token hashes to `token_hash`, with its user.
    pub async fn auth_session(&self, token_hash: &str) -> Result<Option<SessionUser>, StoreError> {
        let sql = "select s.user_id, u.name, u.role, s.created_at, s.seen_at, s.expires_at \
                   from auth_sessions s join users u on u.id = s.user_id where s.token_hash = $1";
        Ok(on_pool!(read self, pool => {
            sqlx::query_as(sql).bind(token_hash).fetch_optional(pool).await?
        }))
    }

    /// Notes that a session was used at `now`.
    pub async fn touch_auth_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let sql = "update auth_sessions set seen_at = $2 where token_hash = $1";
        on_pool!(self, pool => {
            sqlx::query(sql).bind(token_hash).bind(now).execute(pool).await?;
        });
        Ok(())
    }

    /// Ends one session.
    pub async fn delete_auth_session(&self, token_hash: &str) -> Result<(), StoreError> {
        let sql = "delete from auth_sessions where token_hash = $1";
        on_pool!(self, pool => {
            sqlx::query(sql).bind(token_hash).execute(pool).await?;
        });
        Ok(())
    }

    /// Ends every session of the user named `name` but the one hashing to `keep`; returns how
    /// many ended.
    pub async fn end_user_sessions(
        &self,
        name: &str,
        keep: Option<&str>,
    ) -> Result<u64, StoreError> {
        let sql = "delete from auth_sessions where user_id in \
                   (select id from users where name_key = $1) \
                   and token_hash <> coalesce($2, '')";
        Ok(on_pool!(self, pool => {
            sqlx::query(sql)
                .bind(name_key(name))
                .bind(keep)
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }

    /// Deletes sessions past their absolute end or idle since before `idle_before`.
    pub async fn prune_auth_sessions(
        &self,
        now: DateTime<Utc>,
        idle_before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let sql = "delete from auth_sessions where expires_at <= $1 or seen_at < $2";
        Ok(on_pool!(self, pool => {
            sqlx::query(sql)
                .bind(now)
                .bind(idle_before)
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }

    /// Adds an API token; `false` when the name is taken (revoked tokens keep theirs).
    pub async fn insert_token(
        &self,
        name: &str,
        role: &str,
        token_hash: &str,
        created_by: &str,
    ) -> Result<Option<TokenRow>, StoreError> {
        let sql = format!(
            "insert into api_tokens (name, role, token_hash, created_at, created_by) \
             values ($1, $2, $3, $4, $5) returning {TOKEN_COLUMNS}"
        );
        let result = on_pool!(self, pool => {
            sqlx::query_as::<_, TokenRow>(&sql)
                .bind(name)
                .bind(role)
                .bind(token_hash)
                .bind(Utc::now())
                .bind(created_by)
                .fetch_one(pool)
                .await
        });
        match result {
            Ok(row) => Ok(Some(row)),
            Err(err) if is_unique_violation(&err) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// The token whose secret hashes to `token_hash`, revoked or not.
    pub async fn token_by_hash(&self, token_hash: &str) -> Result<Option<TokenRow>, StoreError> {
        let sql = format!("select {TOKEN_COLUMNS} from api_tokens where token_hash = $1");
        Ok(on_pool!(read self, pool => {
            sqlx::query_as(&sql).bind(token_hash).fetch_optional(pool).await?
        }))
    }

    /// Every token, by name.
    pub async fn tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        let sql = format!("select {TOKEN_COLUMNS} from api_tokens order by name");
        Ok(on_pool!(read self, pool => sqlx::query_as(&sql).fetch_all(pool).await?))
    }

    /// Revokes the token `name`; `false` when there is none or it was revoked already.
    pub async fn revoke_token(&self, name: &str) -> Result<bool, StoreError> {
        let sql = "update api_tokens set revoked_at = $2 where name = $1 and revoked_at is null";
        let done = on_pool!(self, pool => {
            sqlx::query(sql).bind(name).bind(Utc::now()).execute(pool).await?.rows_affected()
        });
        Ok(done == 1)
    }

    /// Notes that token `name` was used at `now`.
    pub async fn touch_token(&self, name: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let sql = "update api_tokens set last_used_at = $2 where name = $1";
        on_pool!(self, pool => {
            sqlx::query(sql).bind(name).bind(now).execute(pool).await?;
        });
        Ok(())
    }

    /// Records a webhook delivery; `false` when its id or its signature was seen before (a
    /// replay).
    pub async fn record_delivery(
        &self,
        hook: &str,
        delivery_id: &str,
        signature: &str,
    ) -> Result<bool, StoreError> {
        let sql = "insert into hook_deliveries (hook, delivery_id, signature, received_at) \
                   values ($1, $2, $3, $4)";
        let result = on_pool!(self, pool => {
            sqlx::query(sql)
                .bind(hook)
                .bind(delivery_id)
                .bind(signature)
                .bind(Utc::now())
                .execute(pool)
                .await
                .map(|_| ())
        });
        match result {
            Ok(()) => Ok(true),
            Err(err) if is_unique_violation(&err) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    /// Forgets deliveries received before `before` (older than any timestamp still accepted).
    pub async fn prune_deliveries(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let sql = "delete from hook_deliveries where received_at < $1";
        Ok(on_pool!(self, pool => {
            sqlx::query(sql).bind(before).execute(pool).await?.rows_affected()
        }))
    }
}

#[derive(sqlx::FromRow)]
struct UserWithSessions {
    id: Uuid,
    name: String,
    role: String,
    password_hash: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    sessions: i64,
}
