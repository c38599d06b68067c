//! The PostgreSQL password of `--database-password-file`. The writer opens its connections (the
//! store's and the writer lock's) from the database URL alone, so the password is registered for
//! that URL here and added to the connect options of every connection to it. It overrides a
//! password in the URL or a pgpass file, is never logged, and never appears in an error.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use sdash_service::Secret;
use sqlx::postgres::PgConnectOptions;

fn passwords() -> &'static Mutex<HashMap<String, Secret>> {
    static PASSWORDS: OnceLock<Mutex<HashMap<String, Secret>>> = OnceLock::new();
    PASSWORDS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Makes every PostgreSQL connection this process opens to `database_url` (the [`crate::Store`]
/// and the writer lock) log in with `password`. [`crate::run`] does this for
/// `--database-password-file`; call it before [`crate::Store::open`] when using the store
/// directly.
pub fn set_database_password(database_url: &str, password: Secret) {
    if let Ok(mut map) = passwords().lock() {
        map.insert(database_url.to_owned(), password);
    }
}

/// `options` for `url`, with the password registered for `url`, if any.
pub(crate) fn apply(url: &str, options: PgConnectOptions) -> PgConnectOptions {
    let password = passwords()
        .lock()
        .ok()
        .and_then(|map| map.get(url).cloned());
    match password {
        Some(p) => options.password(p.expose()),
        None => options,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Connection;

    #[tokio::test]
    async fn connect_options_carry_the_registered_password() {
        let probe = sdash_harness::PasswordProbe::start().await;
        let url = probe.url("sdash");
        // Without a registered password the client has none to send (the probe still asks).
        let options = crate::store::pg::connect_options(&probe.url("other")).expect("options");
        assert!(sqlx::PgConnection::connect_with(&options).await.is_err());

        set_database_password(&url, Secret::new("pw-from-file s3cret"));
        let options = crate::store::pg::connect_options(&url).expect("options");
        let err = sqlx::PgConnection::connect_with(&options)
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(
            probe.passwords().last().map(String::as_str),
            Some("pw-from-file s3cret")
        );
        assert!(err.contains("password authentication failed"), "{err}");
        assert!(
            !err.contains("s3cret"),
            "the error shows the password: {err}"
        );
    }
}
