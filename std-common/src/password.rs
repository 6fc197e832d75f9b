//! Password files, as every msglog client program reads them.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// The most a password can be: a PASSWORD transaction's payload.
const MAX_PASSWORD: u64 = u16::MAX as u64;

/// The password in the file at `path`: its content without one trailing
/// line ending (`\n` or `\r\n`), which an editor or `echo` adds. At most
/// 65535 bytes and a line ending are read: a longer password cannot be
/// sent, and the caller sees that from the length.
pub fn read_password_file(path: &Path) -> io::Result<Vec<u8>> {
    let mut password = Vec::new();
    File::open(path)?
        .take(MAX_PASSWORD + 3)
        .read_to_end(&mut password)?;
    if password.last() == Some(&b'\n') {
        password.pop();
        if password.last() == Some(&b'\r') {
            password.pop();
        }
    }
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_ending_is_removed() {
        let dir = std::env::temp_dir().join(format!("msglog-std-password-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (content, password) in [
            (&b"secret\n"[..], &b"secret"[..]),
            (b"secret\r\n", b"secret"),
            (b"secret", b"secret"),
            (b"two\n\n", b"two\n"),
            (b"  spaced \n", b"  spaced "),
            (b"\n", b""),
        ] {
            let path = dir.join("password");
            std::fs::write(&path, content).unwrap();
            assert_eq!(read_password_file(&path).unwrap(), password);
        }
        let long = dir.join("long");
        std::fs::write(&long, vec![b'x'; 100_000]).unwrap();
        assert_eq!(read_password_file(&long).unwrap().len(), 65_538);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(read_password_file(&dir.join("missing")).is_err());
    }
}
