"""Encryption at rest: GET/POST /api/account/crypto with real OpenPGP and X.509 parsing."""

import warnings
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from apps.accounts.auth.crypto import MAX_INPUT_BYTES, InvalidKey, parse_openpgp_public_keys
from apps.accounts.models import EncryptionSettings
from mailadmin.core.models import AuditEvent

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import pgpy
    from pgpy.constants import (
        EllipticCurveOID,
        HashAlgorithm,
        KeyFlags,
        PubKeyAlgorithm,
        SymmetricKeyAlgorithm,
    )

pytestmark = pytest.mark.django_db

# The example key of the management API spec ("Update Encryption-at-Rest Settings"), as
# printed there: every line after the first indented by one space.
SPEC_KEY = (
    "-----BEGIN PGP PUBLIC KEY BLOCK-----\n"
    "\n"
    "xsFNBGTGHwkBEADRB5EEtfsnUwgF2ZRg6h1fp2E8LNhv4lb9AWersI8KNFoWM6qx\n"
    " Bk/MfEpgILSPdW3g7PWHOxPV/hxjtStFHfbU/Ye5VvfbkU49faIPiw1V3MQJJ171\n"
    " cN6kgMnABfdixNiutDkHP4f34ABrEqexX2myOP+btxL24gI/N9UpOD5PiKTyKR7i\n"
    " GwNpi+O022rs/KvjlWR7iSJ4vk7bGFfTNHvWI6dZworey1tZoTIZ0CgvgMeB/F1q\n"
    " OOa0FvrJdNYR227RpHmICqFqTptNZ2EfdkJ6QUXW7bZ9dWgL36ds9QPJOGcG3c5i\n"
    " JebeX5YdJnniBefiWjfZElcqh/N6SqVuEwoTLyMCnMZ6gjNMn6tddwPH24kavZhT\n"
    " p6+vhTHmyq8XBqK/XEt9r+clSfg2hi5s7GO7hQV+W26xRjX7sQJY41PfzkgYJ0BM\n"
    " 6+w09X1ZO/iMjEp44t2rd3xSudwGYhlbazXbdB+OJaa3RtyjOAeFgY8OyNlODx3V\n"
    " xXLtF+104HGSL7nkpBsu6LLighSgEEF2Vok43grr0omyb1NPhWoAZhM8sT5iv5gW\n"
    " fKvB1O13c+hDc/iGTAvcrtdLLnF2Cs+6HD7r7zPPM4L6DrD1+oQt510H/oOEE5NZ\n"
    " wIS9CmBf0txqwk7n1U5V95lonaCK9nfoKeQ1fKl/tu01dCeERRbMXG2nCQARAQAB\n"
    " zRtKb2huIERvZSA8am9obkBleGFtcGxlLm9yZz7CwYcEEwEIADEWIQQWwx1eM+Aa\n"
    " o8okGzL45grMTSggxQUCZMYfCQIbAwQLCQgHBRUICQoLBRYCAwEAAAoJEPjmCsxN\n"
    " KCDFWP4QAI3eS5nPxmU0AC9/h8jeKNgjgpENroNQZKeWZQ8x4PfncDRkcbsJfT7Y\n"
    " IVZl4zw6gFKY5EoB1s1KkYJxPgYsqicmKNiR7Tnzabb3mzomU48FKaIyVCBzFUnJ\n"
    " YMroL/rm7QhoW2WWLvT+CPCPway/tA3By8Be/YOjhavJ8mf1W3rPzt87/4Vo6erf\n"
    " yzL0lN+FQmmhKfT4j42jF4SMSyyC2yzvfC7PT49u+KUKQm/LpQsfKHpwXZ/VI6+X\n"
    " GtZjTqsc+uglJYRo69oosImLzieA/ST1ltjmUutZQOSvlQFpDUEFrMej8XZ0qsrf\n"
    " 0gP2iwxyl0vkhV8c6wO6CacDHPivvQEHed9H1PNGn3DBfKb7Mq/jado2DapRtJg3\n"
    " 2OH0F0HTvQ0uNKl30xMUcwGQB0cKOlaFtksZT1LsosQPhtPLpFy1TuWaXOInpQLq\n"
    " JmNVcTbydOsCKq0mb6bgGcvhElC1q39tclKP3rOEDOnJ8hE6wYNaMGrt6WSKr3Tt\n"
    " h52M6KwTXOuMAecMvpDBSS3UFEVQ+T5puzInDTkjINxmj23ip+swA1x3HH2IgNrO\n"
    " VJ7O20oEf0+qC47R5rTRUxrvh/U0U3DRE5xt2J2T3xetFDT2mnQv0jcyMg/UlXXv\n"
    " GpGVfwNkvN0Cxmb1tFiBNLKCcPVizxq4MLrwx+MVfQBaRCwjJrUszsFNBGTGHwoB\n"
    " EACr5lA+j5pH0Er6Q76btbS4q9JgNjDNrjKJwX9brdBY1oXIUeBqCW9ekoqDTFpn\n"
    " xA5EFGJvPO++/0ZCa+zXE4IAcXS9+I9HVBouenPYBLETnXK0Phws+OCLoe0cAIvG\n"
    " e9Xo9VrHcGXCs9tJruVSAW3NF04YejHmnHNfEuD8mbaUdxVn5zc23w/2gLaY/ABL\n"
    " ZfNV8XZw0jBVBm3YXS3Ob3uIO+RvsNqBgnhGYN/C51QI9hdxXWUDlD1vdRacXmcI\n"
    " LDCYC3w6u8caxL0ktXTS4zwN+hEu7jHxBNiKcovCeIF5VZ5NcPpp6+6Y+vNdmmXw\n"
    " +lWNwAzj3ah6iu+y25LKSsz+7IkCh5liOwwYohO+YI7SjtTD+gL9HiHYAIO+PtBh\n"
    " 7GudmUwFoARu/q54hE4ThpzkeOzJzPqGkM/CzmwdKKM3u81ze+72ptJOqVKbFEsQ\n"
    " 3+RURrIAfyYyeJj4VVCfHNzrRRVpARZc9hJm1AXefxPnDN9dxbikjQgbg5UxrKaJ\n"
    " cjVU+go5CH5lg2D1LRGfKqTJtfiWFPjtztNgMp/SeslkhhFXsyJ0RJDcU8VfRBrO\n"
    " DBnZvPnZi4nLaWCL1LdHA8Y9EJgSwVOsfdRqL/Xk9qxqgl5R8m8lsNKZN2EYkfMN\n"
    " 4Vd+/8UBbmibHYoGIQi7UlNSPthc0XQcRzFen+3H4sg5kQARAQABwsF2BBgBCAAg\n"
    " FiEEFsMdXjPgGqPKJBsy+OYKzE0oIMUFAmTGHwsCGwwACgkQ+OYKzE0oIMXn4hAA\n"
    " lUWeF7tDdyENsOYyhsbtLIuLipYe6orHFY5m68NNOoLWwqEeTvutJgFeDT4WxYi0\n"
    " PJaNQYFPyGVyg7N0hCx5cGwajdnwGpb5zpSNyvG2Yes9I1O/u7+FFrbSwOuo61t1\n"
    " scGa8YlgTKoyGc9cwxl5U8krrlEwXTWQ/qF1Gq2wHG23wm1D2d2PXFDRvw3gPxJn\n"
    " yWkrx5k26ru1kguM7XFVyRi7B+uG4vdvMlxMBXM3jpH1CJRr82VvzYPv7f05Z5To\n"
    " C7XDqHpWKx3+AQvh/ZsSBpBhzK8qaixysMwnawe05rOPydWvsLlnMCGManKVnq9Y\n"
    " Wek1P2dwYT9zuroBR5nmrECY+xVWk7vhsDasKsYlQ/LdDyzSL7qh0Vq3DjcoHxLI\n"
    " uL7qQ3O0YRcKGfmQibpKdDzvIqA+48Nfh2nDnTxvfuwOxb41zdLTZQftaSXc0Xwd\n"
    " HgquBAFbRDr5TyWlUUc8iACowKkk01pEPc8coxPCp6F/hz6kgmebRevzs7sxwrS7\n"
    " aUWycSls783JC7WO267DRD30FNx+9S7SY4ECzhDGjLdne6wIoib1L9SFkk1AAKb3\n"
    " m2+6BB/HxCXtMqi95pFeCjV99bp+PBqoifx9SlFYZq9qcGDr/jyrdG8V2Wf/HF4n\n"
    " K8RIPxB+daAPMLTpj4WBhNquSE6mRQvABEf0GPi2eLA=\n"
    "=0TDv\n"
    "-----END PGP PUBLIC KEY BLOCK-----\n"
    "\n"
    "\n"
    ""
)
SPEC_FINGERPRINT = "16C31D5E33E01AA3CA241B32F8E60ACC4D2820C5"


def _pgp_key(*, encryption_subkey: bool = True) -> pgpy.PGPKey:
    key = pgpy.PGPKey.new(PubKeyAlgorithm.EdDSA, EllipticCurveOID.Ed25519)
    uid = pgpy.PGPUID.new("Jane", email="jane@example.org")
    key.add_uid(
        uid,
        usage={KeyFlags.Sign, KeyFlags.Certify},
        hashes=[HashAlgorithm.SHA256],
        ciphers=[SymmetricKeyAlgorithm.AES256],
    )
    if encryption_subkey:
        sub = pgpy.PGPKey.new(PubKeyAlgorithm.ECDH, EllipticCurveOID.Curve25519)
        key.add_subkey(sub, usage={KeyFlags.EncryptCommunications, KeyFlags.EncryptStorage})
    return key


def _certificate(*, days: int = 365, usage: str = "encipher", key=None) -> str:
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.EMAIL_ADDRESS, "jane@example.org")])
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=2))
        .not_valid_after(now + timedelta(days=days))
    )
    if usage:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=usage == "encipher",
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    cert = builder.sign(
        key, None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _post(client, body):
    return client.post("/api/account/crypto", body, format="json")


# --- API -------------------------------------------------------------------------------


def test_it_starts_disabled(api_client_for, user_a):
    response = api_client_for(user_a).get("/api/account/crypto")
    assert response.status_code == 200
    assert response.json() == {"data": {"type": "disabled"}}


def test_it_accepts_the_spec_example_key(api_client_for, user_a):
    client = api_client_for(user_a)
    response = _post(client, {"type": "pGP", "algo": "Aes256", "certs": SPEC_KEY})
    assert response.status_code == 200
    assert response.json() == {"data": 1}
    row = EncryptionSettings.objects.get(principal=user_a)
    assert row.type == "pgp" and row.algorithm == "Aes256"
    assert row.certificates.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----\n")
    assert "\n " not in row.certificates  # stored as the parser re-armoured it
    assert parse_openpgp_public_keys(row.certificates).identities == [SPEC_FINGERPRINT]
    assert client.get("/api/account/crypto").json() == {"data": {"type": "pgp", "algo": "Aes256"}}


def test_it_counts_several_keys(api_client_for, user_a):
    second = str(_pgp_key().pubkey)
    response = _post(
        api_client_for(user_a), {"type": "pgp", "algo": "aes128", "certs": SPEC_KEY + second}
    )
    assert response.json() == {"data": 2}
    assert EncryptionSettings.objects.get().algorithm == "Aes128"


def test_it_audits_the_change_without_the_key(api_client_for, user_a):
    _post(api_client_for(user_a), {"type": "pgp", "algo": "Aes256", "certs": SPEC_KEY})
    event = AuditEvent.objects.get(action="encryption.update")
    assert event.changes == {"type": "pgp", "algo": "Aes256", "keys": [SPEC_FINGERPRINT]}
    assert "BEGIN PGP" not in str(event.changes)


@pytest.mark.parametrize(
    ("certs", "detail"),
    [
        ("garbage", "Invalid OpenPGP public key: no ASCII-armoured PUBLIC KEY BLOCK found."),
        (
            "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n!!!!\n-----END PGP PUBLIC KEY BLOCK-----\n",
            "Invalid OpenPGP public key: the armour is not valid base64.",
        ),
        (
            "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nQUJDREVGRw==\n"
            "-----END PGP PUBLIC KEY BLOCK-----",
            "Invalid OpenPGP public key: the data is not OpenPGP packets.",
        ),
        (
            "-----BEGIN PGP MESSAGE-----\n\nhQEMA\n-----END PGP MESSAGE-----",
            "Invalid OpenPGP public key: expected a PUBLIC KEY BLOCK, not MESSAGE.",
        ),
        (SPEC_KEY + SPEC_KEY, "Invalid OpenPGP public key: the same key was given twice."),
    ],
)
def test_it_rejects_garbage_with_a_clear_message(api_client_for, user_a, certs, detail):
    response = _post(api_client_for(user_a), {"type": "pgp", "algo": "Aes256", "certs": certs})
    assert response.status_code == 400
    assert response.json()["detail"] == detail
    assert not EncryptionSettings.objects.exists()


def test_it_rejects_a_damaged_key(api_client_for, user_a):
    lines = SPEC_KEY.split("\n")
    lines[5] = lines[5][:20] + ("A" if lines[5][20] != "A" else "B") + lines[5][21:]
    response = _post(
        api_client_for(user_a), {"type": "pgp", "algo": "Aes256", "certs": "\n".join(lines)}
    )
    assert response.json()["detail"] == (
        "Invalid OpenPGP public key: the armour checksum does not match (the key is damaged)."
    )


def test_it_rejects_a_private_key(api_client_for, user_a):
    private = str(_pgp_key())
    assert "PRIVATE KEY BLOCK" in private
    response = _post(api_client_for(user_a), {"type": "pgp", "algo": "Aes256", "certs": private})
    assert response.status_code == 400
    assert response.json()["detail"] == (
        "Invalid OpenPGP public key: this is a private key; upload the public key only."
    )


def test_it_rejects_a_private_key_relabelled_as_public(api_client_for, user_a):
    private = str(_pgp_key()).replace("PRIVATE KEY BLOCK", "PUBLIC KEY BLOCK")
    response = _post(api_client_for(user_a), {"type": "pgp", "algo": "Aes256", "certs": private})
    assert response.status_code == 400
    assert response.json()["detail"] == (
        "Invalid OpenPGP public key: this is a private key; upload the public key only."
    )
    assert not EncryptionSettings.objects.exists()


def test_it_rejects_a_key_that_cannot_encrypt(api_client_for, user_a):
    signing_only = str(_pgp_key(encryption_subkey=False).pubkey)
    response = _post(
        api_client_for(user_a), {"type": "pgp", "algo": "Aes256", "certs": signing_only}
    )
    assert response.json()["detail"] == (
        "Invalid OpenPGP public key: the key has no valid encryption (sub)key."
    )


def test_it_bounds_the_input_size(api_client_for, user_a):
    huge = SPEC_KEY + "\n" * (MAX_INPUT_BYTES + 1)
    response = _post(api_client_for(user_a), {"type": "pgp", "algo": "Aes256", "certs": huge})
    assert response.status_code == 400
    assert response.json()["detail"] == "Invalid OpenPGP public key: larger than 64 KiB."


def test_it_accepts_smime_certificates(api_client_for, user_a):
    pem = _certificate() + _certificate(key=ec.generate_private_key(ec.SECP256R1()), usage="")
    client = api_client_for(user_a)
    response = _post(client, {"type": "sMIME", "algo": "Aes128", "certs": pem})
    assert response.status_code == 200
    assert response.json() == {"data": 2}
    assert client.get("/api/account/crypto").json() == {"data": {"type": "smime", "algo": "Aes128"}}
    assert EncryptionSettings.objects.get().certificates.count("BEGIN CERTIFICATE") == 2


@pytest.mark.parametrize(
    ("make", "detail"),
    [
        (lambda: "not a cert", "Invalid S/MIME certificate: no PEM CERTIFICATE block found."),
        (
            lambda: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "Invalid S/MIME certificate: ",
        ),
        (
            lambda: _certificate(days=-1),
            "Invalid S/MIME certificate: the certificate has expired.",
        ),
        (
            lambda: _certificate(usage="sign"),
            "Invalid S/MIME certificate: its key usage does not allow encryption.",
        ),
        (
            lambda: _certificate(key=ed25519.Ed25519PrivateKey.generate(), usage=""),
            "Invalid S/MIME certificate: only RSA and elliptic-curve keys can receive S/MIME mail.",
        ),
        (
            lambda: (
                rsa.generate_private_key(public_exponent=65537, key_size=2048)
                .private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
                .decode()
            ),
            "Invalid S/MIME certificate: this is a private key; upload the certificate only.",
        ),
    ],
)
def test_it_rejects_bad_certificates(api_client_for, user_a, make, detail):
    response = _post(api_client_for(user_a), {"type": "smime", "algo": "Aes256", "certs": make()})
    assert response.status_code == 400
    assert response.json()["detail"].startswith(detail)
    assert not EncryptionSettings.objects.exists()


def test_it_disables_and_forgets_the_keys(api_client_for, user_a):
    client = api_client_for(user_a)
    _post(client, {"type": "pgp", "algo": "Aes256", "certs": SPEC_KEY})
    response = _post(client, {"type": "disabled"})
    assert response.json() == {"data": 0}
    row = EncryptionSettings.objects.get()
    assert row.type == "disabled" and row.certificates == "" and row.algorithm == ""
    assert client.get("/api/account/crypto").json() == {"data": {"type": "disabled"}}


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({}, "Missing required field: type"),
        ({"type": "rot13"}, "Invalid value for field type: rot13 (use disabled, pgp or smime)"),
        ({"type": "pgp", "certs": "x"}, "Missing required field: algo"),
        ({"type": "pgp", "algo": "Aes256"}, "Missing required field: certs"),
        (
            {"type": "pgp", "algo": "Des", "certs": "x"},
            "Invalid value for field algo: Des (use Aes128 or Aes256)",
        ),
        ({"type": "disabled", "key": "x"}, "Unrecognized field: key"),
        ({"type": 5}, "Invalid value for field type: expected a string."),
    ],
)
def test_it_validates_the_body(api_client_for, user_a, body, detail):
    response = _post(api_client_for(user_a), body)
    assert response.status_code == 400
    assert response.json()["detail"] == detail


def test_it_needs_manage_encryption(api_client_for, make_principal, tenant_a, anon_api):
    nobody = make_principal(name="nobody", tenant=tenant_a, roles=())
    response = api_client_for(nobody).get("/api/account/crypto")
    assert response.status_code == 403
    assert response.json()["permission"] == "manage-encryption"
    assert anon_api.get("/api/account/crypto").status_code == 401


def test_the_parser_raises_invalid_key_directly():
    with pytest.raises(InvalidKey, match="nothing was given"):
        parse_openpgp_public_keys("   ")
