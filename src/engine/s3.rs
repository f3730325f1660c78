//! s3: restic's `s3:` repository form, turned into the back end rustic
//! reaches S3 with (OpenDAL's S3 service, through rustic_backend).
//!
//! Model:
//! - A user writes the repository as restic takes it, so that the same
//!   line works with stock restic: `s3:https://host[:port]/bucket[/prefix]`
//!   for any S3-compatible server (MinIO, Garage, a NAS), or
//!   `s3:host/bucket[/prefix]` (https), e.g. `s3:s3.amazonaws.com/bucket`.
//! - It becomes `opendal:s3` with the options OpenDAL's S3 service takes:
//!   `endpoint`, `bucket`, `root` (the prefix: restic keeps `config`,
//!   `keys/`, `data/` ... under it, and so does rustic), and `region`
//!   (`us-east-1` unless given, as restic does). Options the user gives in
//!   the pair's `options` win, so any OpenDAL S3 setting stays reachable.
//! - Keys come as restic and the AWS tools take them: `AWS_ACCESS_KEY_ID`
//!   and `AWS_SECRET_ACCESS_KEY`, or `~/.aws/credentials` (`profile =`
//!   picks a profile) — never from the config file, like the password
//!   (`secret_access_key` there is refused with words).
//! - A desktop is not an EC2 machine: asking the instance metadata service
//!   for keys only delays every failure, so it is off unless
//!   `disable_ec2_metadata = "false"` is given.

use std::collections::BTreeMap;

/// Where an `s3:` repository lives, read from restic's form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// `http(s)://host[:port]`.
    pub endpoint: String,
    pub bucket: String,
    /// The prefix inside the bucket, from `/` (`/` for the bucket's top).
    pub root: String,
}

/// What the user must not put in the config: the secret it would expose.
const SECRET_OPTIONS: [&str; 2] = ["secret_access_key", "session_token"];

/// `Some` for a repository in restic's `s3:` form, with the location or
/// why it is not one.
pub fn parse(repository: &str) -> Option<Result<Location, String>> {
    let rest = repository.trim().strip_prefix("s3:")?;
    Some(location(rest))
}

fn location(rest: &str) -> Result<Location, String> {
    let (scheme, rest) = match rest.split_once("://") {
        Some((s @ ("http" | "https"), r)) => (s, r),
        Some((s, _)) => {
            return Err(format!("s3 repository: {s}:// is not http:// or https://"));
        }
        None => ("https", rest),
    };
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    if host.is_empty() {
        return Err(
            "s3 repository: no server; give s3:https://host/bucket or s3:s3.amazonaws.com/bucket"
                .into(),
        );
    }
    let mut parts = path.split('/').filter(|p| !p.is_empty());
    let Some(bucket) = parts.next() else {
        return Err(format!(
            "s3 repository: no bucket after {host}; give s3:{scheme}://{host}/bucket[/folder]"
        ));
    };
    let prefix: Vec<&str> = parts.collect();
    Ok(Location {
        endpoint: format!("{scheme}://{host}"),
        bucket: bucket.to_string(),
        root: format!("/{}", prefix.join("/")),
    })
}

/// The problem with the pair's back-end options for an S3 repository.
pub fn problem(options: &BTreeMap<String, String>) -> Option<String> {
    SECRET_OPTIONS.iter().find(|k| options.contains_key(**k)).map(|k| {
        format!(
            "offsite options: {k} is never kept in the config file; give the keys as AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or in ~/.aws/credentials (profile = \"name\" picks one)"
        )
    })
}

/// rustic_backend's repository and options for `loc`, the user's
/// `options` winning over what is read from the form.
pub fn backend(
    loc: &Location,
    options: &BTreeMap<String, String>,
) -> (String, BTreeMap<String, String>) {
    let mut all: BTreeMap<String, String> = [
        ("endpoint", loc.endpoint.as_str()),
        ("bucket", loc.bucket.as_str()),
        ("root", loc.root.as_str()),
        ("region", "us-east-1"),
        ("disable_ec2_metadata", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    all.extend(options.iter().map(|(k, v)| (k.clone(), v.clone())));
    ("opendal:s3".into(), all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restic_s_forms_read_as_restic_reads_them() {
        let ok = |e: &str, b: &str, r: &str| {
            Some(Ok(Location {
                endpoint: e.into(),
                bucket: b.into(),
                root: r.into(),
            }))
        };
        let table: [(&str, Option<Result<Location, String>>); 8] = [
            ("/srv/restic", None),
            ("rest:http://h:8000/", None),
            (
                "s3:http://127.0.0.1:9000/bkt",
                ok("http://127.0.0.1:9000", "bkt", "/"),
            ),
            (
                "s3:https://nas.local/bkt/laptop/docs/",
                ok("https://nas.local", "bkt", "/laptop/docs"),
            ),
            (
                " s3:s3.amazonaws.com/bkt/restic ",
                ok("https://s3.amazonaws.com", "bkt", "/restic"),
            ),
            ("s3:h//bkt", ok("https://h", "bkt", "/")),
            (
                "s3:ftp://h/bkt",
                Some(Err(
                    "s3 repository: ftp:// is not http:// or https://".into()
                )),
            ),
            (
                "s3:http://h:9000",
                Some(Err(
                    "s3 repository: no bucket after h:9000; give s3:http://h:9000/bucket[/folder]"
                        .into(),
                )),
            ),
        ];
        for (text, want) in table {
            assert_eq!(parse(text), want, "{text}");
        }
        assert!(parse("s3:").is_some_and(|r| r.is_err()));
    }

    #[test]
    fn the_user_s_options_win_and_secrets_are_refused() {
        let loc = Location {
            endpoint: "http://h:1".into(),
            bucket: "b".into(),
            root: "/p".into(),
        };
        let mine: BTreeMap<String, String> =
            [("region".to_string(), "eu-west-3".to_string())].into();
        let (repo, opts) = backend(&loc, &mine);
        assert_eq!(repo, "opendal:s3");
        assert_eq!(opts["region"], "eu-west-3");
        assert_eq!(opts["bucket"], "b");
        assert_eq!(opts["root"], "/p");
        assert_eq!(opts["endpoint"], "http://h:1");
        assert_eq!(problem(&mine), None);
        let secret: BTreeMap<String, String> =
            [("secret_access_key".to_string(), "x".to_string())].into();
        assert!(problem(&secret).is_some_and(|p| p.contains("AWS_SECRET_ACCESS_KEY")));
    }
}
