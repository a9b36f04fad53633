//! SASL users of the embedded broker (`[[bus.users]]`). With at least one, every connection
//! must authenticate with SCRAM-SHA-256 or SCRAM-SHA-512 before any other request (tansu's
//! frame layer refuses the rest), checked against credentials stored at start-up: salted,
//! never the password. tansu's authenticator offers no PLAIN (its PLAIN would accept any
//! password, and rsasl is built without it), so a client cannot fall back to it.

use bytes::Bytes;
use rand::RngCore;
use rsasl::mechanisms::scram::tools::{derive_keys, hash_password};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};
use tansu_sans_io::ScramMechanism;
use tansu_storage::{ScramCredential, Storage, StorageContainer};

use crate::secret::{Secret, SecretSource};

/// PBKDF2 rounds of a stored credential (Kafka's minimum and librdkafka's default is 4096).
const ITERATIONS: u32 = 8192;
const SALT_LEN: usize = 32;

/// One `[[bus.users]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerUser {
    /// The SASL user name clients give (`[bus.security] username`).
    pub name: String,
    /// Its password: `{ env = "VAR" }` or `{ file = "/path" }`.
    pub password: SecretSource,
}

/// Stores a SCRAM-SHA-256 and a SCRAM-SHA-512 credential for each user, replacing any from
/// an earlier start (a changed password takes effect on restart). After the broker is
/// registered: tansu keeps credentials per cluster.
pub async fn store(storage: &StorageContainer, users: &[(String, Secret)]) -> Result<(), tansu_storage::Error> {
    for (name, password) in users {
        let mut salt = [0u8; SALT_LEN];
        rand::rng().fill_bytes(&mut salt);
        for mechanism in [ScramMechanism::Scram256, ScramMechanism::Scram512] {
            let (stored_key, server_key) = match mechanism {
                ScramMechanism::Scram256 => keys::<Sha256>(password.expose(), &salt),
                _ => keys::<Sha512>(password.expose(), &salt),
            };
            let credential = ScramCredential { salt: Bytes::copy_from_slice(&salt), iterations: ITERATIONS as i32, stored_key, server_key };
            storage.upsert_user_scram_credential(name, mechanism, credential).await?;
        }
    }
    Ok(())
}

/// RFC 5802: SaltedPassword = PBKDF2(password, salt, i); StoredKey = H(HMAC(SaltedPassword,
/// "Client Key")); ServerKey = HMAC(SaltedPassword, "Server Key") — as tansu's own
/// AlterUserScramCredentials stores them.
fn keys<D>(password: &str, salt: &[u8]) -> (Bytes, Bytes)
where
    D: Digest + sha2::digest::core_api::BlockSizeUser + sha2::digest::FixedOutputReset + Clone + Sync,
{
    let mut salted = Default::default();
    hash_password::<D>(password.as_bytes(), ITERATIONS, salt, &mut salted);
    let (client_key, server_key) = derive_keys::<D>(&salted);
    (Bytes::copy_from_slice(&D::digest(client_key)), Bytes::copy_from_slice(&server_key))
}
