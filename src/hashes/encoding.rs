//! The encodings a hash, a salt or an HMAC key is given in (`hex`, `base64`, `utf8`), PHC's
//! B64, and the encodings a password may have been hashed in (`password.encoding`).
//!
//! Decoding says only whether the text decodes, never where it stops: a message built on it
//! can name the field without quoting any part of the value.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// How a hash, salt or key value is written (Auth0: `base64`, `hex` or `utf8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Encoding {
    Base64,
    Hex,
    Utf8,
}

impl Encoding {
    pub const NAMES: [&'static str; 3] = ["base64", "hex", "utf8"];

    pub fn from_name(name: &str) -> Option<Encoding> {
        match name {
            "base64" => Some(Encoding::Base64),
            "hex" => Some(Encoding::Hex),
            "utf8" => Some(Encoding::Utf8),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Encoding::Base64 => "base64",
            Encoding::Hex => "hex",
            Encoding::Utf8 => "utf8",
        }
    }

    /// The bytes `text` stands for, or `None` when it is not written in this encoding.
    pub fn decode(self, text: &str) -> Option<Vec<u8>> {
        match self {
            Encoding::Base64 => base64(text),
            Encoding::Hex => hex(text),
            Encoding::Utf8 => Some(text.as_bytes().to_vec()),
        }
    }
}

/// Hex, upper or lower case (Auth0: "both upper and lower case hex variants are supported").
pub(super) fn hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    text.as_bytes()
        .chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// Padding may be there or not; the last character's unused bits are not checked (Node's
/// decoder, which Auth0's runs on, ignores them too).
const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::Indifferent)
    .with_decode_allow_trailing_bits(true);
const STANDARD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, LENIENT);

/// Base64 in the standard or the URL-safe alphabet, padded or not (Auth0: "as well as
/// url-encoded base64").
pub(super) fn base64(text: &str) -> Option<Vec<u8>> {
    let standard: String = text
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    STANDARD.decode(standard).ok()
}

/// PHC's B64 (the salt and hash of an argon2 or pbkdf2 PHC string): the standard alphabet
/// without `=` padding.
pub(super) fn phc_b64(text: &str) -> Option<Vec<u8>> {
    if text.contains('=') {
        return None;
    }
    STANDARD.decode(text).ok()
}

/// Encodes PHC's B64, for tests that build PHC strings.
#[cfg(test)]
pub(super) fn to_phc_b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
}

/// How the password was turned into bytes before it was hashed (`password.encoding`, Node's
/// names: Auth0 transcodes the password typed at login into it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PasswordEncoding {
    Ascii,
    Utf8,
    Utf16le,
    Ucs2,
    Latin1,
    Binary,
}

impl PasswordEncoding {
    pub const NAMES: [&'static str; 6] = ["ascii", "utf8", "utf16le", "ucs2", "latin1", "binary"];

    pub fn from_name(name: &str) -> Option<PasswordEncoding> {
        match name {
            "ascii" => Some(PasswordEncoding::Ascii),
            "utf8" => Some(PasswordEncoding::Utf8),
            "utf16le" => Some(PasswordEncoding::Utf16le),
            "ucs2" => Some(PasswordEncoding::Ucs2),
            "latin1" => Some(PasswordEncoding::Latin1),
            "binary" => Some(PasswordEncoding::Binary),
            _ => None,
        }
    }

    /// The password's bytes in this encoding, as Node's `Buffer.from(password, encoding)`
    /// makes them: `utf16le` and `ucs2` are UTF-16 code units, little-endian; `latin1`,
    /// `binary` and `ascii` keep the low byte of each UTF-16 code unit.
    #[cfg(any(feature = "sandbox", test))]
    pub fn bytes(self, password: &str) -> Vec<u8> {
        match self {
            PasswordEncoding::Utf8 => password.as_bytes().to_vec(),
            PasswordEncoding::Utf16le | PasswordEncoding::Ucs2 => {
                password.encode_utf16().flat_map(u16::to_le_bytes).collect()
            }
            PasswordEncoding::Latin1 | PasswordEncoding::Binary | PasswordEncoding::Ascii => {
                password.encode_utf16().map(|unit| unit as u8).collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_takes_either_case_and_refuses_odd_lengths_and_other_characters() {
        assert_eq!(hex("00fFa0"), Some(vec![0, 255, 160]));
        assert_eq!(hex(""), Some(vec![]));
        assert_eq!(hex("abc"), None);
        assert_eq!(hex("zz"), None);
        assert_eq!(hex("+1"), None);
    }

    #[test]
    fn base64_takes_both_alphabets_with_or_without_padding() {
        let bytes = [0xfb, 0xff, 0xbf, 0x01];
        for text in ["+/+/AQ==", "+/+/AQ", "-_-_AQ==", "-_-_AQ"] {
            assert_eq!(base64(text).as_deref(), Some(&bytes[..]), "{text}");
        }
        assert_eq!(base64("not base64!"), None);
        assert_eq!(base64("A"), None);
    }

    #[test]
    fn phc_b64_is_the_standard_alphabet_without_padding() {
        assert_eq!(phc_b64("+N375B8q0Fw").map(|b| b.len()), Some(8));
        assert_eq!(phc_b64("AQ=="), None);
        assert_eq!(phc_b64("-_"), None);
        assert_eq!(to_phc_b64(&[1]), "AQ");
    }

    #[test]
    fn passwords_are_encoded_as_node_encodes_them() {
        let p = "pé€";
        assert_eq!(PasswordEncoding::Utf8.bytes(p), "pé€".as_bytes());
        assert_eq!(
            PasswordEncoding::Utf16le.bytes(p),
            [0x70, 0, 0xe9, 0, 0xac, 0x20]
        );
        assert_eq!(
            PasswordEncoding::Ucs2.bytes(p),
            PasswordEncoding::Utf16le.bytes(p)
        );
        // The low byte of each code unit: é is 0xe9, € (U+20AC) is 0xac.
        for latin in [
            PasswordEncoding::Latin1,
            PasswordEncoding::Binary,
            PasswordEncoding::Ascii,
        ] {
            assert_eq!(latin.bytes(p), [0x70, 0xe9, 0xac]);
        }
        for name in PasswordEncoding::NAMES {
            assert!(PasswordEncoding::from_name(name).is_some(), "{name}");
        }
        assert_eq!(PasswordEncoding::from_name("UTF-8"), None);
    }
}
