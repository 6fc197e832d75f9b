//! Raw mode: stdin's bytes to the server, then wait for it to close.

use msglog_client::{connect, send_raw, Error, Options, RAW_BUFFER};

use crate::args::Args;
use crate::exit::{Exit, Failure};
use crate::input::stdin;
use crate::report;

pub fn run(args: &Args) -> Result<(), Failure> {
    let options = Options {
        connect_timeout: args.timeout.0,
        io_timeout: args.timeout.0,
        window: 1,
    };
    let server = (args.host.as_str(), args.port);
    let stream = connect(server, &options).map_err(|e| report::failure(args, &e))?;
    let mut input =
        stdin().map_err(|e| Failure::new(Exit::Input, format!("cannot read stdin: {e}")))?;
    // One fixed buffer, whatever the input's size.
    let mut buffer = vec![0u8; RAW_BUFFER];
    match send_raw(&stream, &mut input, &mut buffer) {
        Ok(_) => Ok(()),
        Err(Error::Input(e)) => Err(Failure::new(
            Exit::Input,
            format!("reading stdin failed: {e}"),
        )),
        Err(e) => Err(report::failure(args, &e)),
    }
}
