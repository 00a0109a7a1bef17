//! The known DICOM peers (migration 0010).

use sqlx::FromRow;

use crate::store::db::{DbError, Pool};

#[derive(Clone, Debug, FromRow, serde::Serialize)]
pub struct PeerRow {
    pub ae_title: String,
    pub host: String,
    pub port: i64,
    pub may_store: bool,
    pub may_query: bool,
    pub created_at: String,
}

pub async fn list(pool: &Pool) -> Result<Vec<PeerRow>, DbError> {
    sqlx::query_as("SELECT ae_title, host, port, may_store, may_query, created_at FROM dicom_peers ORDER BY ae_title")
        .fetch_all(pool)
        .await
}

/// Adds the peer, or changes the one with its AE title.
pub async fn put(pool: &Pool, peer: &PeerRow) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO dicom_peers (ae_title, host, port, may_store, may_query, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (ae_title) DO UPDATE SET host = excluded.host, port = excluded.port, \
         may_store = excluded.may_store, may_query = excluded.may_query",
    )
    .bind(&peer.ae_title)
    .bind(&peer.host)
    .bind(peer.port)
    .bind(peer.may_store)
    .bind(peer.may_query)
    .bind(&peer.created_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// Whether a peer of that AE title was there to remove.
pub async fn remove(pool: &Pool, ae_title: &str) -> Result<bool, DbError> {
    let done = sqlx::query("DELETE FROM dicom_peers WHERE ae_title = $1").bind(ae_title).execute(pool).await?;
    Ok(done.rows_affected() > 0)
}
