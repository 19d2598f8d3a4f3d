#!/usr/bin/env python3
"""mint-tokens.py — RS256 token material for Benchmarks/run (Python 3 standard library only).

Given an RSA private key (PEM, made by `openssl genpkey`), writes into --out:

  jwks.json    {"keys":[{"kty":"RSA","kid":..,"alg":"RS256","use":"sig","n":..,"e":..}]}
               (base64url without padding; Portcullis reads it as `jwks_file`)
  token.txt    one RS256 JWT, the "reused" workload (a client reusing its token)
  tokens.txt   --count distinct RS256 JWTs, one per line, the "rotated" workload

Every token has the JOSE header {"alg":"RS256","typ":"JWT","kid":<kid>} and the claims
iss, aud, exp = now + --lifetime, iat = nbf = now - 60, appid = --client, and a jti that is
unique per token (so all tokens differ, also token.txt from every line of tokens.txt).

Signing (RSASSA-PKCS1-v1_5 with SHA-256, deterministic):
  * libcrypto through ctypes (the OpenSSL library the `openssl` command uses) when it can be
    loaded: about 0.3 ms per token, so 10,000 tokens take a few seconds;
  * otherwise pure Python: modular exponentiation with CRT on the key's numbers, which are
    read from `openssl pkey -text -noout`; about 7 ms per token on the benchmark VM, so it
    runs on every CPU (multiprocessing) and 10,000 tokens still take ~40 s on 2 cores.
  --engine python forces the second path. Whatever the engine, the first token is also signed
  with the pure-Python code and the two signatures must be identical (PKCS#1 v1.5 signatures
  are deterministic), and every signature is checked with the public key (s^e mod n) before it
  is written. Benchmarks/run additionally verifies a token with `openssl dgst -verify`.

Usage:
  mint-tokens.py --key key.pem --out DIR [--count 10000] [--kid bench-1]
                 [--issuer https://idp.bench.invalid/] [--audience api://portcullis-bench]
                 [--client bench-client] [--lifetime 7200] [--engine auto|libcrypto|python]
"""
import argparse
import base64
import ctypes
import ctypes.util
import hashlib
import json
import multiprocessing
import os
import re
import subprocess
import sys
import time
import uuid

SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def int_bytes(n: int, length: int = 0) -> bytes:
    return n.to_bytes(length or max(1, (n.bit_length() + 7) // 8), "big")


# ------------------------------------------------------------------ key numbers (pure Python)
def read_key_numbers(key_path: str) -> dict:
    """n, e, d, p, q, dp, dq, qinv from `openssl pkey -text -noout` (OpenSSL 1.1 and 3)."""
    text = subprocess.run(["openssl", "pkey", "-in", key_path, "-text", "-noout"],
                          check=True, capture_output=True, text=True).stdout
    names = {"modulus": "n", "privateExponent": "d", "prime1": "p", "prime2": "q",
             "exponent1": "dp", "exponent2": "dq", "coefficient": "qinv"}
    nums, cur, buf = {}, None, []

    def flush():
        if cur is not None:
            nums[cur] = int("".join(buf).replace(":", ""), 16)

    for line in text.splitlines():
        m = re.match(r"^(\w+):\s*(.*)$", line)
        if m:
            flush()
            cur, buf = names.get(m.group(1)), []
            if m.group(1) == "publicExponent":
                nums["e"] = int(m.group(2).split()[0])
        elif cur is not None:
            buf.append(line.strip())
    flush()
    missing = {"n", "e", "d", "p", "q", "dp", "dq", "qinv"} - nums.keys()
    if missing:
        raise SystemExit(f"mint-tokens: could not read {sorted(missing)} from `openssl pkey -text` of {key_path}")
    if nums["p"] * nums["q"] != nums["n"]:
        raise SystemExit("mint-tokens: p*q != n (not a two-prime RSA key?)")
    return nums


def emsa_pkcs1_v15_sha256(msg: bytes, k: int) -> int:
    t = SHA256_DIGEST_INFO + hashlib.sha256(msg).digest()
    return int.from_bytes(b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t, "big")


class PyRSASigner:
    def __init__(self, nums: dict):
        self.k = nums
        self.size = (nums["n"].bit_length() + 7) // 8

    def sign(self, msg: bytes) -> bytes:
        k = self.k
        m = emsa_pkcs1_v15_sha256(msg, self.size)
        s1 = pow(m % k["p"], k["dp"], k["p"])
        s2 = pow(m % k["q"], k["dq"], k["q"])
        h = (k["qinv"] * (s1 - s2)) % k["p"]
        return int_bytes(s2 + h * k["q"], self.size)


_POOL_SIGNER = None


def _pool_init(nums):
    global _POOL_SIGNER
    _POOL_SIGNER = PyRSASigner(nums)


def _pool_sign(msg):
    return _POOL_SIGNER.sign(msg)


# ------------------------------------------------------------------ libcrypto through ctypes
class LibcryptoSigner:
    def __init__(self, key_path: str):
        lib = None
        for name in (ctypes.util.find_library("crypto"), "libcrypto.so.3", "libcrypto.so.1.1", "libcrypto.so"):
            if not name:
                continue
            try:
                lib = ctypes.CDLL(name)
                break
            except OSError:
                continue
        if lib is None:
            raise OSError("libcrypto not found")
        vp, cp, sz = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t
        lib.BIO_new_mem_buf.restype, lib.BIO_new_mem_buf.argtypes = vp, [cp, ctypes.c_int]
        lib.BIO_free.argtypes = [vp]
        lib.PEM_read_bio_PrivateKey.restype = vp
        lib.PEM_read_bio_PrivateKey.argtypes = [vp, vp, vp, vp]
        lib.EVP_sha256.restype = vp
        new = getattr(lib, "EVP_MD_CTX_new", None) or getattr(lib, "EVP_MD_CTX_create")
        new.restype = vp
        self._ctx_free = getattr(lib, "EVP_MD_CTX_free", None) or getattr(lib, "EVP_MD_CTX_destroy")
        self._ctx_free.argtypes = [vp]
        lib.EVP_DigestSignInit.argtypes = [vp, vp, vp, vp, vp]
        lib.EVP_DigestSign.argtypes = [vp, cp, ctypes.POINTER(sz), cp, sz]
        with open(key_path, "rb") as f:
            pem = f.read()
        bio = lib.BIO_new_mem_buf(pem, len(pem))
        self.pkey = lib.PEM_read_bio_PrivateKey(bio, None, None, None)
        lib.BIO_free(bio)
        if not self.pkey:
            raise OSError("PEM_read_bio_PrivateKey failed")
        self.lib, self.new = lib, new
        self.buf = ctypes.create_string_buffer(1024)

    def sign(self, msg: bytes) -> bytes:
        lib = self.lib
        ctx = self.new()
        try:
            if lib.EVP_DigestSignInit(ctx, None, lib.EVP_sha256(), None, self.pkey) != 1:
                raise OSError("EVP_DigestSignInit failed")
            n = ctypes.c_size_t(len(self.buf))
            if lib.EVP_DigestSign(ctx, self.buf, ctypes.byref(n), msg, len(msg)) != 1:
                raise OSError("EVP_DigestSign failed")
            return self.buf.raw[: n.value]
        finally:
            self._ctx_free(ctx)


# ------------------------------------------------------------------ tokens
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--key", required=True, help="RSA private key, PEM")
    ap.add_argument("--out", required=True, help="directory for jwks.json, token.txt, tokens.txt")
    ap.add_argument("--count", type=int, default=10000, help="distinct tokens in tokens.txt (default 10000)")
    ap.add_argument("--kid", default="bench-1")
    ap.add_argument("--issuer", default="https://idp.bench.invalid/")
    ap.add_argument("--audience", default="api://portcullis-bench")
    ap.add_argument("--client", default="bench-client", help="value of the appid claim")
    ap.add_argument("--lifetime", type=int, default=7200, help="exp = now + this many seconds (default 7200)")
    ap.add_argument("--engine", choices=["auto", "libcrypto", "python"], default="auto")
    a = ap.parse_args()
    if a.count < 1:
        ap.error("--count must be at least 1")

    nums = read_key_numbers(a.key)
    py = PyRSASigner(nums)
    engine = a.engine
    signer = None
    if engine in ("auto", "libcrypto"):
        try:
            signer = LibcryptoSigner(a.key)
            engine = "libcrypto"
        except (OSError, AttributeError) as err:
            if a.engine == "libcrypto":
                raise SystemExit(f"mint-tokens: libcrypto signing unavailable: {err}")
            engine = "python"
    os.makedirs(a.out, exist_ok=True)

    n, e = nums["n"], nums["e"]
    jwks = {"keys": [{"kty": "RSA", "kid": a.kid, "alg": "RS256", "use": "sig",
                      "n": b64url(int_bytes(n)), "e": b64url(int_bytes(e))}]}
    with open(os.path.join(a.out, "jwks.json"), "w") as f:
        json.dump(jwks, f, indent=2)
        f.write("\n")

    now = int(time.time())
    header = b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": a.kid}, separators=(",", ":")).encode())

    def signing_input(jti: str) -> bytes:
        claims = {"iss": a.issuer, "aud": a.audience, "exp": now + a.lifetime, "iat": now - 60,
                  "nbf": now - 60, "appid": a.client, "jti": jti}
        return (header + "." + b64url(json.dumps(claims, separators=(",", ":")).encode())).encode("ascii")

    inputs = [signing_input(str(uuid.uuid4())) for _ in range(a.count + 1)]  # [0] = reused token

    started = time.time()
    if engine == "libcrypto":
        sigs = [signer.sign(m) for m in inputs]
        if sigs[0] != py.sign(inputs[0]):
            raise SystemExit("mint-tokens: libcrypto and pure-Python signatures differ (bug)")
    else:
        procs = max(1, os.cpu_count() or 1)
        print(f"mint-tokens: pure-Python RSA on {procs} process(es); {len(inputs)} signatures take a while",
              file=sys.stderr)
        with multiprocessing.Pool(procs, initializer=_pool_init, initargs=(nums,)) as pool:
            sigs = pool.map(_pool_sign, inputs, chunksize=64)

    size = (n.bit_length() + 7) // 8
    tokens = []
    for m, s in zip(inputs, sigs):
        if len(s) != size or pow(int.from_bytes(s, "big"), e, n) != emsa_pkcs1_v15_sha256(m, size):
            raise SystemExit("mint-tokens: a signature does not verify with the public key (bug)")
        tokens.append(m.decode("ascii") + "." + b64url(s))

    with open(os.path.join(a.out, "token.txt"), "w") as f:
        f.write(tokens[0] + "\n")
    with open(os.path.join(a.out, "tokens.txt"), "w") as f:
        f.write("\n".join(tokens[1:]) + "\n")
    print(f"mint-tokens: {len(tokens)} RS256 tokens ({engine}, {time.time() - started:.1f}s), kid {a.kid}, "
          f"exp now+{a.lifetime}s, {len(tokens[0])} bytes each -> {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
