//! Throughput and handshakes/s of one rustls crypto provider (feature
//! `ring` or `aws`), client and server in memory on one core: full
//! handshakes with ECDSA P-256, then 1 GiB through TLS 1.3.
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Instant;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};

#[cfg(feature = "ring")]
fn provider() -> Arc<rustls::crypto::CryptoProvider> { Arc::new(rustls::crypto::ring::default_provider()) }
#[cfg(feature = "aws")]
fn provider() -> Arc<rustls::crypto::CryptoProvider> { Arc::new(rustls::crypto::aws_lc_rs::default_provider()) }

fn transfer(from: &mut dyn rustls_conn::Conn, to: &mut dyn rustls_conn::Conn) {
    let mut buf = Vec::new();
    while from.wants_write() { from.write_tls(&mut buf).unwrap(); }
    let mut rd = &buf[..];
    while !rd.is_empty() { let k = to.read_tls(&mut rd).unwrap(); to.process_new_packets().unwrap(); if k == 0 { break; } }
}

mod rustls_conn {
    pub trait Conn {
        fn wants_write(&self) -> bool;
        fn write_tls(&mut self, w: &mut dyn std::io::Write) -> std::io::Result<usize>;
        fn read_tls(&mut self, r: &mut dyn std::io::Read) -> std::io::Result<usize>;
        fn process_new_packets(&mut self) -> Result<rustls::IoState, rustls::Error>;
    }
    impl Conn for rustls::ClientConnection {
        fn wants_write(&self) -> bool { (**self).wants_write() }
        fn write_tls(&mut self, w: &mut dyn std::io::Write) -> std::io::Result<usize> { (**self).write_tls(w) }
        fn read_tls(&mut self, r: &mut dyn std::io::Read) -> std::io::Result<usize> { (**self).read_tls(r) }
        fn process_new_packets(&mut self) -> Result<rustls::IoState, rustls::Error> { (**self).process_new_packets() }
    }
    impl Conn for rustls::ServerConnection {
        fn wants_write(&self) -> bool { (**self).wants_write() }
        fn write_tls(&mut self, w: &mut dyn std::io::Write) -> std::io::Result<usize> { (**self).write_tls(w) }
        fn read_tls(&mut self, r: &mut dyn std::io::Read) -> std::io::Result<usize> { (**self).read_tls(r) }
        fn process_new_packets(&mut self) -> Result<rustls::IoState, rustls::Error> { (**self).process_new_packets() }
    }
}

fn main() {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap().self_signed(&key).unwrap();
    let cert_der: CertificateDer<'static> = cert.der().clone();
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let server = Arc::new(ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions().unwrap()
        .with_no_client_auth().with_single_cert(vec![cert_der.clone()], key_der).unwrap());
    let mut roots = RootCertStore::empty();
    roots.add(cert_der).unwrap();
    let client = Arc::new(ClientConfig::builder_with_provider(provider()).with_safe_default_protocol_versions().unwrap()
        .with_root_certificates(roots).with_no_client_auth());
    let name = ServerName::try_from("localhost").unwrap();

    // Full handshakes (no resumption: a fresh client config each time would be costly; disable cache instead)
    let mut nores = (*client).clone();
    nores.resumption = rustls::client::Resumption::disabled();
    let nores = Arc::new(nores);
    let n = 2000;
    let t = Instant::now();
    for _ in 0..n {
        let mut c = ClientConnection::new(nores.clone(), name.clone()).unwrap();
        let mut s = ServerConnection::new(server.clone()).unwrap();
        while c.is_handshaking() || s.is_handshaking() { transfer(&mut c, &mut s); transfer(&mut s, &mut c); }
    }
    let hs = n as f64 / t.elapsed().as_secs_f64();

    // Bulk: 1 GiB client -> server
    let mut c = ClientConnection::new(client.clone(), name.clone()).unwrap();
    let mut s = ServerConnection::new(server.clone()).unwrap();
    while c.is_handshaking() || s.is_handshaking() { transfer(&mut c, &mut s); transfer(&mut s, &mut c); }
    let chunk = vec![7u8; 16 * 1024];
    let mut out = vec![0u8; 64 * 1024];
    let total: u64 = 1 << 30;
    let t = Instant::now();
    let mut sent = 0u64;
    while sent < total {
        let mut off = 0; while off < chunk.len() { let k = c.writer().write(&chunk[off..]).unwrap(); off += k; transfer(&mut c, &mut s); loop { match s.reader().read(&mut out) { Ok(0) => break, Ok(_) => {}, Err(_) => break } } }
        sent += chunk.len() as u64;
        transfer(&mut c, &mut s);
        loop { match s.reader().read(&mut out) { Ok(0) => break, Ok(_) => {}, Err(_) => break } }
    }
    let gbs = total as f64 / t.elapsed().as_secs_f64() / 1e9;
    println!("handshakes_per_s(one core, client+server)={hs:.0} bulk_gb_per_s(encrypt+decrypt, one core)={gbs:.2} suite={:?}", c.negotiated_cipher_suite().unwrap().suite());
}
