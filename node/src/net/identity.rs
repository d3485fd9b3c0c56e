//! The peer's identity: an ed25519 key kept in the data directory so that the peer id
//! survives restarts.

use std::fs;
use std::io;
use std::path::Path;

use libp2p::identity::Keypair;

use super::error::{Error, Result};
use super::fsutil::write_atomic;

/// File name of the key inside the data directory (protobuf encoding of the keypair).
pub const KEY_FILE: &str = "peer_key";

/// Load the keypair from `<data_dir>/peer_key`, or create a new ed25519 keypair and store it
/// there (atomically, mode 0600) when the file does not exist.
///
/// A file that exists but does not decode is an error, never silently replaced: replacing it
/// would change the peer id and with it the slice of the web this peer owns.
pub fn load_or_create_keypair(data_dir: &Path) -> Result<Keypair> {
    let path = data_dir.join(KEY_FILE);
    match fs::read(&path) {
        Ok(bytes) => Keypair::from_protobuf_encoding(&bytes)
            .map_err(|e| Error::Identity(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let key = Keypair::generate_ed25519();
            let bytes = key
                .to_protobuf_encoding()
                .map_err(|e| Error::Identity(e.to_string()))?;
            write_atomic(&path, &bytes, 0o600)?;
            tracing::info!(peer = %key.public().to_peer_id(), "created peer key");
            Ok(key)
        }
        Err(e) => Err(Error::Io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn keypair_is_created_once_and_reloaded() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let first = load_or_create_keypair(dir.path())?;
        let second = load_or_create_keypair(dir.path())?;
        assert_eq!(first.public().to_peer_id(), second.public().to_peer_id());
        let mode = fs::metadata(dir.path().join(KEY_FILE))?
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        Ok(())
    }

    #[test]
    fn corrupt_key_file_is_an_error_not_a_new_identity() -> Result<()> {
        let dir = tempfile::tempdir()?;
        fs::write(dir.path().join(KEY_FILE), b"not a key")?;
        assert!(matches!(
            load_or_create_keypair(dir.path()),
            Err(Error::Identity(_))
        ));
        Ok(())
    }

    #[test]
    fn missing_data_dir_is_created() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let nested = dir.path().join("a").join("b");
        load_or_create_keypair(&nested)?;
        assert!(nested.join(KEY_FILE).exists());
        Ok(())
    }
}
