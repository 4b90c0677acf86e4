//! The cluster's settings: one row per name, written once by the first node that needs
//! it and read by every node after (see `crate::cluster` for what they are).

use sea_orm::{ConnectionTrait, DbErr, Statement};

/// The value recorded under `name`, if any.
pub async fn get(db: &impl ConnectionTrait, name: &str) -> Result<Option<String>, DbErr> {
    let backend = db.get_database_backend();
    let row = db.query_one(Statement::from_sql_and_values(backend, "SELECT value FROM cluster WHERE name = $1", [name.into()])).await?;
    row.map(|row| row.try_get::<String>("", "value")).transpose()
}

/// Record `value` under `name` unless a value is there already, and return the value
/// that is there now: `value` for the first node, the first node's for the others (two
/// nodes starting at once both get the one that was written).
pub async fn claim(db: &impl ConnectionTrait, name: &str, value: &str, now: i64) -> Result<String, DbErr> {
    let backend = db.get_database_backend();
    let sql = "INSERT INTO cluster (name, value, set_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING";
    db.execute(Statement::from_sql_and_values(backend, sql, [name.into(), value.into(), now.into()])).await?;
    get(db, name).await?.ok_or_else(|| DbErr::RecordNotFound(format!("the cluster setting {name}")))
}

/// Record `value` under `name` in place of what is there.
pub async fn replace(db: &impl ConnectionTrait, name: &str, value: &str, now: i64) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let sql = "UPDATE cluster SET value = $2, set_at = $3 WHERE name = $1";
    db.execute(Statement::from_sql_and_values(backend, sql, [name.into(), value.into(), now.into()])).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_value_stays() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::connect(&format!("sqlite://{}?mode=rwc", dir.path().join("c.db").display())).await.unwrap();
        assert_eq!(get(&db, "key_check").await.unwrap(), None);
        assert_eq!(claim(&db, "key_check", "first", 1).await.unwrap(), "first");
        assert_eq!(claim(&db, "key_check", "second", 2).await.unwrap(), "first", "a later node reads the first node's value");
        assert_eq!(claim(&db, "public_url", "http://a", 3).await.unwrap(), "http://a");
    }
}
