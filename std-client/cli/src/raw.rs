//! Raw mode: stdin's bytes to the server, then wait for it to close.

use msglog_client::{connect, send_raw, Error, Options, Transport, RAW_BUFFER};

use crate::args::Args;
use crate::exit::{CliError, Exit};
use crate::explain::explain;
use crate::input::stdin;

pub fn run(args: &Args) -> Result<(), CliError> {
    let tls = args.tls.connector(&args.host)?;
    let options = Options {
        connect_timeout: args.timeout.0,
        io_timeout: args.timeout.0,
        window: 1,
        ..Options::default()
    };
    let server = (args.host.as_str(), args.port);
    let stream = connect(server, &options).map_err(|e| explain(args, &e, None))?;
    let stream: Box<dyn Transport> = match tls {
        Some(tls) => Box::new(
            tls.handshake(stream, Some(&args.host))
                .map_err(|e| explain(args, &e, None))?,
        ),
        None => Box::new(stream),
    };
    let mut input =
        stdin().map_err(|e| CliError::new(Exit::Input, format!("cannot read stdin: {e}")))?;
    // One fixed buffer, whatever the input's size.
    let mut buffer = vec![0u8; RAW_BUFFER];
    match send_raw(stream, &mut input, &mut buffer) {
        Ok(_) => Ok(()),
        Err(Error::Input(e)) => Err(CliError::new(
            Exit::Input,
            format!("reading stdin failed: {e}"),
        )),
        Err(e) => Err(explain(args, &e, None)),
    }
}
