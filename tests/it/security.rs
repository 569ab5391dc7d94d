//! TLS and SASL against the secured node of `scripts/harness up --security`
//! (client property files from `scripts/harness security-config NAME`), and
//! the registry behind basic auth, bearer tokens and https.
//! Tests named `tls_*` need `--features tls` (scripts/test runs them so).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use kafka_ingest::schema_registry::{SchemaRegistryClient, SchemaRegistryConfig};
use kafka_ingest::security::{TokenFuture, TokenProvider, UnsecuredJwtProvider};
use kafka_ingest::{Client, Consumer, Error, NewTopic, Producer, ProducerRecord};

use crate::support::unique;

/// The harness's test password for user `alice` (scripts/harness).
const PASSWORD: &str = "alice-secret";
/// Bound on a whole test (they never hang).
const BOUND: Duration = Duration::from_secs(120);
/// socket.connection.setup.timeout.ms for the refused-login tests.
const SETUP: Duration = Duration::from_secs(5);

/// The path of client config NAME, or a failure that says how to make it.
fn config_path(name: &str) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/harness");
    let out = std::process::Command::new(script)
        .args(["security-config", name])
        .output()
        .expect("run scripts/harness");
    assert!(
        out.status.success(),
        "no security config `{name}`: {}\nStart the secured broker with `scripts/harness up --security`.",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Client properties of config NAME, with `extra` overrides after them.
fn props(name: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut p = kafka_ingest::config::load_properties(config_path(name)).unwrap();
    p.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    p
}

async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {BOUND:?}"))
}

/// Admin calls, produce, and consume through a group, counting records.
async fn round_trip(name: &str, extra: &[(&str, &str)]) {
    bounded(name, async {
        let p = props(name, extra);
        let client = Client::builder()
            .properties(p.clone())
            .build()
            .await
            .unwrap_or_else(|e| panic!("{name}: connect: {e}"));
        let admin = client.admin();
        let cluster = admin.describe_cluster().await.unwrap();
        assert_eq!(cluster.brokers.len(), 1, "{name}: {cluster:?}");
        let topic = unique(&format!("sec-{name}"));
        admin
            .create_topic(NewTopic::new(&topic, 2, 1))
            .await
            .unwrap();
        assert_eq!(
            admin.describe_topic(&topic).await.unwrap().partitions.len(),
            2
        );
        assert!(admin
            .list_topics(false)
            .await
            .unwrap()
            .iter()
            .any(|t| t.name == topic));

        let producer = Producer::builder()
            .properties(p.clone())
            .build()
            .await
            .unwrap();
        let mut acks = Vec::new();
        for i in 0..50 {
            acks.push(
                producer
                    .send(
                        ProducerRecord::new(&topic)
                            .key(format!("k{i}"))
                            .value(format!("v{i}")),
                    )
                    .await
                    .unwrap(),
            );
        }
        for a in acks {
            a.await.unwrap();
        }
        producer.close(Duration::from_secs(10)).await;

        let group = unique(&format!("sec-{name}-g"));
        let consumer = Consumer::builder()
            .properties(p)
            .set("group.id", &group)
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .build()
            .await
            .unwrap();
        consumer.subscribe(&[&topic]).await.unwrap();
        let mut seen = std::collections::BTreeSet::new();
        while seen.len() < 50 {
            for r in consumer.poll(Duration::from_millis(500)).await.unwrap() {
                assert!(
                    seen.insert(String::from_utf8_lossy(r.value.as_deref().unwrap()).into_owned()),
                    "duplicate {r:?}"
                );
            }
        }
        assert_eq!(seen.len(), 50);
        consumer.commit().await.unwrap();
        let g = admin.describe_group(&group).await.unwrap();
        assert_eq!(g.members.len(), 1, "{name}: {g:?}");
        consumer.close().await;
        admin.delete_topic(&topic).await.unwrap();
    })
    .await
}

#[tokio::test]
async fn sasl_plain_round_trip() {
    let _bound = crate::support::watchdog("security::sasl_plain_round_trip", 300);
    round_trip("plain", &[]).await;
}

#[tokio::test]
async fn sasl_scram_sha_256_round_trip() {
    let _bound = crate::support::watchdog("security::sasl_scram_sha_256_round_trip", 300);
    round_trip("scram-sha-256", &[]).await;
}

#[tokio::test]
async fn sasl_scram_sha_512_round_trip() {
    let _bound = crate::support::watchdog("security::sasl_scram_sha_512_round_trip", 300);
    round_trip("scram-sha-512", &[]).await;
}

#[tokio::test]
async fn sasl_oauthbearer_unsecured_jwt_round_trip() {
    let _bound =
        crate::support::watchdog("security::sasl_oauthbearer_unsecured_jwt_round_trip", 300);
    round_trip("oauthbearer", &[]).await;
}

#[tokio::test]
async fn sasl_oauthbearer_oidc_client_credentials_round_trip() {
    let _bound = crate::support::watchdog(
        "security::sasl_oauthbearer_oidc_client_credentials_round_trip",
        300,
    );
    round_trip("oidc", &[]).await;
}

/// Builds a client, producer and consumer with `props`; each must fail with
/// a refused login naming `mechanism`, within the setup timeout.
async fn refused(props: Vec<(String, String)>, mechanism: &str, secret: &str) -> String {
    let setup = SETUP.as_millis().to_string();
    let mut props = props;
    props.push(("socket.connection.setup.timeout.ms".into(), setup));
    let bound = SETUP + Duration::from_secs(3);
    let check = |what: &str, r: Result<(), Error>| -> String {
        let e = r.expect_err(&format!("{what} must be refused"));
        let (text, debug) = (e.to_string(), format!("{e:?}"));
        match &e {
            Error::Authentication {
                mechanism: m,
                broker,
                ..
            } => {
                assert_eq!(m, mechanism, "{text}");
                assert!(broker.starts_with("127.0.0.1:"), "{text}");
            }
            other => panic!("{what}: expected Error::Authentication, got {other:?}"),
        }
        assert!(!e.is_retriable(), "{text}");
        assert!(
            !text.contains(secret) && !debug.contains(secret),
            "secret leaked: {debug}"
        );
        text
    };
    let c = tokio::time::timeout(bound, Client::builder().properties(props.clone()).build())
        .await
        .expect("Client::build must fail within the setup timeout");
    let text = check("client", c.map(|_| ()));
    let p = tokio::time::timeout(bound, Producer::builder().properties(props.clone()).build())
        .await
        .expect("Producer::build must fail within the setup timeout");
    check("producer", p.map(|_| ()));
    let c = tokio::time::timeout(
        bound,
        Consumer::builder()
            .properties(props)
            .set("group.id", "refused")
            .build(),
    )
    .await
    .expect("Consumer::build must fail within the setup timeout");
    check("consumer", c.map(|_| ()));
    text
}

#[tokio::test]
async fn sasl_wrong_passwords_and_unknown_users_are_refused() {
    let _bound = crate::support::watchdog(
        "security::sasl_wrong_passwords_and_unknown_users_are_refused",
        300,
    );
    let wrong = "not-the-password-7731";
    let jaas = |user: &str| {
        format!(
            r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="{user}" password="{wrong}";"#
        )
    };
    let e = refused(props("plain", &[("sasl.password", wrong)]), "PLAIN", wrong).await;
    assert!(e.contains("Invalid username or password"), "{e}");
    for (name, mech) in [
        ("scram-sha-256", "SCRAM-SHA-256"),
        ("scram-sha-512", "SCRAM-SHA-512"),
    ] {
        let e = refused(
            props(name, &[("sasl.jaas.config", &jaas("alice"))]),
            mech,
            wrong,
        )
        .await;
        assert!(e.contains("invalid credentials") && e.contains(mech), "{e}");
        let e = refused(
            props(name, &[("sasl.jaas.config", &jaas("nobody"))]),
            mech,
            wrong,
        )
        .await;
        assert!(e.contains("invalid credentials"), "{e}");
    }
    let e = refused(
        props("plain", &[("sasl.username", "nobody")]),
        "PLAIN",
        PASSWORD,
    )
    .await;
    assert!(e.contains("Invalid username or password"), "{e}");
}

/// Tokens that expired an hour ago.
#[derive(Debug)]
struct Expired;

impl TokenProvider for Expired {
    fn token(&self) -> TokenFuture<'_> {
        Box::pin(async {
            let issued = SystemTime::now() - Duration::from_secs(7200);
            Ok(UnsecuredJwtProvider::new("alice").token_at(issued))
        })
    }
}

#[tokio::test]
async fn sasl_expired_oauthbearer_token_is_refused() {
    let _bound =
        crate::support::watchdog("security::sasl_expired_oauthbearer_token_is_refused", 300);
    bounded("expired token", async {
        let e = Client::builder()
            .properties(props("oauthbearer", &[]))
            .token_provider(Arc::new(Expired))
            .set("socket.connection.setup.timeout.ms", "5000")
            .build()
            .await
            .expect_err("an expired token must be refused");
        assert!(matches!(&e, Error::Authentication { mechanism, .. } if mechanism == "OAUTHBEARER"), "{e:?}");
        assert!(e.to_string().contains("invalid_token") && e.to_string().contains("expired"), "{e}");
        // The OIDC provider's token for `expired-client` is refused the same way.
        let jaas = r#"org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required clientId="expired-client" clientSecret="client-secret";"#;
        refused(props("oidc", &[("sasl.jaas.config", jaas)]), "OAUTHBEARER", "client-secret").await;
    })
    .await
}

/// Counts tokens handed out: every (re-)authentication asks for one.
#[derive(Debug)]
struct Counting(UnsecuredJwtProvider, AtomicUsize);

impl TokenProvider for Counting {
    fn token(&self) -> TokenFuture<'_> {
        self.1.fetch_add(1, Ordering::Relaxed);
        self.0.token()
    }
}

#[tokio::test]
async fn sasl_token_provider_in_code() {
    let _bound = crate::support::watchdog("security::sasl_token_provider_in_code", 300);
    bounded("token provider", async {
        let tokens = Arc::new(Counting(
            UnsecuredJwtProvider::new("carol"),
            AtomicUsize::new(0),
        ));
        let client = Client::builder()
            .properties(props("oauthbearer", &[]))
            .token_provider(tokens.clone())
            .build()
            .await
            .unwrap();
        client.admin().list_topics(false).await.unwrap();
        assert!(tokens.1.load(Ordering::Relaxed) >= 1);
    })
    .await
}

#[tokio::test]
async fn sasl_reauthentication_keeps_a_producer_running() {
    let _bound = crate::support::watchdog(
        "security::sasl_reauthentication_keeps_a_producer_running",
        300,
    );
    // The REAUTH listener ends sessions after 3 s (KIP-368); the producer
    // must re-authenticate in place, again and again, without an error.
    tokio::time::timeout(Duration::from_secs(90), async {
        let p = props("reauth", &[]);
        let topic = unique("sec-reauth");
        let client = Client::builder()
            .properties(p.clone())
            .build()
            .await
            .unwrap();
        client
            .admin()
            .create_topic(NewTopic::new(&topic, 1, 1))
            .await
            .unwrap();
        let producer = Producer::builder()
            .properties(p)
            .set("linger.ms", "5")
            .build()
            .await
            .unwrap();
        let before = Client::reauthentication_count();
        let started = std::time::Instant::now();
        let mut sent = 0usize;
        while started.elapsed() < Duration::from_secs(14) {
            let mut acks = Vec::new();
            for _ in 0..20 {
                acks.push(
                    producer
                        .send(ProducerRecord::new(&topic).value(format!("{sent}")))
                        .await
                        .unwrap(),
                );
                sent += 1;
            }
            for a in acks {
                a.await.expect("no send may fail across re-authentications");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let reauths = Client::reauthentication_count() - before;
        assert!(
            reauths >= 3,
            "expected several re-authentications in 14 s, saw {reauths}"
        );
        producer.close(Duration::from_secs(10)).await;
        // Every record is there, read back over the SCRAM listener (no expiry).
        let tp = kafka_ingest::TopicPartition::new(&topic, 0);
        let end = client
            .admin()
            .list_offsets(&[(tp.clone(), kafka_ingest::OffsetSpec::Latest)])
            .await
            .unwrap();
        assert_eq!(end[&tp].offset, sent as i64, "{end:?}");
    })
    .await
    .expect("re-authentication test hung");
}

/// A writer for tracing output kept in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn secrets_never_appear_in_debug_display_or_logs() {
    let _bound = crate::support::watchdog(
        "security::secrets_never_appear_in_debug_display_or_logs",
        300,
    );
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    // #[tokio::test] runs every task on this thread, so the default reaches them.
    let _guard = tracing::subscriber::set_default(subscriber);
    let wrong = "wrong-password-5521";
    let mut text = String::new();
    bounded("secrets", async {
        let ok = Client::builder()
            .properties(props("scram-sha-512", &[]))
            .build()
            .await
            .unwrap();
        ok.admin().list_topics(false).await.unwrap();
        text += &format!("{ok:?}\n{:?}\n", ok.config());
        let err = Client::builder()
            .properties(props("plain", &[("sasl.password", wrong)]))
            .build()
            .await
            .unwrap_err();
        text += &format!("{err}\n{err:?}\n");
        let p = Producer::builder()
            .properties(props("oidc", &[]))
            .build()
            .await
            .unwrap();
        text += &format!("{p:?}\n");
        let mut cfg = kafka_ingest::ClientConfig::default();
        for (k, v) in props("mtls", &[]) {
            let _ = cfg.set(&k, &v);
        }
        cfg.set("ssl.key.pem", "-----BEGIN PRIVATE KEY-----inline-key-9981")
            .ok();
        text += &format!("{cfg:?}\n");
        let e = cfg
            .set(
                "sasl.jaas.config",
                r#"x.Krb5LoginModule required password="jaas-pw-4410";"#,
            )
            .unwrap_err();
        text += &format!("{e}\n");
        let mut reg = SchemaRegistryConfig::default();
        reg.set("basic.auth.user.info", "u:registry-pw-3307")
            .unwrap();
        reg.set("bearer.auth.token", "static-token-8872").unwrap();
        text += &format!("{reg:?}\n");
    })
    .await;
    let logs = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(logs.contains("connect"), "no logs captured");
    for secret in [
        PASSWORD,
        wrong,
        "client-secret",
        "client-key-secret",
        "inline-key-9981",
        "jaas-pw-4410",
        "registry-pw-3307",
        "static-token-8872",
        "eyJ", // any JWT
    ] {
        assert!(
            !text.contains(secret),
            "`{secret}` leaked into Debug/Display:\n{text}"
        );
        assert!(!logs.contains(secret), "`{secret}` leaked into the logs");
    }
}

fn registry_config(name: &str, extra: &[(&str, &str)]) -> SchemaRegistryConfig {
    let mut c = SchemaRegistryConfig::default();
    for (k, v) in props(name, extra) {
        c.set(&k, &v).unwrap_or_else(|e| panic!("{k}: {e}"));
    }
    c
}

const SCHEMA: &str = r#"{"type":"record","name":"Sec","fields":[{"name":"a","type":"long"}]}"#;

async fn registry_round_trip(c: SchemaRegistryConfig) {
    let reg = SchemaRegistryClient::new(&c).unwrap();
    let subject = unique("sec-sr");
    let id = reg.register(&subject, SCHEMA).await.unwrap();
    let fresh = SchemaRegistryClient::new(&c).unwrap();
    assert!(fresh.schema_by_id(id).await.unwrap().contains("Sec"));
    assert!(fresh.subjects().await.unwrap().contains(&subject));
}

fn unauthorized(e: kafka_ingest::schema_registry::Error) {
    assert!(
        matches!(
            e,
            kafka_ingest::schema_registry::Error::Unauthorized { status: 401, .. }
        ),
        "{e:?}"
    );
}

#[tokio::test]
async fn registry_basic_auth() {
    let _bound = crate::support::watchdog("security::registry_basic_auth", 300);
    bounded("registry basic auth", async {
        registry_round_trip(registry_config("registry", &[])).await;
        let wrong = registry_config(
            "registry",
            &[("basic.auth.user.info", "registry-user:nope")],
        );
        unauthorized(
            SchemaRegistryClient::new(&wrong)
                .unwrap()
                .subjects()
                .await
                .unwrap_err(),
        );
        let none = registry_config("registry", &[("basic.auth.user.info", "")]);
        unauthorized(
            SchemaRegistryClient::new(&none)
                .unwrap()
                .subjects()
                .await
                .unwrap_err(),
        );
        // Confluent's URL source: user info in the URL.
        let url = registry_config(
            "registry",
            &[
                ("basic.auth.credentials.source", "URL"),
                ("basic.auth.user.info", ""),
                (
                    "schema.registry.url",
                    "http://registry-user:registry-secret@127.0.0.1:8181/apis/ccompat/v7",
                ),
            ],
        );
        registry_round_trip(url).await;
    })
    .await
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn tls_registry_https_with_bearer_and_basic_auth() {
    let _bound = crate::support::watchdog(
        "security::tls_registry_https_with_bearer_and_basic_auth",
        300,
    );
    bounded("registry https", async {
        registry_round_trip(registry_config("registry-https", &[])).await;
        let no_token = registry_config("registry-https", &[("bearer.auth.credentials.source", "")]);
        unauthorized(
            SchemaRegistryClient::new(&no_token)
                .unwrap()
                .subjects()
                .await
                .unwrap_err(),
        );
        let basic = registry_config(
            "registry-https",
            &[
                ("bearer.auth.credentials.source", ""),
                ("basic.auth.user.info", "registry-user:registry-secret"),
            ],
        );
        registry_round_trip(basic).await;
        let oauth = registry_config(
            "registry-https",
            &[
                ("bearer.auth.credentials.source", "OAUTHBEARER"),
                (
                    "bearer.auth.issuer.endpoint.url",
                    "http://127.0.0.1:8183/token",
                ),
                ("bearer.auth.client.id", "kafka-ingest-client"),
                ("bearer.auth.client.secret", "client-secret"),
            ],
        );
        registry_round_trip(oauth).await;
        // A CA the registry's certificate does not chain to.
        let ca = config_path("ssl").replace("clients/ssl.properties", "tls/other-ca.pem");
        let untrusted = registry_config(
            "registry-https",
            &[("schema.registry.ssl.truststore.location", &ca)],
        );
        let e = SchemaRegistryClient::new(&untrusted)
            .unwrap()
            .subjects()
            .await
            .unwrap_err();
        assert!(
            e.to_string().to_lowercase().contains("certificate")
                || format!("{e:?}").contains("UnknownIssuer"),
            "{e:?}"
        );
    })
    .await
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn tls_ssl_round_trip() {
    let _bound = crate::support::watchdog("security::tls_ssl_round_trip", 300);
    round_trip("ssl", &[]).await;
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn tls_mtls_round_trip_with_an_encrypted_key() {
    let _bound =
        crate::support::watchdog("security::tls_mtls_round_trip_with_an_encrypted_key", 300);
    round_trip("mtls", &[]).await;
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn tls_sasl_ssl_round_trip() {
    let _bound = crate::support::watchdog("security::tls_sasl_ssl_round_trip", 300);
    round_trip("sasl-ssl", &[]).await;
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn tls_inline_pem_round_trip() {
    let _bound = crate::support::watchdog("security::tls_inline_pem_round_trip", 300);
    let tls = config_path("ssl").replace("clients/ssl.properties", "tls");
    let read = |f: &str| std::fs::read_to_string(format!("{tls}/{f}")).unwrap();
    let (ca, cert, key) = (read("ca.pem"), read("client.pem"), read("client.key"));
    let p = [
        ("bootstrap.servers", "127.0.0.1:9194"),
        ("security.protocol", "SSL"),
        ("ssl.ca.pem", ca.as_str()),
        ("ssl.certificate.pem", cert.as_str()),
        ("ssl.key.pem", key.as_str()),
    ];
    bounded("inline pem", async {
        let c = Client::builder().properties(p).build().await.unwrap();
        c.admin().list_topics(false).await.unwrap();
    })
    .await
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn tls_wrong_host_refused_unless_verification_is_off() {
    let _bound = crate::support::watchdog(
        "security::tls_wrong_host_refused_unless_verification_is_off",
        300,
    );
    let e = refused(props("wrong-host", &[]), "SSL", PASSWORD).await;
    assert!(e.contains("not valid for name"), "{e}");
    bounded("wrong host, no verification", async {
        let c = Client::builder()
            .properties(props(
                "wrong-host",
                &[("ssl.endpoint.identification.algorithm", "")],
            ))
            .build()
            .await
            .expect("accepted with hostname verification off");
        c.admin().list_topics(false).await.unwrap();
    })
    .await
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn tls_untrusted_ca_is_refused() {
    let _bound = crate::support::watchdog("security::tls_untrusted_ca_is_refused", 300);
    let other = config_path("ssl").replace("clients/ssl.properties", "tls/other-ca.pem");
    for name in ["ssl", "sasl-ssl", "wrong-host"] {
        let e = refused(
            props(
                name,
                &[
                    ("ssl.truststore.location", &other),
                    ("ssl.ca.location", &other),
                ],
            ),
            "SSL",
            PASSWORD,
        )
        .await;
        assert!(e.contains("UnknownIssuer"), "{e}");
    }
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn tls_mtls_without_a_client_certificate_is_refused() {
    let _bound = crate::support::watchdog(
        "security::tls_mtls_without_a_client_certificate_is_refused",
        300,
    );
    let e = refused(
        props(
            "mtls",
            &[("ssl.certificate.location", ""), ("ssl.key.location", "")],
        ),
        "SSL",
        "client-key-secret",
    )
    .await;
    assert!(e.contains("client certificate"), "{e}");
    // A wrong key password is a config error naming the key, before any connection.
    let e = Client::builder()
        .properties(props("mtls", &[("ssl.key.password", "wrong")]))
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Config { key, .. } if key == "ssl.key.password"),
        "{e:?}"
    );
}

#[cfg(not(feature = "tls"))]
#[tokio::test]
async fn ssl_without_the_tls_feature_is_a_config_error() {
    let _bound = crate::support::watchdog(
        "security::ssl_without_the_tls_feature_is_a_config_error",
        300,
    );
    let e = Client::builder()
        .set("security.protocol", "SASL_SSL")
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Config { key, .. } if key == "security.protocol")
            && e.to_string().contains("`tls` feature"),
        "{e}"
    );
}

/// A client once the broker accepts its just-created SCRAM login (up to 30 s).
async fn accepted(p: &[(String, String)]) -> Client {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match Client::builder().properties(p.to_vec()).build().await {
            Ok(c) => return c,
            Err(e)
                if e.to_string().contains("invalid credentials")
                    && std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(250)).await
            }
            Err(e) => panic!("login with the new SCRAM user: {e}"),
        }
    }
}

/// Sets (or changes) a SCRAM-SHA-512 password with Java's ConfigCommand over
/// the secured node's internal plaintext listener.
fn set_scram_password(user: &str, password: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/harness");
    let out = std::process::Command::new(script)
        .args([
            "tool",
            "kafka.admin.ConfigCommand",
            "--bootstrap-server",
            "127.0.0.1:9190",
            "--alter",
            "--add-config",
            &format!("SCRAM-SHA-512=[password={password}]"),
            "--entity-type",
            "users",
            "--entity-name",
            user,
        ])
        .output()
        .expect("run ConfigCommand");
    assert!(
        out.status.success(),
        "ConfigCommand: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn sasl_credentials_revoked_mid_run_surface_in_send_and_poll() {
    let _bound = crate::support::watchdog(
        "security::sasl_credentials_revoked_mid_run_surface_in_send_and_poll",
        300,
    );
    // On the REAUTH listener sessions end after 3 s: once the password
    // changes, the next re-authentication fails and nothing may retry forever.
    let user = unique("rot");
    tokio::task::spawn_blocking({
        let user = user.clone();
        move || set_scram_password(&user, "first-password")
    })
    .await
    .unwrap();
    tokio::time::timeout(Duration::from_secs(150), async {
        let jaas = format!(
            r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="{user}" password="first-password";"#
        );
        let p = props("reauth", &[("sasl.jaas.config", &jaas)]);
        let topic = unique("sec-revoked");
        // The new credential reaches the broker through the metadata log a
        // moment after ConfigCommand returns (longer on a cold machine).
        let client = accepted(&p).await;
        client.admin().create_topic(NewTopic::new(&topic, 1, 1)).await.unwrap();
        let producer = Producer::builder().properties(p.clone()).build().await.unwrap();
        producer.send(ProducerRecord::new(&topic).value("before")).await.unwrap().await.unwrap();
        let consumer = Consumer::builder()
            .properties(p)
            .set("group.id", &unique("sec-revoked-g"))
            .set("auto.offset.reset", "earliest")
            .build()
            .await
            .unwrap();
        consumer.subscribe(&[&topic]).await.unwrap();
        let mut read = 0;
        while read == 0 {
            read += consumer.poll(Duration::from_millis(500)).await.unwrap().len();
        }
        tokio::task::spawn_blocking({
            let user = user.clone();
            move || set_scram_password(&user, "second-password")
        })
        .await
        .unwrap();
        // send(): a later record fails with the login error, not a timeout.
        let send_err = loop {
            let r = match producer.send(ProducerRecord::new(&topic).value("after")).await {
                Ok(ack) => ack.await.map(|_| ()),
                Err(e) => Err(e),
            };
            match r {
                Ok(()) => tokio::time::sleep(Duration::from_millis(200)).await,
                Err(e) => break e,
            }
        };
        assert!(matches!(send_err, Error::Authentication { .. }), "send: {send_err:?}");
        // poll(): the fetch loop and the group give up the same way.
        let poll_err = loop {
            match consumer.poll(Duration::from_millis(500)).await {
                Ok(_) => {}
                Err(e) => break e,
            }
        };
        assert!(matches!(poll_err, Error::Authentication { .. }), "poll: {poll_err:?}");
        assert!(!poll_err.to_string().contains("first-password"));
    })
    .await
    .expect("a revoked login must surface in send() and poll(), not hang");
}
