//! Where the keystore passphrase comes from: a file, `ICN_KEYSTORE_PASSPHRASE`,
//! or a prompt on the terminal, in that order.

use std::path::Path;

use zeroize::Zeroizing;

pub const ENV_PASSPHRASE: &str = "ICN_KEYSTORE_PASSPHRASE";
/// Tests only: a cheaper scrypt cost for new keystores (never below 2^10).
pub const ENV_KDF_LOG_N: &str = "ICN_KEYSTORE_KDF_LOG_N";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PassphraseError {
    #[error("cannot read the passphrase file {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "no passphrase: not on a terminal, and neither --passphrase-file nor {ENV_PASSPHRASE} is set"
    )]
    Unavailable,
    #[error("the passphrases do not match")]
    Mismatch,
    #[error("cannot read the passphrase from the terminal: {0}")]
    Prompt(std::io::Error),
}

/// The passphrase, from the first source that has one.
pub fn passphrase(
    file: Option<&Path>,
    prompt: &str,
    confirm: bool,
) -> Result<Zeroizing<String>, PassphraseError> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|source| PassphraseError::File {
            path: path.display().to_string(),
            source,
        })?;
        return Ok(Zeroizing::new(
            text.trim_end_matches(['\n', '\r']).to_owned(),
        ));
    }
    if let Ok(value) = std::env::var(ENV_PASSPHRASE) {
        return Ok(Zeroizing::new(value));
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return Err(PassphraseError::Unavailable);
    }
    let first =
        Zeroizing::new(rpassword::prompt_password(prompt).map_err(PassphraseError::Prompt)?);
    if confirm {
        let second = Zeroizing::new(
            rpassword::prompt_password("Repeat it: ").map_err(PassphraseError::Prompt)?,
        );
        if first != second {
            return Err(PassphraseError::Mismatch);
        }
    }
    Ok(first)
}

/// A secret typed by the member (a paper key, a device code): from the
/// terminal without echo, or one line of stdin when it is not a terminal.
pub fn secret(prompt: &str) -> Result<Zeroizing<String>, PassphraseError> {
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return Ok(Zeroizing::new(
            rpassword::prompt_password(prompt).map_err(PassphraseError::Prompt)?,
        ));
    }
    let mut line = Zeroizing::new(String::new());
    std::io::stdin()
        .read_line(&mut line)
        .map_err(PassphraseError::Prompt)?;
    Ok(line)
}

/// The scrypt cost for a new keystore: the default, or the test override.
pub fn kdf_log_n() -> u8 {
    std::env::var(ENV_KDF_LOG_N)
        .ok()
        .and_then(|value| value.parse().ok())
        .map(|log_n: u8| log_n.max(icn_identity::KDF_LOG_N_MIN))
        .unwrap_or(icn_identity::KDF_LOG_N_DEFAULT)
}
