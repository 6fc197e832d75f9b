//! `std::io` for the core's `embedded_io` drivers, and retrying system
//! calls a signal interrupted.

use std::io::{self, Read, Write};

/// Run `call` until it returns something other than `EINTR`
/// ([`io::ErrorKind::Interrupted`]): a signal that arrived during a system
/// call is no reason to give up on it.
pub fn retry_interrupted<T>(mut call: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match call() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// An `embedded_io` view of a `std::io` reader or writer (a socket, a
/// file, stdout), for the core's drivers. Errors are the `std::io::Error`s
/// themselves, so the caller sees what the system said; reads and writes
/// interrupted by a signal are retried.
#[derive(Debug)]
pub struct Std<T>(pub T);

impl<T> embedded_io::ErrorType for Std<T> {
    type Error = io::Error;
}

impl<T: Read> embedded_io::Read for Std<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        retry_interrupted(|| self.0.read(buf))
    }
}

impl<T: Write> embedded_io::Write for Std<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        retry_interrupted(|| self.0.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        retry_interrupted(|| self.0.flush())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails with `EINTR` `interruptions` times before each real call.
    struct Interrupting<T> {
        inner: T,
        interruptions: usize,
        left: usize,
    }

    impl<T> Interrupting<T> {
        fn new(inner: T, interruptions: usize) -> Self {
            Interrupting {
                inner,
                interruptions,
                left: interruptions,
            }
        }

        fn interrupted(&mut self) -> bool {
            if self.left > 0 {
                self.left -= 1;
                return true;
            }
            self.left = self.interruptions;
            false
        }
    }

    impl<T: Read> Read for Interrupting<T> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.interrupted() {
                return Err(io::ErrorKind::Interrupted.into());
            }
            self.inner.read(buf)
        }
    }

    impl<T: Write> Write for Interrupting<T> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.interrupted() {
                return Err(io::ErrorKind::Interrupted.into());
            }
            self.inner.write(buf)
        }

        fn flush(&mut self) -> io::Result<()> {
            if self.interrupted() {
                return Err(io::ErrorKind::Interrupted.into());
            }
            self.inner.flush()
        }
    }

    #[test]
    fn interrupted_calls_are_retried_and_other_errors_returned() {
        let mut calls = 0;
        let result = retry_interrupted(|| {
            calls += 1;
            match calls {
                1..=3 => Err(io::ErrorKind::Interrupted.into()),
                _ => Ok(calls),
            }
        });
        assert_eq!(result.unwrap(), 4);
        let mut calls = 0;
        let result: io::Result<()> = retry_interrupted(|| {
            calls += 1;
            Err(io::ErrorKind::ConnectionReset.into())
        });
        assert_eq!(result.unwrap_err().kind(), io::ErrorKind::ConnectionReset);
        assert_eq!(calls, 1, "only EINTR is retried");
    }

    #[test]
    fn the_core_copies_through_interrupted_reads_and_writes() {
        let input: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let mut reader = Std(Interrupting::new(&input[..], 2));
        let mut writer = Std(Interrupting::new(Vec::new(), 1));
        let mut buffer = [0u8; 333];
        let copied = msglog_core::stream_copy(&mut reader, &mut writer, &mut buffer).unwrap();
        assert_eq!(copied, input.len() as u64);
        assert_eq!(writer.0.inner, input);
    }

    #[test]
    fn errors_are_the_systems_own() {
        // The system's "connection reset" code.
        const RESET: i32 = if cfg!(windows) {
            10054 // WSAECONNRESET
        } else if cfg!(target_os = "macos") {
            54
        } else {
            104
        };
        struct Reset;
        impl Read for Reset {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::from_raw_os_error(RESET))
            }
        }
        let error = embedded_io::Read::read(&mut Std(Reset), &mut [0; 4]).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(RESET));
        assert_eq!(
            embedded_io::Error::kind(&error),
            embedded_io::ErrorKind::ConnectionReset
        );
    }
}
