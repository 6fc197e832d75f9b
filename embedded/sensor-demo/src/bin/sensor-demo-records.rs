//! On the host: what `msglog-server` must do with the demo device's messages.
//!
//! `sensor-demo-records plan` prints `key=value` lines: the device's name
//! and (demo-only) password, how many messages it sends, the counter of
//! the one the demo's server must refuse (the diagnostic dump), and
//! `room`, the bytes of the records of all the others: a `messages.log`
//! allowed to grow by `room` bytes takes every reading but not the dump.
//!
//! `sensor-demo-records records` writes the records `messages.log` must
//! end with, byte for byte: every message but the dump, in order, as
//! `msglog-core` writes them (`[sensor-7]: escaped message\r\n`).

use std::io::Write as _;
use std::process::ExitCode;

use msglog_sensor_demo::{message, COUNT, DIAGNOSTIC_DUMP, MAX_LEN, NAME, PASSWORD};

fn main() -> ExitCode {
    let mode = std::env::args().nth(1);
    let result = match mode.as_deref() {
        Some("plan") => plan(),
        Some("records") => records(),
        _ => {
            eprintln!("usage: sensor-demo-records plan|records");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("sensor-demo-records: {reason}");
            ExitCode::FAILURE
        }
    }
}

/// Every message, in order, with its index.
fn messages() -> Result<Vec<(usize, Vec<u8>)>, String> {
    (0..COUNT)
        .map(|index| {
            let mut buf = [0u8; MAX_LEN];
            message(index, &mut buf)
                .map(|text| (index, text.to_vec()))
                .ok_or_else(|| format!("message {index} does not fit in {MAX_LEN} bytes"))
        })
        .collect()
}

fn record(text: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = vec![0u8; msglog_core::record_len(NAME, text)];
    msglog_core::write_record(&mut &mut out[..], NAME, text)
        .map_err(|e| format!("cannot write a record: {e}"))?;
    Ok(out)
}

fn plan() -> Result<(), String> {
    let mut room = 0;
    let mut after_dump = 0;
    let mut dump = 0;
    for (index, text) in messages()? {
        let len = msglog_core::record_len(NAME, &text);
        if index == DIAGNOSTIC_DUMP {
            dump = len;
        } else {
            room += len;
            if index > DIAGNOSTIC_DUMP {
                after_dump += len;
            }
        }
    }
    // When the dump arrives, the log has grown by the records before it:
    // what is left is `after_dump`, which must be too little for the dump.
    if dump <= after_dump {
        return Err(format!(
            "the dump's record ({dump} bytes) must be longer than the records after it ({after_dump} bytes)"
        ));
    }
    let password = std::str::from_utf8(PASSWORD).map_err(|e| e.to_string())?;
    println!("name={NAME}");
    println!("password={password}");
    println!("messages={COUNT}");
    println!("refused={}", DIAGNOSTIC_DUMP + 1);
    println!("room={room}");
    Ok(())
}

fn records() -> Result<(), String> {
    let mut stdout = std::io::stdout().lock();
    for (index, text) in messages()? {
        if index != DIAGNOSTIC_DUMP {
            stdout
                .write_all(&record(&text)?)
                .map_err(|e| e.to_string())?;
        }
    }
    stdout.flush().map_err(|e| e.to_string())
}
