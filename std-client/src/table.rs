//! Live connections to many servers, opened on first use and reused.

use std::collections::hash_map::{Entry, HashMap};

use msglog_core::Transaction;

use crate::{Connection, Credentials, Error, Options};

/// Which connection a [`ConnectionTable`] entry is: a server address, as
/// given (`"host:port"`), and a user name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// The server address as given to the table, e.g. `"127.0.0.1:5555"`
    /// or `"[::1]:5555"`. Two spellings of one server are two entries.
    pub server: String,
    /// The user name.
    pub user: String,
}

/// A table of live connections keyed by server address and user: the
/// original client's connection table, done right.
///
/// [`send`](ConnectionTable::send) connects and authenticates on first use
/// of a server and user, and reuses that connection for later sends. Before
/// reusing a connection it checks that the server has not closed it (e.g.
/// restarted, or timed it out); a closed one is replaced by a new
/// connection. A send that fails drops its connection (the error is
/// returned, nothing is resent: a failed send may or may not have been
/// written), and the next send to that server connects again. Dropping the
/// table closes every connection with CLOSE.
///
/// ```no_run
/// use msglog_client::{ConnectionTable, Credentials, Options};
///
/// let alice = Credentials::new("alice", "secret");
/// let mut table = ConnectionTable::new(Options::default());
///
/// // The first send to each server connects and authenticates...
/// table.send("127.0.0.1:5555", &alice, b"hello, first server")?;
/// table.send("[::1]:5556", &alice, b"hello, second server")?;
/// // ...later sends reuse the connections.
/// table.send("127.0.0.1:5555", &alice, b"hello again")?;
/// assert_eq!(table.len(), 2);
///
/// // Dropping the table closes everything; close_all also reports errors.
/// table.close_all()?;
/// # Ok::<(), msglog_client::Error>(())
/// ```
///
/// `examples/connection_table.rs` is this as a program (run by the tests):
/// `cargo run -p msglog-client --example connection_table -- HOST:PORT HOST:PORT`.
#[derive(Debug)]
pub struct ConnectionTable {
    options: Options,
    connections: HashMap<Endpoint, Connection>,
}

impl ConnectionTable {
    /// An empty table whose connections use `options`.
    pub fn new(options: Options) -> Self {
        ConnectionTable {
            options,
            connections: HashMap::new(),
        }
    }

    /// Send `message` to `server` as `credentials.user()` and wait until it
    /// is acknowledged, connecting and authenticating first if needed.
    pub fn send(
        &mut self,
        server: &str,
        credentials: &Credentials,
        message: &[u8],
    ) -> Result<(), Error> {
        // Refuse an unsendable message before connecting for it.
        Transaction::Message(message)
            .header()
            .map_err(Error::Invalid)?;
        self.send_pipelined(server, credentials, [message])
            .map(|_| ())
    }

    /// Send `messages` pipelined on the connection to `server` and wait
    /// until all are acknowledged; see [`Connection::send_pipelined`].
    pub fn send_pipelined<I>(
        &mut self,
        server: &str,
        credentials: &Credentials,
        messages: I,
    ) -> Result<u64, Error>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        let endpoint = Endpoint {
            server: server.to_owned(),
            user: credentials.user().to_owned(),
        };
        let connection = self.live_connection(endpoint.clone(), credentials)?;
        let result = connection.send_pipelined(messages);
        if !connection.is_open() {
            self.connections.remove(&endpoint);
        }
        result
    }

    /// The live connection to `server` for `credentials.user()`, opened and
    /// authenticated if there is none or the previous one was closed.
    pub fn connection(
        &mut self,
        server: &str,
        credentials: &Credentials,
    ) -> Result<&mut Connection, Error> {
        let endpoint = Endpoint {
            server: server.to_owned(),
            user: credentials.user().to_owned(),
        };
        self.live_connection(endpoint, credentials)
    }

    fn live_connection(
        &mut self,
        endpoint: Endpoint,
        credentials: &Credentials,
    ) -> Result<&mut Connection, Error> {
        let stale = self
            .connections
            .get_mut(&endpoint)
            .is_some_and(|connection| !connection.is_usable());
        if stale {
            // Closed by the server (or failed): nothing to send CLOSE on.
            self.connections.remove(&endpoint);
        }
        match self.connections.entry(endpoint) {
            Entry::Occupied(entry) => Ok(entry.into_mut()),
            Entry::Vacant(entry) => {
                let server = entry.key().server.as_str();
                // The host of `host:port` or `[v6]:port`, for TLS's server name.
                let host = server.rsplit_once(':').map(|(host, _)| host);
                let mut connection = Connection::connect_to(server, host, &self.options)?;
                connection.authenticate(credentials.user(), credentials.password())?;
                Ok(entry.insert(connection))
            }
        }
    }

    /// Close the connection to `server` for `user`, if there is one.
    pub fn close(&mut self, server: &str, user: &str) -> Result<(), Error> {
        let endpoint = Endpoint {
            server: server.to_owned(),
            user: user.to_owned(),
        };
        match self.connections.remove(&endpoint) {
            Some(mut connection) if connection.is_open() => connection.close(),
            _ => Ok(()),
        }
    }

    /// Close every connection; returns the first error, after trying all.
    pub fn close_all(&mut self) -> Result<(), Error> {
        let mut first_error = None;
        for (_, mut connection) in self.connections.drain() {
            if connection.is_open() {
                if let Err(error) = connection.close() {
                    first_error.get_or_insert(error);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Connections currently in the table.
    pub fn len(&self) -> usize {
        self.connections.len()
    }

    /// Whether the table holds no connection.
    pub fn is_empty(&self) -> bool {
        self.connections.is_empty()
    }

    /// The endpoints the table holds connections for.
    pub fn endpoints(&self) -> impl Iterator<Item = &Endpoint> {
        self.connections.keys()
    }
}

impl Drop for ConnectionTable {
    fn drop(&mut self) {
        // Errors cannot be reported from drop; close_all reports them.
        let _ = self.close_all();
    }
}
