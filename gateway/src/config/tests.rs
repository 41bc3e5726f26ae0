use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn shipped_file_is_the_defaults() {
    let text = include_str!("../../../config.toml");
    let cfg = Config::from_parts(text, []).unwrap();
    assert_eq!(cfg, Config::default());
}

#[test]
fn env_overrides_every_type() {
    let cfg = Config::from_parts(
        "[server]\naddr = \"127.0.0.1:1\"\n",
        env(&[
            ("DISPATCHD_SERVER_ADDR", "127.0.0.1:9000"),
            ("DISPATCHD_DISPATCH_OFFER_TIMEOUT_S", "3"),
            ("DISPATCHD_DISPATCH_MAX_RADIUS_M", "1500.5"),
            ("DISPATCHD_AUTH_JWT_SECRET", "12345678901234567890"),
            ("DISPATCHD_REDIS_URL", "redis://127.0.0.1:6379"),
            ("DISPATCHD_CONFIG", "ignored.toml"),
            ("OTHER", "x"),
        ]),
    )
    .unwrap();
    assert_eq!(cfg.server.addr, "127.0.0.1:9000");
    assert_eq!(cfg.dispatch.offer_timeout_s, 3);
    assert_eq!(cfg.dispatch.max_radius_m, 1500.5);
    assert_eq!(cfg.auth.jwt_secret, "12345678901234567890");
    assert_eq!(cfg.redis.url.as_deref(), Some("redis://127.0.0.1:6379"));
}

#[test]
fn unknown_and_bad_keys_are_named() {
    let e = Config::from_parts("[server]\nadr = \"x\"\n", []).unwrap_err();
    assert!(e.to_string().contains("adr"), "{e}");
    let e = Config::from_parts("[nope]\n", []).unwrap_err();
    assert!(e.to_string().contains("nope"), "{e}");
    let e = Config::from_parts("", env(&[("DISPATCHD_SERVER_PORT", "1")])).unwrap_err();
    assert!(e.to_string().contains("DISPATCHD_SERVER_PORT"), "{e}");
    let e =
        Config::from_parts("", env(&[("DISPATCHD_DISPATCH_OFFER_TIMEOUT_S", "soon")])).unwrap_err();
    assert!(
        e.to_string().contains("DISPATCHD_DISPATCH_OFFER_TIMEOUT_S"),
        "{e}"
    );
    let e = Config::from_parts("[dispatch]\noffer_timeout_s = \"x\"\n", []).unwrap_err();
    assert!(e.to_string().contains("offer_timeout_s"), "{e}");
    let e = Config::from_parts("[dispatch]\nmax_radius_m = -1.0\n", []).unwrap_err();
    assert!(e.to_string().contains("dispatch.max_radius_m"), "{e}");
    let e = Config::from_parts("[server]\naddr = \"nowhere\"\n", []).unwrap_err();
    assert!(e.to_string().contains("server.addr"), "{e}");
}
