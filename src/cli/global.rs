//! etcdctl's global flags, accepted before or after the subcommand on
//! every command (as etcdctl 3.4 registers them on its root command),
//! their `ETCDCTL_*` environment variables, and `ETCDCTL_API`.
//!
//! Offline commands (status, verify, restore, wal) check the values'
//! syntax and otherwise ignore them, as etcdctl 3.4 does; `snapshot save`
//! turns them into [`SaveOptions`]. Environment variables are read only
//! where a client is built, as etcdctl does (`snapshot restore` with
//! `ETCDCTL_CACERT` and `--cacert` both set is no error there).

use std::path::PathBuf;

use clap::Args;
use etcdsnap::{Credentials, SaveOptions, TlsOptions};

use super::Failure;
use super::pflag::{parse_bool, parse_duration};

/// Exit code of etcdctl for a flag value pflag cannot parse, a
/// conflicting environment variable and an unsupported `ETCDCTL_API`.
const EXIT_FLAG_VALUE: u8 = 1;

const HEADING: &str = "Global options (etcdctl's; ignored by offline commands)";

/// The global flags, as given (`None`: not on the command line).
#[derive(Args, Debug, Clone, Default)]
pub struct GlobalArgs {
    /// gRPC endpoints [default: 127.0.0.1:2379]
    #[arg(long, global = true, value_name = "ENDPOINTS", help_heading = HEADING, allow_hyphen_values = true)]
    pub endpoints: Option<String>,
    /// Verify certificates of TLS-enabled secure servers using this CA bundle
    #[arg(long, global = true, value_name = "FILE", help_heading = HEADING, allow_hyphen_values = true)]
    pub cacert: Option<String>,
    /// Identify secure client using this TLS certificate file
    #[arg(long, global = true, value_name = "FILE", help_heading = HEADING, allow_hyphen_values = true)]
    pub cert: Option<String>,
    /// Identify secure client using this TLS key file
    #[arg(long, global = true, value_name = "FILE", help_heading = HEADING, allow_hyphen_values = true)]
    pub key: Option<String>,
    /// Skip server certificate verification (CAUTION: testing only)
    #[arg(long, global = true, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", help_heading = HEADING, value_parser = super::pflag::GoBoolText)]
    pub insecure_skip_tls_verify: Option<String>,
    /// Disable transport security for client connections [default: true]
    #[arg(long, global = true, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", help_heading = HEADING, value_parser = super::pflag::GoBoolText)]
    pub insecure_transport: Option<String>,
    /// username[:password] for authentication (prompt if password is not supplied)
    #[arg(long, global = true, value_name = "USER", help_heading = HEADING, allow_hyphen_values = true)]
    pub user: Option<String>,
    /// Password for authentication (then --user must not include one)
    #[arg(long, global = true, value_name = "PASSWORD", help_heading = HEADING, allow_hyphen_values = true)]
    pub password: Option<String>,
    /// Dial timeout for client connections [default: 2s]
    #[arg(long, global = true, value_name = "DURATION", help_heading = HEADING, value_parser = super::pflag::GoDurationText)]
    pub dial_timeout: Option<String>,
    /// Timeout for the whole command (save has none unless this is given)
    #[arg(long, global = true, value_name = "DURATION", help_heading = HEADING, value_parser = super::pflag::GoDurationText)]
    pub command_timeout: Option<String>,
    /// Keepalive time for client connections [default: 2s]
    #[arg(long, global = true, value_name = "DURATION", help_heading = HEADING, value_parser = super::pflag::GoDurationText)]
    pub keepalive_time: Option<String>,
    /// Keepalive timeout for client connections [default: 6s]
    #[arg(long, global = true, value_name = "DURATION", help_heading = HEADING, value_parser = super::pflag::GoDurationText)]
    pub keepalive_timeout: Option<String>,
    /// Domain name to query for SRV records (not supported: give --endpoints)
    #[arg(short = 'd', long, global = true, value_name = "DOMAIN", help_heading = HEADING, allow_hyphen_values = true)]
    pub discovery_srv: Option<String>,
    /// Service name to query when using DNS discovery
    #[arg(long, global = true, value_name = "NAME", help_heading = HEADING, allow_hyphen_values = true)]
    pub discovery_srv_name: Option<String>,
    /// Accept insecure SRV records describing cluster endpoints
    #[arg(long, global = true, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", help_heading = HEADING, value_parser = super::pflag::GoBoolText)]
    pub insecure_discovery: Option<String>,
    /// Print byte strings as hex encoded strings
    #[arg(long, global = true, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", help_heading = HEADING, value_parser = super::pflag::GoBoolText)]
    pub hex: Option<String>,
    /// Enable client-side debug logging
    #[arg(long, global = true, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", help_heading = HEADING, value_parser = super::pflag::GoBoolText)]
    pub debug: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Bool,
    Duration,
}

/// Every global flag: its name, its kind, and where its value is.
fn table(g: &mut GlobalArgs) -> [(&'static str, Kind, &mut Option<String>); 17] {
    [
        ("endpoints", Kind::Text, &mut g.endpoints),
        ("cacert", Kind::Text, &mut g.cacert),
        ("cert", Kind::Text, &mut g.cert),
        ("key", Kind::Text, &mut g.key),
        (
            "insecure-skip-tls-verify",
            Kind::Bool,
            &mut g.insecure_skip_tls_verify,
        ),
        ("insecure-transport", Kind::Bool, &mut g.insecure_transport),
        ("user", Kind::Text, &mut g.user),
        ("password", Kind::Text, &mut g.password),
        ("dial-timeout", Kind::Duration, &mut g.dial_timeout),
        ("command-timeout", Kind::Duration, &mut g.command_timeout),
        ("keepalive-time", Kind::Duration, &mut g.keepalive_time),
        (
            "keepalive-timeout",
            Kind::Duration,
            &mut g.keepalive_timeout,
        ),
        ("discovery-srv", Kind::Text, &mut g.discovery_srv),
        ("discovery-srv-name", Kind::Text, &mut g.discovery_srv_name),
        ("insecure-discovery", Kind::Bool, &mut g.insecure_discovery),
        ("hex", Kind::Bool, &mut g.hex),
        ("debug", Kind::Bool, &mut g.debug),
    ]
}

/// `ETCDCTL_DIAL_TIMEOUT` for `dial-timeout`.
fn env_name(flag: &str) -> String {
    format!("ETCDCTL_{}", flag.to_ascii_uppercase().replace('-', "_"))
}

fn check_value(kind: Kind, v: &str) -> Result<(), String> {
    match kind {
        Kind::Text => Ok(()),
        Kind::Bool => parse_bool(v).map(|_| ()),
        Kind::Duration => parse_duration(v).map(|_| ()),
    }
}

/// The typed value of flag `name`, if set. Flags were checked by clap and
/// `ETCDCTL_*` values by [`GlobalArgs::merge_env`], so this fails only for
/// a `GlobalArgs` built otherwise, with pflag's text.
fn typed<T>(
    name: &str,
    value: &Option<String>,
    parse: fn(&str) -> Result<T, String>,
) -> Result<Option<T>, Failure> {
    value
        .as_deref()
        .map(|v| {
            parse(v).map_err(|e| {
                Failure::new(
                    EXIT_FLAG_VALUE,
                    format!("invalid argument {v:?} for \"--{name}\" flag: {e}"),
                )
            })
        })
        .transpose()
}

/// `ETCDCTL_API`: "" or "3" (etcdctl 3.4/3.5's v3); anything else is
/// refused with etcdctl's message (etcdsnap has no v2 commands).
pub fn check_api_version(value: Option<&str>) -> Result<(), Failure> {
    match value {
        None | Some("") | Some("3") => Ok(()),
        Some("2") => Err(Failure::new(
            EXIT_FLAG_VALUE,
            "unsupported API version 2: etcdsnap speaks only etcd's v3 API (unset ETCDCTL_API or set it to 3)",
        )),
        Some(other) => Err(Failure::new(
            EXIT_FLAG_VALUE,
            format!("unsupported API version {other}"),
        )),
    }
}

impl GlobalArgs {
    /// Fills flags not on the command line from `ETCDCTL_*` variables, as
    /// etcdctl does where it builds a client: a variable and its flag both
    /// set is an error; unknown `ETCDCTL_*` variables are warned about.
    pub fn merge_env(
        &self,
        vars: &[(String, String)],
        warn: &mut dyn FnMut(String),
    ) -> Result<GlobalArgs, Failure> {
        let mut g = self.clone();
        let mut known: Vec<String> = vec!["ETCDCTL_API".into(), "ETCDCTL_WRITE_OUT".into()];
        for (name, kind, value) in table(&mut g) {
            let var = env_name(name);
            let from_env = vars.iter().find(|(k, _)| *k == var).map(|(_, v)| v);
            known.push(var.clone());
            let Some(env_value) = from_env else { continue };
            if value.is_some() {
                return Err(Failure::new(
                    EXIT_FLAG_VALUE,
                    format!(
                        "conflicting environment variable {var:?} is shadowed by corresponding command-line flag (either unset environment variable or disable flag)"
                    ),
                ));
            }
            check_value(kind, env_value).map_err(|e| {
                Failure::new(
                    EXIT_FLAG_VALUE,
                    format!("invalid value {env_value:?} for {var}: {e}"),
                )
            })?;
            *value = Some(env_value.clone());
        }
        for (k, v) in vars {
            if k.starts_with("ETCDCTL_") && !known.contains(k) {
                warn(format!("unrecognized environment variable {k}={v}"));
            }
        }
        Ok(g)
    }

    /// [`merge_env`](Self::merge_env) over this process's environment
    /// (variables whose name or value is not UTF-8 are skipped), with the
    /// warnings on stderr.
    pub fn with_process_env(&self) -> Result<GlobalArgs, Failure> {
        let vars: Vec<(String, String)> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        self.merge_env(&vars, &mut |w| eprintln!("{w}"))
    }

    /// [`save_options`](Self::save_options), asking on the terminal for a
    /// password `--user` does not carry.
    pub fn save_options_prompting(&self, path: PathBuf) -> Result<SaveOptions, Failure> {
        self.save_options(path, &|| {
            rpassword::prompt_password("Password: ").map_err(|e| e.to_string())
        })
    }

    /// The options of a save to `path` (after [`merge_env`](Self::merge_env)).
    /// `prompt` asks for a password `--user` does not carry.
    pub fn save_options(
        &self,
        path: PathBuf,
        prompt: &dyn Fn() -> Result<String, String>,
    ) -> Result<SaveOptions, Failure> {
        if self.discovery_srv.is_some() {
            return Err(Failure::new(
                super::EXIT_BAD_ARGS,
                "--discovery-srv is not supported by etcdsnap: give the member with --endpoints",
            ));
        }
        let mut o = SaveOptions::new(path);
        if let Some(e) = &self.endpoints {
            o = o.with_endpoints(e.split(',').map(str::trim).filter(|s| !s.is_empty()));
        }
        let mut tls = TlsOptions::default();
        let path_of = |v: &Option<String>| v.as_ref().filter(|s| !s.is_empty()).map(PathBuf::from);
        if let Some(p) = path_of(&self.cacert) {
            tls = tls.with_ca_file(p);
        }
        if let Some(p) = path_of(&self.cert) {
            tls = tls.with_cert_file(p);
        }
        if let Some(p) = path_of(&self.key) {
            tls = tls.with_key_file(p);
        }
        let skip_verify = &self.insecure_skip_tls_verify;
        tls = tls
            .with_insecure_skip_verify(
                typed("insecure-skip-tls-verify", skip_verify, parse_bool)?.unwrap_or(false),
            )
            .with_insecure_transport(
                typed("insecure-transport", &self.insecure_transport, parse_bool)?.unwrap_or(true),
            );
        o = o.with_tls(tls);
        if let Some(d) = typed("dial-timeout", &self.dial_timeout, parse_duration)? {
            o = o.with_dial_timeout(d);
        }
        if let Some(d) = typed("keepalive-time", &self.keepalive_time, parse_duration)? {
            o = o.with_keepalive_time(d);
        }
        if let Some(d) = typed("keepalive-timeout", &self.keepalive_timeout, parse_duration)? {
            o = o.with_keepalive_timeout(d);
        }
        if let Some(d) = typed("command-timeout", &self.command_timeout, parse_duration)? {
            o = o.with_command_timeout(d);
        }
        let credentials = match (&self.user, &self.password) {
            (None, None) => None,
            (None, Some(_)) => {
                return Err(Failure::new(
                    super::EXIT_BAD_ARGS,
                    "--password needs --user (username)",
                ));
            }
            // etcdctl: with --password, --user is the whole name.
            (Some(u), Some(p)) => Some(Credentials::new(u.clone(), p.clone())),
            (Some(u), None) => match u.split_once(':') {
                Some((name, pass)) => Some(Credentials::new(name, pass)),
                None => Some(Credentials::new(
                    u.clone(),
                    prompt().map_err(|e| {
                        Failure::new(super::EXIT_BAD_ARGS, format!("read password error: {e}"))
                    })?,
                )),
            },
        };
        if let Some(c) = credentials {
            o = o.with_credentials(c);
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn bad_values_read_like_etcdctl() {
        let no_prompt = || -> Result<String, String> { Err("no terminal".into()) };
        let g = GlobalArgs {
            dial_timeout: Some("xx".into()),
            ..GlobalArgs::default()
        };
        let e = g
            .save_options("f".into(), &no_prompt)
            .expect_err("bad duration");
        assert_eq!(e.code, 1);
        assert_eq!(
            e.message,
            "invalid argument \"xx\" for \"--dial-timeout\" flag: time: invalid duration \"xx\""
        );
        let g = GlobalArgs {
            insecure_transport: Some("maybe".into()),
            ..GlobalArgs::default()
        };
        assert_eq!(
            g.save_options("f".into(), &no_prompt)
                .expect_err("bad bool")
                .message,
            "invalid argument \"maybe\" for \"--insecure-transport\" flag: strconv.ParseBool: parsing \"maybe\": invalid syntax"
        );
    }

    #[test]
    fn env_fills_and_conflicts() {
        let g = GlobalArgs::default();
        let mut warnings = Vec::new();
        let m = g
            .merge_env(
                &vars(&[
                    ("ETCDCTL_ENDPOINTS", "127.0.0.1:1"),
                    ("ETCDCTL_DIAL_TIMEOUT", "1s"),
                    ("ETCDCTL_API", "3"),
                    ("ETCDCTL_FOO", "1"),
                ]),
                &mut |w| warnings.push(w),
            )
            .expect("merged");
        assert_eq!(m.endpoints.as_deref(), Some("127.0.0.1:1"));
        assert_eq!(m.dial_timeout.as_deref(), Some("1s"));
        assert_eq!(
            warnings,
            vec!["unrecognized environment variable ETCDCTL_FOO=1"]
        );

        let g = GlobalArgs {
            endpoints: Some("127.0.0.1:5".into()),
            ..GlobalArgs::default()
        };
        let e = g
            .merge_env(&vars(&[("ETCDCTL_ENDPOINTS", "x")]), &mut |_| {})
            .expect_err("conflict");
        assert_eq!(e.code, 1);
        assert!(e.message.starts_with(
            "conflicting environment variable \"ETCDCTL_ENDPOINTS\" is shadowed by corresponding command-line flag"
        ));
    }

    #[test]
    fn api_versions() {
        assert!(check_api_version(None).is_ok());
        assert!(check_api_version(Some("")).is_ok());
        assert!(check_api_version(Some("3")).is_ok());
        let e = check_api_version(Some("2")).expect_err("v2");
        assert!(e.message.starts_with("unsupported API version 2"));
        assert_eq!(
            check_api_version(Some("4")).expect_err("v4").message,
            "unsupported API version 4"
        );
    }

    #[test]
    fn users_and_passwords() {
        let no_prompt = || -> Result<String, String> { Err("no terminal".into()) };
        let g = GlobalArgs {
            user: Some("root:pw:x".into()),
            ..GlobalArgs::default()
        };
        let c = g
            .save_options("f".into(), &no_prompt)
            .expect("ok")
            .credentials
            .expect("creds");
        assert_eq!((c.user.as_str(), c.password.as_str()), ("root", "pw:x"));
        let g = GlobalArgs {
            user: Some("a:b".into()),
            password: Some("p".into()),
            ..GlobalArgs::default()
        };
        let c = g
            .save_options("f".into(), &no_prompt)
            .expect("ok")
            .credentials
            .expect("creds");
        assert_eq!((c.user.as_str(), c.password.as_str()), ("a:b", "p"));
        let g = GlobalArgs {
            user: Some("root".into()),
            ..GlobalArgs::default()
        };
        let e = g
            .save_options("f".into(), &no_prompt)
            .expect_err("no prompt");
        assert_eq!(e.message, "read password error: no terminal");
    }
}
