//! Just enough DER to measure an RSA key before ring sees it, so a short key gets a precise error.

/// One TLV: its tag, its contents, and what follows it.
fn read_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        // Long form with at most four length bytes: no key comes near 4 GiB.
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, rest) = rest.split_at(count);
        let len = bytes.iter().fold(0usize, |len, &b| (len << 8) | usize::from(b));
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    let (contents, rest) = rest.split_at(len);
    Some((tag, contents, rest))
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;

/// Bit length of the modulus of a PKCS#1 `RSAPrivateKey` (`SEQUENCE { version, modulus, ... }`).
pub(crate) fn rsa_private_key_modulus_bits(der: &[u8]) -> Option<usize> {
    let (SEQUENCE, body, _) = read_tlv(der)? else {
        return None;
    };
    let (INTEGER, _version, rest) = read_tlv(body)? else {
        return None;
    };
    let (INTEGER, modulus, _) = read_tlv(rest)? else {
        return None;
    };
    let significant = match modulus.iter().position(|&b| b != 0) {
        Some(start) => &modulus[start..],
        None => return Some(0),
    };
    Some(significant.len() * 8 - significant[0].leading_zeros() as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_the_modulus_after_the_version() {
        // SEQUENCE { INTEGER 0, INTEGER 0x00 0x81 0x01 } : a 16-bit modulus with a sign byte.
        let der = [0x30, 0x08, 0x02, 0x01, 0x00, 0x02, 0x03, 0x00, 0x81, 0x01];
        assert_eq!(rsa_private_key_modulus_bits(&der), Some(16));
    }

    #[test]
    fn refuses_truncated_or_foreign_structures() {
        assert_eq!(rsa_private_key_modulus_bits(&[]), None);
        assert_eq!(rsa_private_key_modulus_bits(&[0x30, 0x05, 0x02]), None);
        assert_eq!(rsa_private_key_modulus_bits(&[0x04, 0x00]), None);
        assert_eq!(
            rsa_private_key_modulus_bits(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]),
            None
        );
    }
}
