"""A test key set and a signed test token, to try the service with authentication on.

    .venv/bin/python -m service.devtoken --issuer https://ehr.example.org \\
        --audience https://legtriage.example.org --scope 'user/QuestionnaireResponse.write'

writes DIR/private-key.pem (an RSA key, mode 0600; made once and then reused, so earlier tokens
stay valid) and DIR/jwks.json (its public half, what LEGTRIAGE_AUTH_JWKS_FILE points at), prints
the token on stdout and, on stderr, the settings that make the service trust it. DIR is
.cache/devtoken of the checkout unless --dir says otherwise.

For development and tests only: a real deployment trusts the keys of its EHR or authorization
server, never a key made on the machine that runs the service.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from service.config import PROJECT_ROOT

ALGORITHM = "RS384"  # the first of the service's default LEGTRIAGE_AUTH_ALGORITHMS


def signing_key(folder: Path) -> rsa.RSAPrivateKey:
    """The key in `folder`, made (with its JWKS) if there is none yet."""
    pem = folder / "private-key.pem"
    if pem.exists():
        key = serialization.load_pem_private_key(pem.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise SystemExit(f"{pem} is not an RSA private key: remove it to make a new one")
    else:
        folder.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
        fd = os.open(pem, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwk.update(kid=key_id(jwk), use="sig", alg=ALGORITHM)
    (folder / "jwks.json").write_text(json.dumps({"keys": [jwk]}, indent=2) + "\n")
    return key


def key_id(jwk: dict) -> str:
    """The RFC 7638 thumbprint of an RSA public JWK: the same key always gets the same kid."""
    import base64
    import hashlib

    canonical = json.dumps({"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}, separators=(",", ":"))
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


def make_token(folder: Path, issuer: str, audience: str, scope: str | None = None,
               subject: str = "dev-user", lifetime: int = 3600, now: float | None = None) -> str:
    key = signing_key(folder)
    kid = json.loads((folder / "jwks.json").read_text())["keys"][0]["kid"]
    issued = int(now if now is not None else time.time())
    claims = {"iss": issuer, "aud": audience, "sub": subject, "iat": issued,
              "exp": issued + lifetime, "jti": str(uuid.uuid4())}
    if scope:
        claims["scope"] = scope
    return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": kid})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.devtoken",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--issuer", required=True, help="the token's iss (LEGTRIAGE_AUTH_ISSUERS)")
    parser.add_argument("--audience", required=True, help="the token's aud (LEGTRIAGE_AUTH_AUDIENCE)")
    parser.add_argument("--scope", help="the token's scope claim, e.g. 'user/QuestionnaireResponse.write'")
    parser.add_argument("--subject", default="dev-user", help="the token's sub (default dev-user)")
    parser.add_argument("--lifetime", type=int, default=3600,
                        help="seconds until exp (default 3600; keep it within "
                             "LEGTRIAGE_AUTH_JTI_WINDOW_SECONDS when that is on)")
    parser.add_argument("--dir", type=Path, default=PROJECT_ROOT / ".cache" / "devtoken",
                        help="where the key and the JWKS go (default .cache/devtoken)")
    args = parser.parse_args(argv)
    if not 1 <= args.lifetime <= 86400:
        parser.error("--lifetime must be 1..86400 seconds")
    token = make_token(args.dir, args.issuer, args.audience, args.scope, args.subject, args.lifetime)
    print(token)
    print(f"devtoken: signed with {args.dir / 'private-key.pem'}; the service trusts it with\n"
          f"  LEGTRIAGE_AUTH_ENABLED=true LEGTRIAGE_AUTH_JWKS_FILE={args.dir / 'jwks.json'} "
          f"LEGTRIAGE_AUTH_ISSUERS={args.issuer} LEGTRIAGE_AUTH_AUDIENCE={args.audience} "
          f"LEGTRIAGE_CDS_AUTH_ENABLED=false",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
