//! The browser extension as a signed CRX3 package, so that Chromium and
//! Chrome install it through their managed policy (`ExtensionInstallForcelist`)
//! from a `file://` update manifest the agent writes. The signing key is made
//! on each computer and never leaves the agent's state folder; the
//! extension's id is derived from it, so no one else can sign a package the
//! browser would take for ours.

use anyhow::Context;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::signature::{SignatureEncoding, Signer};
use rsa::RsaPrivateKey;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;

/// The key in `path` (PKCS#8 PEM, readable by root only), made on first use.
pub fn signing_key(path: &Path) -> anyhow::Result<RsaPrivateKey> {
    match std::fs::read_to_string(path) {
        Ok(pem) => {
            return RsaPrivateKey::from_pkcs8_pem(&pem)
                .with_context(|| format!("reading the key in {}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).context("making the extension's signing key")?;
    let pem = key.to_pkcs8_pem(LineEnding::LF).context("encoding the extension's signing key")?;
    crate::credentials::write_atomic_private(path, pem.as_bytes())?;
    Ok(key)
}

/// The public key as the browser reads it (SubjectPublicKeyInfo, DER).
pub fn public_key(key: &RsaPrivateKey) -> anyhow::Result<Vec<u8>> {
    Ok(key.to_public_key().to_public_key_der().context("encoding the public key")?.into_vec())
}

/// The id the browser gives an extension signed with `public_key`: the first
/// 16 bytes of its SHA-256, each nibble written as a letter from `a` to `p`.
pub fn extension_id(public_key: &[u8]) -> String {
    crx_id(public_key).iter().flat_map(|b| [b >> 4, b & 15]).map(|n| char::from(b'a' + n)).collect()
}

fn crx_id(public_key: &[u8]) -> [u8; 16] {
    let digest = Sha256::digest(public_key);
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    id
}

/// `files` zipped and signed as a CRX3 file: `Cr24`, version 3, the length
/// of a `CrxFileHeader` protobuf (the key, its signature and the signed
/// `crx_id`), the header, then the zip.
pub fn pack(files: &[(&str, &[u8])], key: &RsaPrivateKey) -> anyhow::Result<Vec<u8>> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data) in files {
        zip.start_file(*name, opts).context("zipping the extension")?;
        zip.write_all(data)?;
    }
    let archive = zip.finish().context("zipping the extension")?.into_inner();
    let public = public_key(key)?;
    let signed_data = field(1, &crx_id(&public));
    let mut message = b"CRX3 SignedData\x00".to_vec();
    message.extend_from_slice(&(signed_data.len() as u32).to_le_bytes());
    message.extend_from_slice(&signed_data);
    message.extend_from_slice(&archive);
    let signature = rsa::pkcs1v15::SigningKey::<Sha256>::new(key.clone()).sign(&message).to_vec();
    let mut proof = field(1, &public);
    proof.extend(field(2, &signature));
    let mut header = field(2, &proof);
    header.extend(field(10_000, &signed_data));
    let mut crx = b"Cr24".to_vec();
    crx.extend_from_slice(&3u32.to_le_bytes());
    crx.extend_from_slice(&(header.len() as u32).to_le_bytes());
    crx.extend(header);
    crx.extend(archive);
    Ok(crx)
}

/// One length-delimited protobuf field (the header has no other kind).
fn field(number: u64, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 8);
    varint(number << 3 | 2, &mut out);
    varint(bytes.len() as u64, &mut out);
    out.extend_from_slice(bytes);
    out
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The update manifest (Omaha `gupdate` format) that points the browser at the package.
pub fn update_manifest(id: &str, version: &str, crx_url: &str) -> String {
    format!(
        "<?xml version='1.0' encoding='UTF-8'?>\n\
         <gupdate xmlns='http://www.google.com/update2/response' protocol='2.0'>\n\
         \x20 <app appid='{id}'>\n\
         \x20   <updatecheck codebase='{crx_url}' version='{version}' />\n\
         \x20 </app>\n\
         </gupdate>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::signature::Verifier;

    /// Read a protobuf made of length-delimited fields back as (number, bytes).
    fn fields(mut b: &[u8]) -> Vec<(u64, &[u8])> {
        let read = |b: &mut &[u8]| {
            let (mut v, mut shift) = (0u64, 0);
            loop {
                let byte = b[0];
                *b = &b[1..];
                v |= u64::from(byte & 0x7f) << shift;
                shift += 7;
                if byte < 0x80 {
                    return v;
                }
            }
        };
        let mut out = Vec::new();
        while !b.is_empty() {
            let tag = read(&mut b);
            assert_eq!(tag & 7, 2);
            let len = read(&mut b) as usize;
            out.push((tag >> 3, &b[..len]));
            b = &b[len..];
        }
        out
    }

    #[test]
    fn the_package_verifies_as_a_browser_checks_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        let key = signing_key(&path).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(public_key(&signing_key(&path).unwrap()).unwrap(), public_key(&key).unwrap(), "kept, not remade");

        let crx = pack(&[("manifest.json", b"{}"), ("background.js", b"1;")], &key).unwrap();
        assert_eq!(&crx[..4], b"Cr24");
        assert_eq!(u32::from_le_bytes(crx[4..8].try_into().unwrap()), 3);
        let header_len = u32::from_le_bytes(crx[8..12].try_into().unwrap()) as usize;
        let (header, archive) = crx[12..].split_at(header_len);
        let header = fields(header);
        let proof = fields(header.iter().find(|f| f.0 == 2).unwrap().1);
        let signed_data = header.iter().find(|f| f.0 == 10_000).unwrap().1;
        let (public, signature) = (proof[0].1, proof[1].1);
        assert_eq!(fields(signed_data), [(1, &crx_id(public)[..])]);
        let mut message = b"CRX3 SignedData\x00".to_vec();
        message.extend_from_slice(&(signed_data.len() as u32).to_le_bytes());
        message.extend_from_slice(signed_data);
        message.extend_from_slice(archive);
        let verifying = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key.to_public_key());
        let sig = rsa::pkcs1v15::Signature::try_from(signature).unwrap();
        verifying.verify(&message, &sig).unwrap();
        message.push(0);
        assert!(verifying.verify(&message, &sig).is_err());
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(archive)).unwrap();
        assert_eq!(z.len(), 2);
        assert!(z.by_name("background.js").is_ok());
        let id = extension_id(public);
        assert!(id.len() == 32 && id.bytes().all(|c| (b'a'..=b'p').contains(&c)), "{id}");
    }

    #[test]
    fn ids_are_those_chromium_computes() {
        // A manifest key and the id Chromium 156 gave the unpacked extension carrying it.
        let key = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAsnwAcKwvmT9d/4WHSs62ZEKi9jnLnWgZ1YDAzBAMwMwHnV1mHUdGC/h7fUoJ1rpvSbAnuVW1nML24VUp1gx58kKViei5sAgnYqsTWG1H9oVYwgh66k+Hmz1VfgrEAArH8YH6iLQFqGhr9odjMyLD8/1pRtINGvroMXyh8l9lIu++Pjymn2sRzP/3Zc+m3DxSvx/rSwoN5ZtM2FiAoz5sjM0NjBdnzu2+kZDUCoAj3bZ4uPDnYeuQGyh92iosQ9zd8FA5Qkgm5lH6JuB9yboPpuaEyaxLvPCGXCF5y3IUM9dZT3As43kDrJcRHgt4daWYHWFyGtvIke6e/UBrlBPqcwIDAQAB";
        let der = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, key).unwrap();
        assert_eq!(extension_id(&der), "dnedkflijmompkmmhpabbimffekkpgej");
    }
}
