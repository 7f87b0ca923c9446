//! The Worker's side of provisional accounts (issue 19 finding 5; the rule
//! is the core's, `governor_core::driver::provisional`): while an account's
//! key is unproven its object stores nothing, and the first answer of Sync
//! that accepts the key makes it a real account (`Command::KeyAccepted`,
//! sent before anything settles, so what settles is stored). Until then,
//! nothing is counted under the key's account outside its object either:
//! the per-isolate tallies and the Analytics Engine see an unproven key as
//! [`UNVERIFIED`], so throwaway keys create no series and push no real
//! account out.

use governor_core::admission::request::Admitted;
use governor_core::auth::secret::Secret;
use governor_core::driver::provisional::accepts_key;
use governor_core::wire::calls::KeyAccepted;
use worker::Env;

/// The account label of a request whose key Sync has not accepted yet.
pub const UNVERIFIED: &str = "unverified";

/// After Sync answered `status` to a request admitted as `admitted`:
/// tell a provisional account that its key is accepted. `true` while the
/// key is still unproven (the answer did not accept it).
pub async fn after_answer(env: &Env, account: &str, key: Option<&Secret>, admitted: &Admitted, status: u16) -> bool {
    if !admitted.provisional {
        return false;
    }
    if !accepts_key(status) {
        return true;
    }
    if let Err(e) = crate::account_client::call(env, account, key, &KeyAccepted).await {
        // The next accepted answer tries again (the account stays provisional).
        worker::console_error!("storing the accepted account failed: {}", e.message());
    }
    false
}
