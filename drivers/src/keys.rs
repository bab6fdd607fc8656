//! Key files: a 32-byte ed25519 secret as 64 hex characters, mode 0600.

use bluepods_core::Keypair;
use std::path::Path;

/// Reads the key at `path`.
pub fn read_key(path: &Path) -> Result<Keypair, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read key file {}: {e}", path.display()))?;
    let mut secret = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut secret)
        .map_err(|_| format!("key file {} must hold 64 hex characters", path.display()))?;
    Ok(Keypair::from_secret(secret))
}

/// Writes a fresh random key to `path`, refusing to overwrite one.
pub fn create_key(path: &Path) -> Result<Keypair, String> {
    if path.exists() {
        return Err(format!(
            "{} already exists; not overwriting a key",
            path.display()
        ));
    }
    let key = Keypair::from_secret(rand::random());
    write_secret(path, &key)?;
    Ok(key)
}

/// Reads the key at `path`, creating it on first use. Returns whether it was
/// created.
pub fn read_or_create_key(path: &Path) -> Result<(Keypair, bool), String> {
    if path.exists() {
        read_key(path).map(|k| (k, false))
    } else {
        create_key(path).map(|k| (k, true))
    }
}

fn write_secret(path: &Path, key: &Keypair) -> Result<(), String> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| format!("cannot create key file {}: {e}", path.display()))?;
    writeln!(f, "{}", hex::encode(key.secret_bytes()))
        .map_err(|e| format!("cannot write key file {}: {e}", path.display()))?;
    f.sync_all().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_key_reads_back_and_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let (k, created) = read_or_create_key(&path).unwrap();
        assert!(created);
        assert_eq!(read_key(&path).unwrap().public(), k.public());
        assert!(create_key(&path).is_err());
        std::fs::write(&path, "zz").unwrap();
        assert!(read_key(&path).unwrap_err().contains("64 hex"));
    }
}
