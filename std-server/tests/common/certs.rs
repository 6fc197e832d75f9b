//! Test certificates, made fresh by each test with rcgen: a CA, server
//! certificates (ECDSA P-256, RSA, Ed25519; a chain through an
//! intermediate), client certificates (good, expired, another CA's, with
//! chosen names). Nothing is committed: the keys live in a temp directory
//! for the test's lifetime.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType, SignatureAlgorithm,
};

/// Which key a certificate gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    EcdsaP256,
    Rsa2048,
    Ed25519,
}

impl Key {
    fn generate(self, dir: &Path) -> KeyPair {
        let alg: &'static SignatureAlgorithm = match self {
            Key::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            Key::Ed25519 => &rcgen::PKCS_ED25519,
            // ring signs with RSA keys but does not make them: openssl does.
            Key::Rsa2048 => {
                let path = dir.join(format!("rsa-{}.key", unique()));
                let status = Command::new("openssl")
                    .args([
                        "genpkey",
                        "-algorithm",
                        "RSA",
                        "-pkeyopt",
                        "rsa_keygen_bits:2048",
                        "-out",
                    ])
                    .arg(&path)
                    .stderr(std::process::Stdio::null())
                    .status()
                    .expect("openssl runs (it is needed for the RSA test key)");
                assert!(status.success(), "openssl genpkey failed");
                let pem = std::fs::read_to_string(&path).unwrap();
                return KeyPair::from_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256).unwrap();
            }
        };
        KeyPair::generate_for(alg).unwrap()
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A certificate authority with its files in a temp directory.
pub struct Pki {
    dir: tempfile::TempDir,
    ca: Certificate,
    ca_key: KeyPair,
}

/// A certificate's files: the chain (leaf first) and the key.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// What a leaf certificate says.
pub struct Leaf<'a> {
    pub cn: &'a str,
    /// DNS names and IP addresses.
    pub names: Vec<&'a str>,
    pub uris: Vec<&'a str>,
    pub key: Key,
    pub client: bool,
    pub expired: bool,
}

impl<'a> Leaf<'a> {
    /// A server certificate for `localhost` and 127.0.0.1 with an ECDSA P-256 key.
    pub fn server() -> Leaf<'a> {
        Leaf {
            cn: "localhost",
            names: vec!["localhost", "127.0.0.1"],
            uris: Vec::new(),
            key: Key::EcdsaP256,
            client: false,
            expired: false,
        }
    }

    /// A client certificate whose CN is `cn`, without subject alternative names.
    pub fn client(cn: &'a str) -> Leaf<'a> {
        Leaf {
            cn,
            names: Vec::new(),
            uris: Vec::new(),
            key: Key::EcdsaP256,
            client: true,
            expired: false,
        }
    }
}

impl Pki {
    /// A new CA named `name`.
    pub fn new(name: &str) -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let ca = ca_params(name).self_signed(&ca_key).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        Pki { dir, ca, ca_key }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The CA certificate (PEM).
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Issue `leaf` directly from the CA; files named after `file`.
    pub fn issue(&self, file: &str, leaf: &Leaf<'_>) -> Issued {
        self.issue_by(file, leaf, &self.ca, &self.ca_key, "")
    }

    /// Issue `leaf` from an intermediate CA of this CA: the chain file holds
    /// the leaf, then the intermediate (a full chain).
    pub fn issue_via_intermediate(&self, file: &str, leaf: &Leaf<'_>) -> Issued {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let intermediate = ca_params("msglog test intermediate")
            .signed_by(&key, &self.ca, &self.ca_key)
            .unwrap();
        let pem = intermediate.pem();
        self.issue_by(file, leaf, &intermediate, &key, &pem)
    }

    fn issue_by(
        &self,
        file: &str,
        leaf: &Leaf<'_>,
        issuer: &Certificate,
        issuer_key: &KeyPair,
        chain: &str,
    ) -> Issued {
        let key = leaf.key.generate(self.dir.path());
        let names: Vec<String> = leaf.names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        for uri in &leaf.uris {
            params
                .subject_alt_names
                .push(SanType::URI(uri.to_string().try_into().unwrap()));
        }
        params.distinguished_name.push(DnType::CommonName, leaf.cn);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "msglog tests");
        params.extended_key_usages = vec![if leaf.client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        if leaf.expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let cert = params.signed_by(&key, issuer, issuer_key).unwrap();
        let issued = Issued {
            cert: self.dir.path().join(format!("{file}.pem")),
            key: self.dir.path().join(format!("{file}.key")),
        };
        std::fs::write(&issued.cert, format!("{}{chain}", cert.pem())).unwrap();
        std::fs::write(&issued.key, key.serialize_pem()).unwrap();
        issued
    }
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// Python 3 with its `ssl` module, as a TLS client: `script` gets the
/// port, the CA file and a hex string of bytes to send in argv.
pub fn python(script: &str, args: &[&str]) -> std::process::Output {
    Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs (it is needed for this test)")
}
