//! Raw mode: the input's bytes to the server, then wait for it to close.

use std::io::{self, Read};
use std::sync::Arc;

use msglog_client::{connect, send_raw, Error, Options, Transport, RAW_BUFFER};

use crate::args::Settings;
use crate::exit::{CliError, Exit};
use crate::explain::explain;
use crate::input::Opened;
use crate::summary::{on_signal, Tally, Unit};

pub fn run(settings: &Settings) -> Result<(), CliError> {
    let args = &settings.args;
    let tls = args.tls.connector(&settings.host)?;
    let options = Options {
        connect_timeout: args.timeout.0,
        io_timeout: args.timeout.0,
        window: 1,
        ..Options::default()
    };
    let opened = Opened::open(&settings.inputs)?;
    let tally = Tally::new(Unit::Bytes, args.quiet);
    on_signal(Arc::clone(&tally), || {})
        .map_err(|e| CliError::new(Exit::Input, format!("cannot watch for signals: {e}")))?;
    let server = (settings.host.as_str(), settings.port);
    let stream = connect(server, &options).map_err(|e| explain(settings, &e, None))?;
    let stream: Box<dyn Transport> = match tls {
        Some(tls) => Box::new(
            tls.handshake(stream, Some(&settings.host))
                .map_err(|e| explain(settings, &e, None))?,
        ),
        None => Box::new(stream),
    };
    let mut input = Counted {
        inner: opened.concatenated(),
        tally: &tally,
    };
    // One fixed buffer, whatever the input's size.
    let mut buffer = vec![0u8; RAW_BUFFER];
    match send_raw(stream, &mut input, &mut buffer) {
        Ok(_) => {
            tally.print_completed();
            Ok(())
        }
        Err(Error::Input(e)) => Err(CliError::new(
            Exit::Input,
            format!("reading the input failed: {e}"),
        )),
        Err(e) => Err(explain(settings, &e, None)),
    }
}

/// The input, counted in the tally as it is read.
struct Counted<'a, R> {
    inner: R,
    tally: &'a Tally,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.tally.add_read(n as u64);
        Ok(n)
    }
}
