//! Putting a finished temporary file in place of its destination.

use std::path::Path;

/// Moves the finished temporary file `tmp` to `dest`, atomically replacing a regular file
/// there. A destination that exists and is not a regular file (`/dev/null`, `/dev/stdout`, a
/// named pipe, a terminal) is written *through* instead: renaming over it would replace the
/// device node itself — as root, `--save-state /dev/null` would turn the machine's
/// `/dev/null` into a file that every later reader of it reads back.
pub fn replace_file(tmp: &Path, dest: &Path) -> std::io::Result<()> {
    match std::fs::metadata(dest) {
        Ok(meta) if !meta.is_file() && !meta.is_dir() => {
            let copied = std::fs::File::open(tmp).and_then(|mut from| {
                let mut to = std::fs::OpenOptions::new().write(true).open(dest)?;
                std::io::copy(&mut from, &mut to).map(drop)
            });
            let removed = std::fs::remove_file(tmp);
            copied.and(removed)
        }
        _ => std::fs::rename(tmp, dest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regular_destination_is_replaced() {
        let dir = tempdir();
        let (tmp, dest) = (dir.join(".t.tmp"), dir.join("out"));
        std::fs::write(&dest, b"old").unwrap();
        std::fs::write(&tmp, b"new").unwrap();
        replace_file(&tmp, &dest).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"new");
        assert!(!tmp.exists());
    }

    #[test]
    fn a_pipe_destination_is_written_through_not_replaced() {
        use std::os::unix::fs::FileTypeExt;
        let dir = tempdir();
        let (tmp, fifo) = (dir.join(".t.tmp"), dir.join("fifo"));
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        std::fs::write(&tmp, b"state bytes").unwrap();
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read(fifo).unwrap())
        };
        replace_file(&tmp, &fifo).unwrap();
        assert_eq!(reader.join().unwrap(), b"state bytes");
        let kind = std::fs::symlink_metadata(&fifo).unwrap().file_type();
        assert!(kind.is_fifo(), "the named pipe must stay a pipe");
        assert!(!tmp.exists());
    }

    fn tempdir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "pipec-replace-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
