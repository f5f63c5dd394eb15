//! Authenticator-app codes (TOTP, RFC 6238: SHA-1, six digits, 30-second steps, the
//! parameters every app reads from a QR code), the enrolment QR code, and recovery codes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use totp_rs::{Algorithm, Secret, TOTP};

use crate::html::query_value;

/// Seconds per code.
pub const STEP: u64 = 30;
/// Digits per code.
pub const DIGITS: usize = 6;
/// Recovery codes made at enrolment.
pub const RECOVERY_CODES: usize = 10;

/// A new shared secret: 160 random bits (RFC 4226's recommendation), base32.
pub fn new_secret() -> String {
    let bytes: [u8; 20] = rand::random();
    match Secret::Raw(bytes.to_vec()).to_encoded() {
        Secret::Encoded(text) => text,
        Secret::Raw(_) => String::new(),
    }
}

fn totp(secret: &str) -> Option<TOTP> {
    let bytes = Secret::Encoded(secret.to_owned()).to_bytes().ok()?;
    TOTP::new(Algorithm::SHA1, DIGITS, 1, STEP, bytes).ok()
}

/// The code of `step` for `secret`; `None` for a secret that is not base32 of 128 bits or more.
pub fn code_at(secret: &str, step: u64) -> Option<String> {
    Some(totp(secret)?.generate(step.saturating_mul(STEP)))
}

/// The step whose code `code` is, among the one of `now` and its neighbours (a phone's
/// clock a little off, a code typed as it changed); compared in constant time.
pub fn matching_step(secret: &str, code: &str, now: u64) -> Option<u64> {
    let totp = totp(secret)?;
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let current = now / STEP;
    let mut found = None;
    // Every candidate is computed, matched or not, so timing tells nothing of which matched.
    for step in [current.saturating_sub(1), current, current + 1] {
        let expected = totp.generate(step * STEP);
        if constant_time_eq(expected.as_bytes(), code.as_bytes()) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// The `otpauth://` URI an authenticator app reads: issuer and account name as its label.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &str) -> String {
    // `:` separates issuer and account in the label: neither may hold one.
    let issuer = issuer.replace(':', " ");
    let account = account.replace(':', " ");
    format!(
        "otpauth://totp/{}:{}?secret={secret}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP}",
        query_value(&issuer).replace('/', "%2F"),
        query_value(&account).replace('/', "%2F"),
        query_value(&issuer).replace('/', "%2F"),
    )
}

/// The QR code of `text` as an inline SVG element (no XML declaration).
pub fn qr_svg(text: &str) -> Option<String> {
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .dark_color(qrcode::render::svg::Color("#000"))
        .light_color(qrcode::render::svg::Color("#fff"))
        .build();
    let start = svg.find("<svg")?;
    Some(svg[start..].to_owned())
}

/// Ten new recovery codes, `xxxxx-xxxxx` from an alphabet without look-alikes: 50 random
/// bits each, enough that only their SHA-256 needs keeping (they are never guessed, and
/// wrong codes are rate-limited).
pub fn new_recovery_codes() -> Vec<String> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    (0..RECOVERY_CODES)
        .map(|_| {
            let chars: String = (0..10)
                .map(|_| char::from(ALPHABET[usize::from(rand::random::<u8>()) % ALPHABET.len()]))
                .collect();
            format!("{}-{}", &chars[..5], &chars[5..])
        })
        .collect()
}

/// The stored form of a recovery code as typed: case, spaces and dashes do not matter.
pub fn recovery_hash(code: &str) -> String {
    let normal: String =
        code.chars().filter(|c| !c.is_whitespace() && *c != '-').flat_map(char::to_lowercase).collect();
    URL_SAFE_NO_PAD.encode(Sha256::digest(normal.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_the_rfc_6238_test_vector() {
        // RFC 6238 appendix B: the ASCII secret "12345678901234567890", SHA-1, T = 59.
        let secret = match Secret::Raw(b"12345678901234567890".to_vec()).to_encoded() {
            Secret::Encoded(s) => s,
            Secret::Raw(_) => unreachable!(),
        };
        assert_eq!(code_at(&secret, 59 / STEP).as_deref(), Some("287082"));
        assert_eq!(matching_step(&secret, "287082", 59), Some(1));
    }

    #[test]
    fn a_code_is_accepted_one_step_either_side_and_no_further() {
        let secret = new_secret();
        let now = 1_800_000_015;
        let step = now / STEP;
        for (offset, accepted) in [(-2i64, false), (-1, true), (0, true), (1, true), (2, false)] {
            let at = step.checked_add_signed(offset).expect("step");
            let code = code_at(&secret, at).expect("code");
            let found = matching_step(&secret, &code, now);
            // Another step may by chance share the code; only whether the right one matched counts.
            assert_eq!(found == Some(at), accepted, "offset {offset}");
        }
    }

    #[test]
    fn malformed_codes_and_secrets_match_nothing() {
        let secret = new_secret();
        for code in ["", "12345", "1234567", "12345a", " 123456", "１２３４５６"] {
            assert_eq!(matching_step(&secret, code, 1_800_000_000), None, "{code:?}");
        }
        assert_eq!(matching_step("not base32!", "123456", 1_800_000_000), None);
        assert_eq!(matching_step("AAAA", "123456", 1_800_000_000), None, "too short a secret");
    }

    #[test]
    fn the_uri_carries_the_secret_and_the_qr_code_is_an_svg() {
        let uri = otpauth_uri("Help: desk", "ann@example.com", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP");
        assert!(
            uri.starts_with(
                "otpauth://totp/Help%20%20desk:ann%40example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&"
            ),
            "{uri}"
        );
        let svg = qr_svg(&uri).expect("svg");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"), "{svg}");
    }

    #[test]
    fn recovery_codes_are_distinct_and_hash_the_same_however_typed() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let set: std::collections::BTreeSet<_> = codes.iter().collect();
        assert_eq!(set.len(), RECOVERY_CODES);
        let code = &codes[0];
        let typed = format!(" {} ", code.to_uppercase().replace('-', " "));
        assert_eq!(recovery_hash(code), recovery_hash(&typed));
        assert_ne!(recovery_hash(code), recovery_hash(&codes[1]));
    }
}
