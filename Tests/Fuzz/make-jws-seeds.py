#!/usr/bin/env python3
"""Writes corpus/jws/: tokens under the fixed fuzzing keys of PortcullisFuzzChecks/JWSFuzzCheck.swift
(each key is SHA-256 of a fixed phrase), so the seeds reach the verify-success path. Needs the
`cryptography` package. Run once; the output is committed."""
import base64, hashlib, hmac, json, os
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

def b64(data): return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
def seed(phrase): return hashlib.sha256(phrase.encode()).digest()
def compact(header, claims): return b64(json.dumps(header, separators=(",", ":")).encode()) + "." + b64(json.dumps(claims, separators=(",", ":")).encode())

ed = ed25519.Ed25519PrivateKey.from_private_bytes(seed("portcullis fuzz eddsa"))
p256 = ec.derive_private_key(int.from_bytes(seed("portcullis fuzz es256"), "big"), ec.SECP256R1())
secret = seed("portcullis fuzz hs256")

good = {"iss": "https://issuer.fuzz.example", "aud": "fuzz-api", "exp": 1700003600, "nbf": 1699999000, "iat": 1699999000, "sub": "fuzz-client"}
tokens = {}
s = compact({"alg": "EdDSA", "typ": "JWT", "kid": "fuzz-eddsa"}, good)
tokens["eddsa-valid"] = s + "." + b64(ed.sign(s.encode()))
s = compact({"alg": "EdDSA"}, dict(good, aud=["other", "fuzz-api"]))
tokens["eddsa-no-kid"] = s + "." + b64(ed.sign(s.encode()))
s = compact({"alg": "ES256", "kid": "fuzz-es256"}, good)
r, t = decode_dss_signature(p256.sign(s.encode(), ec.ECDSA(hashes.SHA256())))
tokens["es256-valid"] = s + "." + b64(r.to_bytes(32, "big") + t.to_bytes(32, "big"))
s = compact({"alg": "HS256", "kid": "fuzz-hs256"}, good)
tokens["hs256-valid"] = s + "." + b64(hmac.new(secret, s.encode(), hashlib.sha256).digest())
s = compact({"alg": "HS256", "kid": "fuzz-hs256"}, dict(good, exp=1600000000))
tokens["hs256-expired"] = s + "." + b64(hmac.new(secret, s.encode(), hashlib.sha256).digest())
s = compact({"alg": "RS256", "kid": "fuzz-rsa"}, good)
tokens["rs256-bad-signature"] = s + "." + b64(bytes(256))
s = compact({"alg": "PS256"}, good)
tokens["ps256-no-kid"] = s + "." + b64(bytes(range(256)))
tokens["alg-none"] = compact({"alg": "none"}, good) + "."
tokens["alg-none-case"] = compact({"alg": "nOnE"}, good) + ".c2ln"
tokens["crit"] = compact({"alg": "ES256", "crit": ["exp"], "exp": 1}, good) + ".c2ln"
tokens["embedded-jwk"] = compact({"alg": "HS256", "jwk": {"kty": "oct", "k": "AAAA"}}, good) + ".c2ln"
tokens["b64-false"] = compact({"alg": "HS256", "b64": False}, good) + ".c2ln"
tokens["hs256-with-public-kid"] = compact({"alg": "HS256", "kid": "fuzz-eddsa"}, good) + ".c2ln"
tokens["four-parts"] = tokens["eddsa-valid"] + ".e30"
tokens["padded"] = tokens["hs256-valid"] + "=="
tokens["claims-types"] = compact({"alg": "EdDSA"}, {"iss": 1, "aud": [1], "exp": "soon", "nbf": 1e400}).replace("1e400", "1") + ".c2ln"
tokens["duplicate-members"] = b64(b'{"alg":"EdDSA","alg":"none"}') + "." + b64(b'{"exp":1,"exp":2}') + ".c2ln"
tokens["claims-only"] = json.dumps(good)
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "jws")
os.makedirs(out, exist_ok=True)
for name, token in tokens.items():
    with open(os.path.join(out, name), "w") as f: f.write(token)
