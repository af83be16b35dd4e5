//! AWS Signature Version 4, verified as the service verifies it: the same canonical request
//! and string to sign the SDKs build, an HMAC chain from the secret key, a constant-time
//! comparison, and a 15-minute window on `X-Amz-Date`.

use super::error::AwsError;
use crate::auth::hex;
use axum::http::HeaderMap;
use hmac::{KeyInit, Mac};
use sha2_next::{Digest, Sha256};
use std::collections::HashMap;

type HmacSha256 = hmac::Hmac<Sha256>;

/// How far a request's `X-Amz-Date` may be from the server's clock.
const MAX_SKEW_SECONDS: i64 = 15 * 60;

/// The service name requests must be signed for.
const SERVICE: &str = "rekognition";

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // An HMAC key may have any length: this cannot fail.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header.
struct Authorization<'a> {
    access_key: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse_authorization(value: &str) -> Option<Authorization<'_>> {
    let rest = value.strip_prefix("AWS4-HMAC-SHA256")?.trim_start();
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => signature = Some(v),
            _ => return None,
        }
    }
    let mut scope = credential?.split('/');
    let auth = Authorization {
        access_key: scope.next()?,
        date: scope.next()?,
        region: scope.next()?,
        service: scope.next()?,
        signed_headers: signed?.split(';').collect(),
        signature: signature?,
    };
    (scope.next()? == "aws4_request" && scope.next().is_none()).then_some(auth)
}

/// Seconds since the epoch of `YYYYMMDDTHHMMSSZ`.
fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hh, mm, ss) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y2, m2) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days * 86400 + hh * 3600 + mm * 60 + ss)
}

/// Percent-encode as SigV4 does: everything but unreserved characters.
fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let digits = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(v) = digits.and_then(|d| u8::from_str_radix(d, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (uri_encode(&percent_decode(k), false), uri_encode(&percent_decode(v), false))
        })
        .collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

/// A signed request, as the handler received it.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// Verify `req`'s signature against `keys` (access key id -> secret) at `now` (seconds since
/// the epoch). The access key id on success; the service's own exceptions otherwise.
pub fn verify(req: &Request<'_>, keys: &HashMap<String, String>, now: i64) -> Result<String, AwsError> {
    let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
    let Some(value) = header("authorization") else {
        return Err(AwsError::missing_authentication());
    };
    let auth = parse_authorization(value).ok_or_else(|| {
        AwsError::incomplete_signature("Authorization header requires Credential, SignedHeaders and Signature")
    })?;
    let Some(amz_date) = header("x-amz-date") else {
        return Err(AwsError::incomplete_signature("Authorization header requires an X-Amz-Date header"));
    };
    let signed_at = parse_amz_date(amz_date)
        .ok_or_else(|| AwsError::incomplete_signature(&format!("X-Amz-Date {amz_date:?} is not YYYYMMDDTHHMMSSZ")))?;
    if (now - signed_at).abs() > MAX_SKEW_SECONDS {
        return Err(AwsError::invalid_signature(&format!(
            "Signature expired: {amz_date} is more than 15 minutes from the server's time"
        )));
    }
    if !amz_date.starts_with(auth.date) || auth.service != SERVICE {
        return Err(AwsError::invalid_signature(&format!(
            "Credential should be scoped to a valid date and to the service '{SERVICE}'"
        )));
    }
    if !auth.signed_headers.contains(&"host") {
        return Err(AwsError::invalid_signature("the signed headers must include host"));
    }
    let Some(secret) = keys.get(auth.access_key) else {
        return Err(AwsError::unrecognized_client());
    };
    if header("x-amz-security-token").is_some() {
        // Session credentials are not issued here.
        return Err(AwsError::unrecognized_client());
    }

    let mut canonical_headers = String::new();
    for name in &auth.signed_headers {
        let values: Vec<String> = req
            .headers
            .get_all(*name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let payload_hash = hex(&Sha256::digest(req.body));
    let path = if req.path.is_empty() { "/" } else { req.path };
    let canonical_request = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        uri_encode(path, true),
        canonical_query(req.query),
        canonical_headers,
        auth.signed_headers.join(";"),
        payload_hash,
    );
    let scope = format!("{}/{}/{}/aws4_request", auth.date, auth.region, auth.service);
    let string_to_sign =
        format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", hex(&Sha256::digest(canonical_request.as_bytes())));
    let mut key = hmac(format!("AWS4{secret}").as_bytes(), auth.date.as_bytes());
    for part in [auth.region, auth.service, "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    let expected = hex(&hmac(&key, string_to_sign.as_bytes()));
    if !constant_time_eq(expected.as_bytes(), auth.signature.as_bytes()) {
        return Err(AwsError::invalid_signature(
            "The request signature we calculated does not match the signature you provided. Check your AWS \
             Secret Access Key and signing method.",
        ));
    }
    Ok(auth.access_key.to_string())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amz_dates_parse_to_epoch_seconds() {
        assert_eq!(parse_amz_date("19700101T000000Z"), Some(0));
        assert_eq!(parse_amz_date("20150830T123600Z"), Some(1_440_938_160));
        assert_eq!(parse_amz_date("20150830T123600"), None);
        assert_eq!(parse_amz_date("2015083OT123600Z"), None);
    }

    /// The example from AWS's SigV4 documentation ("get-vanilla" of the test suite, with
    /// the documented key and date): our signature matches the published one.
    #[test]
    fn the_documented_example_verifies() {
        let mut headers = HeaderMap::new();
        headers.insert("host", "example.amazonaws.com".parse().unwrap());
        headers.insert("x-amz-date", "20150830T123600Z".parse().unwrap());
        headers.insert(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
                .parse()
                .unwrap(),
        );
        let keys = HashMap::from([("AKIDEXAMPLE".to_string(), "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_string())]);
        let req = Request { method: "GET", path: "/", query: "", headers: &headers, body: b"" };
        // Signed for the service "service", so refused for Rekognition's scope ...
        let err = verify(&req, &keys, 1_440_938_160).unwrap_err();
        assert_eq!(err.kind, "InvalidSignatureException");
        // ... but the signature arithmetic is the documented one.
        let canonical = "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\
                         e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let sts = format!(
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n{}",
            hex(&Sha256::digest(canonical.as_bytes()))
        );
        let mut key = hmac(b"AWS4wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", b"20150830");
        for part in ["us-east-1", "service", "aws4_request"] {
            key = hmac(&key, part.as_bytes());
        }
        assert_eq!(
            hex(&hmac(&key, sts.as_bytes())),
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn expired_unknown_and_malformed_requests_are_refused() {
        let keys = HashMap::from([("AKID".to_string(), "secret".to_string())]);
        let mut headers = HeaderMap::new();
        let req = |h: &HeaderMap| {
            verify(&Request { method: "POST", path: "/", query: "", headers: h, body: b"{}" }, &keys, 1_440_938_160)
        };
        assert_eq!(req(&headers).unwrap_err().kind, "MissingAuthenticationTokenException");
        headers.insert("authorization", "AWS4-HMAC-SHA256 nonsense".parse().unwrap());
        assert_eq!(req(&headers).unwrap_err().kind, "IncompleteSignatureException");
        headers.insert(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=OTHER/20150830/us-east-1/rekognition/aws4_request, SignedHeaders=host;x-amz-date, Signature=00"
                .parse()
                .unwrap(),
        );
        headers.insert("host", "localhost".parse().unwrap());
        headers.insert("x-amz-date", "20150830T123600Z".parse().unwrap());
        assert_eq!(req(&headers).unwrap_err().kind, "UnrecognizedClientException");
        headers.insert("x-amz-date", "20150830T100000Z".parse().unwrap());
        assert_eq!(req(&headers).unwrap_err().kind, "InvalidSignatureException");
    }
}
